"""The table of `eyes-devine flows` (and of `read --flows`, `watch --flows`): one line per flow summary."""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.table import Table

from eyes_devine.records import Flow
from eyes_devine.views.cells import clock, cut, endpoint, owner, plain

PROTOCOL_STYLES = {"dns": "cyan", "tls": "green", "ssh": "magenta", "ftp": "yellow", "http": "blue"}


def _peer(ip: str, port: int) -> str:
    return endpoint(ip, port) if port else ip


def _size(count: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f}{unit}"
    return str(count)


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.0f}m"


def flows_table(flows: Iterable[Flow], now: float) -> Table:
    """Flows as a table, in the order given; ``now`` decides which times are today and need no date.

    Packets and bytes read client → server / server → client.
    """
    today = tuple(time.localtime(now)[:3])
    flows = list(flows)
    # Without any container the column would only take width.
    owned = any(f.attribution.container_id or f.attribution.client_container_id for f in flows)
    show_observer = len({f.observer for f in flows}) > 1  # a database many hosts write
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    table.add_column("start", no_wrap=True)
    if show_observer:
        table.add_column("observer", max_width=16)
    if owned:
        table.add_column("container", max_width=20)
    table.add_column("client", min_width=10, max_width=24)
    table.add_column("server", min_width=10, max_width=26)
    table.add_column("proto", no_wrap=True)
    table.add_column("name")
    table.add_column("pkts →/←", no_wrap=True, justify="right")
    table.add_column("bytes →/←", no_wrap=True, justify="right")
    table.add_column("time", no_wrap=True, justify="right")
    for flow in flows:
        table.add_row(
            clock(flow.ts_first, today),
            *([cut(flow.observer or "-")] if show_observer else []),
            *([owner(flow.attribution)] if owned else []),
            cut(flow.attribution.client_container or _peer(flow.client_ip, flow.client_port)),
            cut(_peer(flow.server_ip, flow.server_port)),
            plain(flow.protocol, style=PROTOCOL_STYLES.get(flow.protocol, "")),
            cut(flow.sni or flow.detail or "", style="" if flow.sni else "dim"),
            f"{flow.client_packets}/{flow.server_packets}",
            f"{_size(flow.client_bytes)}/{_size(flow.server_bytes)}",
            _duration(flow.ts_last - flow.ts_first),
        )
    return table
