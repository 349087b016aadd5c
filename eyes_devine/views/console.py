"""One rich Console per process, made here and passed down."""

from __future__ import annotations

from rich.console import Console


def make_console(stderr: bool = False) -> Console:
    """A console that drops colour when not on a terminal or when NO_COLOR is set (rich reads it).

    No emoji codes: a container named ``:warning:`` shows as it is named.
    """
    return Console(stderr=stderr, highlight=False, soft_wrap=False, emoji=False)
