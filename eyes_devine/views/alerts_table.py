"""The table of `eyes-devine alerts`: stored exchanges that matched a suspicious-request rule.

The rule ids come right after who sent the request, before what was asked,
because they are what the reader scans for; the outcome comes last, and says
whether the attack was answered; cells are the `requests` table's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.table import Table

from eyes_devine.records import Exchange
from eyes_devine.views.cells import clock, cut, endpoint, outcome_cell, owner, plain, rules, short_target, status


def alerts_table(exchanges: Iterable[Exchange], now: float) -> Table:
    """Alerting exchanges as a table; ``now`` decides which times are today and need no date."""
    today = tuple(time.localtime(now)[:3])
    exchanges = list(exchanges)
    show_observer = len({x.observer for x in exchanges}) > 1  # a database many hosts write
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    table.add_column("time", no_wrap=True)
    if show_observer:
        table.add_column("observer", max_width=16)
    table.add_column("container", max_width=20)
    table.add_column("client", max_width=24)
    table.add_column("rules", max_width=40)
    table.add_column("method", no_wrap=True)
    table.add_column("target")
    table.add_column("status", no_wrap=True, justify="right")
    table.add_column("outcome", no_wrap=True)
    for x in exchanges:
        table.add_row(
            clock(x.ts, today),
            *([cut(x.observer or "-")] if show_observer else []),
            owner(x.attribution),
            cut(x.attribution.client_container or endpoint(x.client_ip, x.client_port)),
            rules(x.alerts),
            plain(x.method),
            cut(short_target(x.target)),
            status(x.status),
            outcome_cell(x),
        )
    return table
