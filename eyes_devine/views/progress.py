"""A progress bar on stderr for long file reads (only on a terminal)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn


@contextmanager
def file_progress(console: Console, label: str) -> Iterator[Callable[[int, int], None]]:
    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
        console=console, transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)

        def update(position: int, size: int) -> None:
            progress.update(task, completed=position, total=size)

        yield update
