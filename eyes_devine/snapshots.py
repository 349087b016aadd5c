"""Immutable pictures of the running monitor, made once per tick for the views to draw.

The views (rich's refresh thread included) read only these, never engine or
Docker state that another thread is changing, as bandwhich hands its display one
snapshot per tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from eyes_devine.records import ContainerInfo, Exchange, Flow


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
    answered_alerts: int = 0
    """Of those, the ones the server answered (see :func:`~eyes_devine.records.outcome`): attacks that may have
    worked."""
    observer: str | None = None
    """The host that captured these (a database many hosts write has a row per observer and container)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The per-container board at one moment."""

    rows: tuple[ContainerRow, ...]
    latest: tuple[Exchange, ...]
    """Newest last."""
    total: int
    flows: tuple[Flow, ...] = ()
    """Flow summaries that ended lately, newest last (when the board keeps them: `watch --flows`)."""


EMPTY_MAPPING: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """The engine's counters and open flows, copied on the engine thread once per tick."""

    at: float
    """Wall-clock time of the copy."""
    counters: Mapping[str, object] = field(default_factory=lambda: EMPTY_MAPPING)
    """:class:`~eyes_devine.records.EngineCounters` by field name."""
    flows_open: int = 0
    flow_summaries: int = 0
    """Flow summaries written so far (--all-traffic)."""
    flow_evictions: int = 0
    active_flows: tuple[Flow, ...] = ()
    """The most recently active flows still open, attributed (only when a view asked for them)."""
    worker_packets: tuple[int, ...] = ()
    """Packets each capture worker decoded (``--workers`` above one): how evenly the flow hash shares them."""


@dataclass(frozen=True, slots=True)
class MonitorSnapshot:
    """Everything about a capturing monitor that its log and its screen show, at one moment."""

    engine: EngineSnapshot
    kernel_drops: int
    queue_drops: int
    """Frames the engine's queue refused (the engine fell behind the sniffers)."""
    docker_reachable: bool
    docker: str
    """"12 containers", or what is wrong with the Docker Engine."""
    containers: int
    services: Mapping[str, tuple[str | None, str | None]] = field(default_factory=lambda: MappingProxyType({}))
    """Running container's short id -> (compose service, image)."""
    ports: tuple[int, ...] = ()
    bpf: str = ""
    sniffers: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))
    """Interface → whether its sniffer is capturing now."""
    running: tuple[ContainerInfo, ...] = ()
    """The containers running now, by name (empty while Docker is unreachable)."""


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


@dataclass(frozen=True, slots=True)
class WatchFrame:
    """Everything one frame of `watch` draws, made by the watch feed; the screen's thread only reads it."""

    status: Status
    board: Snapshot
    flows: tuple[Flow, ...] | None = None
    """Recent flows (ended and open), newest last, when the lower table shows flows; None for exchanges."""
