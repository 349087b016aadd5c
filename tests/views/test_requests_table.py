"""The `requests` table: who served or sent each exchange, readable at 100 columns, status coloured by class."""

from __future__ import annotations

import io
import re
import time

from rich.console import Console

from eyes_devine.records import Exchange
from eyes_devine.views.requests_table import requests_table
from tests.support.records import with_fields

NOON = time.mktime((2024, 5, 1, 12, 0, 0, 0, 0, -1))  # local time, so "today" does not depend on the zone


def make(**changes: object) -> Exchange:
    x = Exchange(
        ts=NOON - 5,
        interface="docker0",
        client_ip="172.17.0.3",
        client_port=40000,
        server_ip="172.17.0.2",
        server_port=80,
        method="GET",
        target="/api/items/1",
        host="web",
        http_version="1.1",
        status=200,
        reason="OK",
        latency_ms=1.234,
        duration_ms=1.5,
        request_bytes=0,
        response_bytes=512,
        user_agent="curl/8.5",
        content_type="application/json",
    )
    return with_fields(x, **changes)  # type: ignore[return-value]


def render(exchanges: list[Exchange], width: int = 100, colour: bool = False) -> list[str]:
    console = Console(
        width=width, file=io.StringIO(), force_terminal=colour, color_system="standard" if colour else None
    )
    console.print(requests_table(exchanges, NOON))
    return console.file.getvalue().splitlines()


def test_columns_in_order_with_flags_only_when_some_exchange_has_them():
    header = render([make(), make(flags=("gap",))])[0].split()
    assert header == ["time", "container", "client", "method", "target", "status", "latency", "bytes", "flags"]
    assert "flags" not in render([make()])[0]


def test_the_container_is_the_server_else_the_caller_of_an_outbound_request_else_a_dash():
    served = make(
        container="web",
        container_id="a1b2c3d4e5f6",
        client_container="worker",
        client_container_id="c0ffee000001",
        target="/served",
    )
    outbound = make(client_container="worker", client_container_id="c0ffee000001", target="/outbound")
    host = make(target="/host")
    lines = render([served, outbound, host])[1:]
    assert lines[0].split()[1:3] == ["web", "worker"]
    assert lines[1].split()[1:4] == ["worker", "→", "worker"]
    assert lines[2].split()[1:3] == ["-", "172.17.0.3:40000"]


def test_an_ipv6_client_is_bracketed_as_in_the_read_table():
    assert "[fd00::3]:40000" in render([make(client_ip="fd00::3")])[1]


def test_times_from_today_have_no_date_and_older_ones_do():
    today, older = render([make(), make(ts=NOON - 5 - 3 * 86400)])[1:]
    assert today.startswith("11:59:55 ")
    assert older.startswith("2024-04-28 11:59:55 ")


def test_status_latency_bytes_and_flags():
    line = render([make(status=404, latency_ms=2500.0, response_bytes=12345, flags=("gap", "truncated"))])[1]
    assert line.split()[-4:] == ["404", "2.50s", "12345", "gap,truncated"]
    unanswered = render([make(status=None, latency_ms=None, flags=("no_response",))])[1]
    assert unanswered.split()[-4:] == ["-", "-", "512", "no_response"]


def test_status_is_coloured_by_class():
    lines = render([make(status=200), make(status=304), make(status=404), make(status=503)], colour=True)[1:]
    for line, (code, sgr) in zip(lines, [("200", "32"), ("304", "36"), ("404", "33"), ("503", "31")], strict=True):
        assert re.search(rf"\x1b\[{sgr}m *{code}\x1b\[0m", line), line


def test_a_long_target_is_cut_with_an_ellipsis_and_the_table_fits_100_columns():
    lines = render([make(target="/" + "x" * 500, container="web", container_id="a1b2c3d4e5f6")])
    assert all(len(line) <= 100 for line in lines)
    assert "/xxxx" in lines[1] and "…" in lines[1]


def test_markup_in_a_target_is_shown_as_sent():
    assert "/[bold]x[/bold]" in render([make(target="/[bold]x[/bold]")], width=160)[1]
