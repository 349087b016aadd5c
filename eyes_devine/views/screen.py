"""The screen of `eyes-devine watch`: a header, a row per container, the latest exchanges.

Pure presentation: it draws a :class:`~eyes_devine.snapshots.Snapshot` and a
:class:`~eyes_devine.snapshots.Status` handed over by the command, never touching capture or Docker,
so rich's refresh thread only ever reads immutable data.  Names, compose
labels, images, targets and problems come from Docker or the network, so they
are escaped before they reach the terminal (:mod:`eyes_devine.views.safe`).
Columns are chosen by priority to fit the terminal's width: at 60 columns the
name, the request count and the status counts remain.
"""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from eyes_devine.records import UNATTRIBUTED, Flow
from eyes_devine.snapshots import ContainerRow, Snapshot, Status, WatchFrame
from eyes_devine.views.cells import ALERT_STYLE, STATUS_STYLES, latency
from eyes_devine.views.flows_table import flows_table
from eyes_devine.views.requests_table import requests_table
from eyes_devine.views.safe import safe


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{max(seconds, 0):.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    return f"{seconds // 3600:.0f}h"


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.0f} MB"


def header(status: Status, snapshot: Snapshot) -> Text:
    text = Text()
    text.append("eyes-devine watch", style="bold")
    text.append(f"  {safe(status.source)}")
    if status.packets is not None:
        text.append(f"  packets {status.packets:,}")
    if status.kernel_drops:
        text.append(f"  kernel drops {status.kernel_drops:,}", style="red")
    text.append(f"  exchanges {snapshot.total:,}")
    text.append("  Docker: ")
    text.append(safe(status.docker), style="green" if status.docker_ok else "yellow")
    text.append(f"  cpu {status.cpu_percent:.0f}%  mem {_megabytes(status.rss_bytes)}")
    for problem in status.problems:
        text.append(f"\n! {safe(problem)}", style="yellow")
    return text


_COLUMNS: list[tuple[str, int, str]] = [
    # name, width it needs (with padding), justify; listed in the order they are given up last to first
    ("observer", 14, "left"),
    ("container", 18, "left"),
    ("req", 7, "right"),
    ("2xx", 6, "right"),
    ("3xx", 5, "right"),
    ("4xx", 5, "right"),
    ("5xx", 5, "right"),
    ("alerts", 9, "right"),
    ("req/s", 7, "right"),
    ("p50", 8, "right"),
    ("p95", 8, "right"),
    ("last request", 28, "left"),
    ("age", 5, "right"),
    ("image", 16, "left"),
]
_PRIORITY = ["container", "observer", "req", "2xx", "4xx", "5xx", "3xx", "alerts", "req/s", "p95", "p50",
             "last request", "age", "image"]


def _fitting(width: int, alerts: bool = False, observers: bool = False) -> list[str]:
    """The columns that fit ``width``; "alerts" only once some exchange matched a rule, "observer" only when the
    rows come from more than one host."""
    widths = {name: need for name, need, _ in _COLUMNS}
    chosen: list[str] = []
    used = 0
    for name in _PRIORITY:
        if (name == "alerts" and not alerts) or (name == "observer" and not observers):
            continue
        if used + widths[name] <= width or not chosen:
            chosen.append(name)
            used += widths[name]
    return [name for name, _, _ in _COLUMNS if name in chosen]


def _cell(name: str, row: ContainerRow, now: float) -> Text | str:
    twoxx, threexx, fourxx, fivexx, _none = row.by_class
    if name == "container":
        label = row.name if row.key != UNATTRIBUTED else "(unattributed)"
        if row.service and row.service not in label:
            label += f" ({row.service})"
        return Text(safe(label), no_wrap=True, overflow="ellipsis", style="dim" if row.key == UNATTRIBUTED else "")
    if name == "observer":
        return Text(safe(row.observer or "-"), no_wrap=True, overflow="ellipsis")
    if name == "req":
        return f"{row.requests:,}"
    if name in ("2xx", "3xx", "4xx", "5xx"):
        count = {"2xx": twoxx, "3xx": threexx, "4xx": fourxx, "5xx": fivexx}[name]
        return Text(str(count), style=STATUS_STYLES.get(int(name[0]), "") if count else "dim")
    if name == "alerts":
        if row.answered_alerts:  # "12 (3!)": three of the twelve were answered
            return Text(f"{row.alerts:,} ({row.answered_alerts:,}!)", style="bold " + ALERT_STYLE)
        return Text(f"{row.alerts:,}", style=ALERT_STYLE if row.alerts else "dim")
    if name == "req/s":
        return f"{row.rate:.1f}"
    if name == "p50":
        return latency(row.p50_ms)
    if name == "p95":
        return latency(row.p95_ms)
    if name == "last request":
        if row.last is None:
            return ""
        last = row.last
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(safe(f"{last.method} {last.target} "), style=ALERT_STYLE if last.alerts else "")
        text.append(str(last.status) if last.status is not None else "-",
                    style=STATUS_STYLES.get((last.status or 0) // 100, "dim"))
        return text
    if name == "age":
        return _age(now - row.last_seen)
    if name == "image":
        return Text(safe(row.image or ""), no_wrap=True, overflow="ellipsis", style="dim")
    raise ValueError(name)


def containers_table(snapshot: Snapshot, width: int, now: float) -> Table:
    names = _fitting(width, any(row.alerts for row in snapshot.rows),
                     len({row.observer for row in snapshot.rows}) > 1)
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    justify = {name: how for name, _, how in _COLUMNS}
    for name in names:
        flexible = name in ("container", "observer", "last request", "image")
        table.add_column(name, justify=justify[name], no_wrap=True,  # type: ignore[arg-type]
                         ratio=1 if flexible else None, max_width=40 if flexible else None)
    for row in snapshot.rows:
        table.add_row(*(_cell(name, row, now) for name in names))
    if not snapshot.rows:
        table.add_row(Text("waiting for HTTP…", style="dim"), *([""] * (len(names) - 1)))
    return table


def screen(status: Status, snapshot: Snapshot, width: int, height: int, now: float | None = None,
           flows: tuple[Flow, ...] | None = None) -> RenderableType:
    """The whole screen for a terminal of ``width`` x ``height``; with ``flows`` (newest last) the lower table
    shows them instead of the latest exchanges."""
    now = time.time() if now is None else now
    top = header(status, snapshot)
    table = containers_table(snapshot, width, now)
    used = 2 + len(status.problems) + 2 + max(1, len(snapshot.rows)) + 2
    room = max(height - used - 1, 3)
    if flows is not None:
        recent = flows_table(flows[-room:], now) if flows else Text("waiting for flows…", style="dim")
        return Group(top, Text(""), table, Text(""), Text("recent flows", style="bold"), recent)
    latest = requests_table(snapshot.latest[-room:], now) if snapshot.latest else Text("")
    return Group(top, Text(""), table, Text(""), Text("latest", style="bold"), latest)


def frame_screen(frame: WatchFrame, width: int, height: int, now: float | None = None) -> RenderableType:
    """:func:`screen` for one frame of the watch feed."""
    return screen(frame.status, frame.board, width, height, now, flows=frame.flows)
