"""Names and labels from Docker, and text from the network, reach the terminal escaped and never as markup.

Each view is drawn to a terminal console; once rich's own colour codes are
removed, every character left must be printable (or a newline), and the hostile
values must be there in their escaped form, so an analyst sees what was sent.
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console, RenderableType

from eyes_devine.app.board import Board
from eyes_devine.views.alerts_table import alerts_table
from eyes_devine.views.exchanges import ExchangeTable
from eyes_devine.views.flows_table import flows_table
from eyes_devine.views.interfaces import render_report
from eyes_devine.views.requests_table import requests_table
from eyes_devine.views.safe import safe
from eyes_devine.views.screen import Status, screen
from tests.support.records import flow, make

T0 = 1_800_000_000.0
TITLE = "\x1b]0;pwned\x07"
"""Sets the terminal's title (OSC 0, ended by BEL)."""
CLEAR = "\x1b[2J"
"""Clears the screen (CSI 2 J)."""
C1_CLEAR = "\x9b2J"
"""The same with the one-character C1 CSI."""
REVERSED = "\u202eexe.txt"
"""A right-to-left override: shown as "txt.exe" by a terminal that applies bidi."""
MARKUP = "[red]x[/red]"
LINK = "[link=https://evil.example]y[/link]"
SGR = re.compile(r"\x1b\[[0-9;]*m")


def terminal_output(renderable: RenderableType, width: int = 220) -> str:
    console = Console(width=width, file=io.StringIO(), force_terminal=True, color_system="standard",
                      highlight=False, emoji=False)
    console.print(renderable)
    return console.file.getvalue()


def assert_inert(output: str) -> None:
    """Nothing but rich's own colour codes may act on the terminal."""
    text = SGR.sub("", output)
    acting = sorted({char for char in text if not char.isprintable() and char != "\n"})
    assert not acting, f"raw characters reached the terminal: {acting!r}"


@pytest.mark.parametrize(("raw", "shown"), [
    ("web-1", "web-1"),
    ("café ☕ 東京", "café ☕ 東京"),  # printable text stays as it is
    (TITLE, "\\x1b]0;pwned\\x07"),
    (CLEAR, "\\x1b[2J"),
    (C1_CLEAR, "\\x9b2J"),
    ("a\rb\nc\td\x08e\x7f", "a\\rb\\nc\\td\\x08e\\x7f"),
    ("\u202a\u202e\u2066\u2069\u200b\u200f\ufeff", "\\u202a\\u202e\\u2066\\u2069\\u200b\\u200f\\ufeff"),
    ("a\u2028b\u2029c\xa0d", "a\\u2028b\\u2029c\\xa0d"),
    ("\udcff\U000e0041", "\\udcff\\U000e0041"),  # a lone surrogate (undecodable byte), a tag character
    ("C:\\x1b", "C:\\x1b"),  # backslashes are not doubled
])
def test_safe_escapes_what_a_terminal_acts_on_as_repr_does(raw: str, shown: str) -> None:
    assert safe(raw) == shown
    assert safe(raw).isprintable()


def test_a_container_name_and_compose_label_cannot_repaint_the_watch_screen() -> None:
    board = Board()
    board.add(make(1, ts=T0, container=TITLE, container_id="a" * 12, method=LINK, target="/" + REVERSED + C1_CLEAR))
    services = {"a" * 12: (CLEAR + MARKUP, REVERSED)}  # the compose service label and the image
    status = Status("capturing on docker0", 1, 0, "1 container" + CLEAR, True, 1.0, 1, ("lost " + TITLE,))
    output = terminal_output(screen(status, board.snapshot(T0 + 1, services), 220, 30, now=T0 + 1))
    assert_inert(output)
    plain = SGR.sub("", output)
    row = next(line for line in plain.splitlines() if line.startswith("\\x1b]0;pwned"))
    assert row.startswith("\\x1b]0;pwned\\x07 (\\x1b[2J[red]x[/red])")
    assert "[link=https://evil.example]y[/link] /\\u…" in row  # the last request, cut to its column
    assert row.rstrip().endswith("\\u202eexe.txt")  # the image
    assert "1 container\\x1b[2J" in plain and "! lost \\x1b]0;pwned\\x07" in plain
    latest = plain.splitlines()[-1]
    assert "\\x1b]0;pwned\\x07" in latest and LINK in latest and "/\\u202eexe.txt\\x9b2J" in latest


def test_the_requests_and_alerts_tables_show_hostile_values_escaped_and_literal() -> None:
    hostile = make(1, ts=T0, container=TITLE, container_id="a" * 12, client_container=MARKUP,
                   client_container_id="b" * 12, method=CLEAR + "GET", target="/" + REVERSED, alerts=("xss",))
    for table in (requests_table([hostile], T0), alerts_table([hostile], T0)):
        output = terminal_output(table)
        assert_inert(output)
        row = SGR.sub("", output).splitlines()[1]
        for shown in ("\\x1b]0;pwned\\x07", MARKUP, "\\x1b[2JGET", "/\\u202eexe.txt"):
            assert shown in row


def test_the_flows_table_escapes_the_server_name_and_the_banner() -> None:
    flows = [flow(1, "tls", sni=TITLE + "example.com", container=MARKUP, container_id="a" * 12),
             flow(2, "ssh", detail="SSH-2.0-" + CLEAR + REVERSED)]
    output = terminal_output(flows_table(flows, T0))
    assert_inert(output)
    first, second = SGR.sub("", output).splitlines()[1:3]
    assert MARKUP in first and "\\x1b]0;pwned\\x07example.com" in first
    assert "SSH-2.0-\\x1b[2J\\u202eexe.txt" in second


def test_the_interfaces_report_escapes_names_from_the_host_and_docker() -> None:
    interface = {"name": "veth" + CLEAR, "kind": "veth", "label": "container veth", "selected": True,
                 "reason": "container veth", "up": True, "mtu": 1500, "addresses": ["10.0.0.1"],
                 "master": None, "docker_network": None, "container": TITLE + MARKUP + ":warning:"}
    report = {
        "interfaces": [interface],
        "diagnostics": {
            "os": "linux", "platform": "Linux", "python": "3.11", "eyes_devine": "0.1.0", "profile": "built-in",
            "selection": {"mode": "auto", "selected": ["veth" + CLEAR], "hint": None},
            "capture": {"ready": True, "filter": "tcp port 80", "detail": "compiles", "filter_ok": True,
                        "scapy_version": "2.6"},
            "privileges": {"detail": "root", "fix": None, "can_capture": True},
            "docker": {"reachable": False, "version": None, "api_version": None, "host": "tcp://x",
                       "error": "Docker Engine at tcp://x is not usable (" + LINK + REVERSED + ")"},
        },
    }
    console = Console(width=220, file=io.StringIO(), force_terminal=True, color_system="standard")  # emoji on
    render_report(console, report)
    output = console.file.getvalue()
    assert_inert(output)
    plain = SGR.sub("", output)
    assert "veth\\x1b[2J" in plain and "to \\x1b]0;pwned\\x07" + MARKUP + ":warning:" in plain
    assert "(" + LINK + "\\u202eexe.txt)" in plain


def test_the_streaming_read_table_escapes_the_method_and_the_target() -> None:
    out = io.StringIO()
    line = ExchangeTable(out, 200, colour=True).line(make(1, method=TITLE, target="/" + REVERSED + CLEAR))
    assert_inert(line)
    assert " \\x1b]0; " in line  # the method column keeps seven characters
    assert "/\\u202eexe.txt\\x1b[2J" in line
