"""The full-screen refresh loop of `watch`: rich Live on a terminal, plain frames elsewhere.

``draw(width, height)`` is called on rich's refresh thread (about twice a
second) and must only read immutable data; the command's own loop never
touches the terminal.  Leaving the context (Ctrl-C included) restores the
terminal: the alternate screen is left and the cursor shown again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console, RenderableType
from rich.live import Live

REFRESH_PER_SECOND = 2
PLAIN_FRAME_SECONDS = 2.0


class LiveScreen:
    def __init__(self, console: Console, draw: Callable[[int, int], RenderableType]) -> None:
        self._console = console
        self._draw = draw
        self._live: Live | None = None
        self._next_plain = 0.0

    def __enter__(self) -> LiveScreen:
        if self._console.is_terminal:
            self._live = Live(get_renderable=self._renderable, console=self._console, screen=True,
                              auto_refresh=True, refresh_per_second=REFRESH_PER_SECOND,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.__enter__()
        return self

    def _renderable(self) -> RenderableType:
        size = self._console.size  # read per frame: the terminal may have been resized
        return self._draw(size.width, size.height)

    def tick(self) -> None:
        """Without a terminal, print a frame now and then (as `top -b` does); with one, rich refreshes itself."""
        if self._live is None and time.monotonic() >= self._next_plain:
            self._next_plain = time.monotonic() + PLAIN_FRAME_SECONDS
            self._console.print(self._draw(self._console.width, 10_000))
            self._console.print()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(kind, error, trace)
            self._live = None
