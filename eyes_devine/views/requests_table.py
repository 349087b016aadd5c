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
from eyes_devine.views.cells import (
    ALERT_STYLE,
    clock,
    cut,
    endpoint,
    latency,
    owner,
    plain,
    rules,
    short_target,
    status,
)


def requests_table(exchanges: Iterable[Exchange], now: float) -> Table:
    """Exchanges as a table; ``now`` decides which times are today and need no date."""
    today = tuple(time.localtime(now)[:3])
    exchanges = list(exchanges)
    show_flags = any(x.flags for x in exchanges)  # an empty column would only take width from the target
    show_alerts = any(x.alerts for x in exchanges)
    show_observer = len({x.observer for x in exchanges}) > 1  # a database many hosts write
    show_grpc = any(x.grpc_status is not None for x in exchanges)  # gRPC calls answer 200 whatever happened
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    # Names, addresses and flags are capped, and on a narrow terminal these columns and the target
    # give way, the widest first; their cells cut themselves with an ellipsis rather than wrap.
    table.add_column("time", no_wrap=True)
    if show_observer:
        table.add_column("observer", max_width=16)
    table.add_column("container", max_width=20)
    table.add_column("client", max_width=24)
    table.add_column("method", no_wrap=True)
    table.add_column("target")
    table.add_column("status", no_wrap=True, justify="right")
    if show_grpc:
        table.add_column("grpc", no_wrap=True, justify="right")
    table.add_column("latency", no_wrap=True, justify="right")
    table.add_column("bytes", no_wrap=True, justify="right")
    if show_flags:
        table.add_column("flags", max_width=16)
    if show_alerts:
        table.add_column("alerts", max_width=24)
    for x in exchanges:
        table.add_row(
            clock(x.ts, today),
            *([cut(x.observer or "-")] if show_observer else []),
            owner(x.attribution),
            cut(x.attribution.client_container or endpoint(x.client_ip, x.client_port)),
            plain(x.method),
            cut(short_target(x.target), style=ALERT_STYLE if x.alerts else ""),
            status(x.status),
            *([_grpc(x.grpc_status)] if show_grpc else []),
            latency(x.latency_ms),
            str(x.response_bytes),
            *([cut(",".join(x.flags), style="yellow")] if show_flags else []),
            *([rules(x.alerts)] if show_alerts else []),
        )
    return table


def _grpc(code: int | None) -> Text:
    """gRPC's status: 0 (OK) plain, another code in red, nothing for what is not a call."""
    if code is None:
        return Text("")
    return Text(str(code), style="" if code == 0 else "red")
