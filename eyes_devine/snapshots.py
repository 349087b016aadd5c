"""Immutable pictures of the running monitor, made once per tick for the views to draw.

The views (rich's refresh thread included) read only these, never engine or
Docker state that another thread is changing, as bandwhich hands its display one
snapshot per tick.
"""

from __future__ import annotations

from dataclasses import dataclass

from eyes_devine.records import Exchange


@dataclass(frozen=True, slots=True)
class ContainerRow:
    """One line of the container table."""

    key: str
    """Container id (short), or "unattributed"."""
    name: str
    service: str | None
    image: str | None
    requests: int
    rate: float
    """Requests per second over the last minute."""
    by_class: tuple[int, int, int, int, int]
    """Responses 2xx, 3xx, 4xx, 5xx, and exchanges without a response."""
    p50_ms: float | None
    p95_ms: float | None
    last: Exchange | None
    last_seen: float
    alerts: int = 0
    """Exchanges that matched a suspicious-request rule."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    rows: tuple[ContainerRow, ...]
    latest: tuple[Exchange, ...]
    """Newest last."""
    total: int


@dataclass(frozen=True, slots=True)
class Status:
    """What the header says: where the data comes from and how healthy that is."""

    source: str
    """"capturing on docker0, br-1a2b" or "attached to /var/lib/eyes-devine/exchanges.db"."""
    packets: int | None
    kernel_drops: int | None
    docker: str
    docker_ok: bool
    cpu_percent: float
    rss_bytes: int
    problems: tuple[str, ...] = ()
    """Latest warnings (a sniffer stopped, the database cannot be read), newest last."""
