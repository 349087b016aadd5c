"""A progress bar on stderr for long file reads (only on a terminal)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from eyes_devine.views.safe import safe


@contextmanager
def file_progress(console: Console, label: str) -> Iterator[Callable[[int, int], None]]:
    """A bar labelled with ``label`` (a file name, shown as named: the description column reads markup)."""
    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
        console=console, transient=True,
    ) as progress:
        task = progress.add_task(escape(safe(label)), total=None)

        def update(position: int, size: int) -> None:
            progress.update(task, completed=position, total=size)

        yield update
