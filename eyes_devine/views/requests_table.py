"""The table of `eyes-devine requests`: stored exchanges, newest first, one line each.

A query returns a bounded list (``--limit``), so unlike `read` this can be a
rich Table that sizes its columns to the rows; the cell formats are shared
with the `read` table.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.table import Table
from rich.text import Text

from eyes_devine.records import Exchange
from eyes_devine.views.exchanges import _endpoint, _latency

STATUS_STYLES = {2: "green", 3: "cyan", 4: "yellow", 5: "red"}
"""The colours of the `read` table's status column, as rich styles."""
TARGET_MAX = 200
"""Characters of a target kept before the table's own ellipsis, so one huge URL cannot dominate the layout."""
ALERT_STYLE = "red"
"""Exchanges that matched a suspicious-request rule: their target and rule ids."""


def _clock(ts: float, today: tuple[int, int, int]) -> str:
    local = time.localtime(ts)
    if tuple(local[:3]) == today:
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%Y-%m-%d %H:%M:%S", local)


def _cut(text: str, style: str = "") -> Text:
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def _container(x: Exchange) -> Text:
    """Who the exchange belongs to: the serving container, else the caller of an outbound request."""
    if x.container or x.container_id:
        return _cut(x.container or x.container_id or "")
    if x.client_container or x.client_container_id:
        return _cut(f"{x.client_container or x.client_container_id} →", style="dim")
    return Text("-", style="dim")


def rules_cell(x: Exchange) -> Text:
    """The ids of the rules an exchange matched, in red; empty when none."""
    return _cut(",".join(x.alerts), style=ALERT_STYLE) if x.alerts else Text("")


def _status(status: int | None) -> Text:
    if status is None:
        return Text("-", style="dim")
    return Text(str(status), style=STATUS_STYLES.get(status // 100, ""))


def requests_table(exchanges: Iterable[Exchange], now: float) -> Table:
    """Exchanges as a table; ``now`` decides which times are today and need no date."""
    today = tuple(time.localtime(now)[:3])
    exchanges = list(exchanges)
    show_flags = any(x.flags for x in exchanges)  # an empty column would only take width from the target
    show_alerts = any(x.alerts for x in exchanges)
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    # Names, addresses and flags are capped, and on a narrow terminal these columns and the target
    # give way, the widest first; their cells cut themselves with an ellipsis rather than wrap.
    table.add_column("time", no_wrap=True)
    table.add_column("container", max_width=20)
    table.add_column("client", max_width=24)
    table.add_column("method", no_wrap=True)
    table.add_column("target")
    table.add_column("status", no_wrap=True, justify="right")
    table.add_column("latency", no_wrap=True, justify="right")
    table.add_column("bytes", no_wrap=True, justify="right")
    if show_flags:
        table.add_column("flags", max_width=16)
    if show_alerts:
        table.add_column("alerts", max_width=24)
    for x in exchanges:
        target = x.target if len(x.target) <= TARGET_MAX else x.target[: TARGET_MAX - 1] + "…"
        table.add_row(
            _clock(x.ts, today),
            _container(x),
            _cut(x.client_container or _endpoint(x.client_ip, x.client_port)),
            Text(x.method),
            _cut(target, style=ALERT_STYLE if x.alerts else ""),
            _status(x.status),
            _latency(x.latency_ms),
            str(x.response_bytes),
            *([_cut(",".join(x.flags), style="yellow")] if show_flags else []),
            *([rules_cell(x)] if show_alerts else []),
        )
    return table
