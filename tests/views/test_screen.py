"""The watch screen drawn to a string at several widths."""

from __future__ import annotations

import io

from rich.console import Console

from eyes_devine.app.board import Board
from eyes_devine.views.screen import Status, screen
from tests.support.records import make

T0 = 1_800_000_000.0


def draw(width: int, problems: tuple[str, ...] = ()) -> list[str]:
    board = Board()
    for i in range(7):
        board.add(make(i, ts=T0 + i, container="shop-api", container_id="a" * 12, status=500 if i == 6 else 200))
    status = Status("capturing on docker0", 1234, 0, "3 containers", True, 1.5, 50_000_000, problems)
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(screen(status, board.snapshot(T0 + 10), width, 30, now=T0 + 10))
    return console.file.getvalue().splitlines()


def test_a_wide_terminal_shows_every_column() -> None:
    lines = draw(160)
    header = next(line.split() for line in lines if line.startswith("container"))
    assert header == ["container", "req", "2xx", "3xx", "4xx", "5xx", "req/s", "p50", "p95", "last", "request",
                      "age", "image"]
    assert next(line for line in lines if line.startswith("shop-api")).split()[:6] == ["shop-api", "7", "6", "0",
                                                                                       "0", "1"]


def test_sixty_columns_keep_name_requests_and_status_counts() -> None:
    lines = draw(60)
    assert all(len(line) <= 60 for line in lines)
    header = next(line.split() for line in lines if line.startswith("container"))
    assert header[:6] == ["container", "req", "2xx", "3xx", "4xx", "5xx"]


def test_problems_are_shown_in_the_header() -> None:
    lines = draw(100, ("capture on veth1 stopped (interface gone?)",))
    assert any(line.startswith("! capture on veth1 stopped") for line in lines)
