"""Alerts on screen: the watch screen's alerts column and red rows, the requests table's alerts column."""

from __future__ import annotations

import io

from rich.console import Console

from eyes_devine.app.board import Board
from eyes_devine.views.requests_table import requests_table
from eyes_devine.views.screen import Status, screen
from tests.support.records import make

T0 = 1_800_000_000.0
STATUS = Status("capturing on docker0", 1234, 0, "3 containers", True, 1.5, 50_000_000)


def board_with_alerts() -> Board:
    board = Board()
    for i in range(7):
        x = make(i, ts=T0 + i, container="shop-api", container_id="a" * 12)
        board.add(x._replace(target="/.env", status=404, alerts=("sensitive-path",)) if i in (2, 5) else x)
    board.add(make(9, ts=T0 + 8, container="quiet", container_id="b" * 12))
    return board


def draw(board: Board, width: int, colour: bool = False) -> list[str]:
    console = Console(width=width, file=io.StringIO(), color_system="standard" if colour else None,
                      force_terminal=colour)
    console.print(screen(STATUS, board.snapshot(T0 + 10), width, 30, now=T0 + 10))
    return console.file.getvalue().splitlines()


def test_the_container_rows_count_alerts_once_there_are_any() -> None:
    lines = draw(board_with_alerts(), 160)
    header = next(line.split() for line in lines if line.startswith("container"))
    assert header[:7] == ["container", "req", "2xx", "3xx", "4xx", "5xx", "alerts"]
    assert next(line for line in lines if line.startswith("shop-api")).split()[:7] == ["shop-api", "7", "5", "0", "2",
                                                                                       "0", "2"]
    assert next(line for line in lines if line.startswith("quiet")).split()[6] == "0"


def test_at_sixty_columns_the_alerts_column_fits_beside_the_status_counts() -> None:
    lines = draw(board_with_alerts(), 60)
    assert all(len(line) <= 60 for line in lines)
    header = next(line.split() for line in lines if line.startswith("container"))
    assert header[:7] == ["container", "req", "2xx", "3xx", "4xx", "5xx", "alerts"]


def test_alert_counts_and_alerting_exchanges_are_red() -> None:
    red = "\x1b[31m"
    lines = draw(board_with_alerts(), 160, colour=True)
    shop = next(line for line in lines if line.startswith("shop-api"))
    assert f"{red}     2" in shop  # the alerts column, right-aligned
    latest = [line for line in lines if "/items/" in line or "/.env" in line]
    assert all((red in line) == ("/.env" in line) for line in latest[2:]), latest
    assert any("sensitive-path" in line for line in latest)


def test_requests_table_adds_a_red_alerts_column_only_when_some_exchange_has_alerts() -> None:
    def render(exchanges: list) -> list[str]:
        console = Console(width=160, file=io.StringIO(), color_system="standard", force_terminal=True)
        console.print(requests_table(exchanges, T0))
        return console.file.getvalue().splitlines()

    clean = [make(1, ts=T0)]
    assert "alerts" not in render(clean)[0]
    flagged = render([make(1, ts=T0), make(2, ts=T0, target="/?q=<script>", alerts=("xss", "scanner-user-agent"))])
    assert "alerts" in flagged[0]
    assert "\x1b[31mxss,scanner-user-agent" in flagged[2] and "\x1b[31m" not in flagged[1]


def test_the_alerts_column_marks_how_many_attacks_were_answered() -> None:
    board = board_with_alerts()
    board.add(make(11, ts=T0 + 9, container="shop-api", container_id="a" * 12, target="/.git/config", status=200,
                   response_bytes=92, alerts=("sensitive-path",)))
    for width in (160, 60):
        lines = draw(board, width)
        assert all(len(line) <= width for line in lines)
        shop = next(line for line in lines if line.startswith("shop-api")).split()
        assert shop[6:8] == ["3", "(1!)"], "three alerts, one of them answered"
    assert next(line for line in draw(board, 160) if line.startswith("quiet")).split()[6] == "0"
