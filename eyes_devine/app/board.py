"""Per-container aggregates for the live view: counts, rates, latency percentiles, the latest exchanges.

A sink that never blocks: ``accept`` is called for every record (on the
engine thread, or by the database poller of ``watch --attach``) and only bumps
counters; the work of sorting latencies happens in :meth:`Board.snapshot`, at the
view's refresh rate.  One lock makes ``add`` and ``snapshot`` safe across those
threads, and a snapshot is plain immutable data the renderer can take its time
over, as bandwhich hands its display one snapshot per tick.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from eyes_devine.records import ANSWERED, UNATTRIBUTED, Exchange, Flow, bucket_of, outcome
from eyes_devine.sinks import NO_LOSSES, Record, SinkCounters
from eyes_devine.snapshots import ContainerRow, Snapshot

RATE_WINDOW = 60
"""Seconds over which requests/s is averaged."""
LATENCY_SAMPLES = 1000
"""Latest latencies kept per container for p50/p95."""


class _Tally:
    __slots__ = ("name", "requests", "by_class", "latencies", "seconds", "last", "last_seen", "alerts", "answered")

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests = 0
        self.by_class = [0, 0, 0, 0, 0]
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.seconds: deque[list[int]] = deque()
        """[second, count] pairs of the last RATE_WINDOW seconds, oldest first."""
        self.last: Exchange | None = None
        self.last_seen = 0.0
        self.alerts = 0
        self.answered = 0
        """Alerting exchanges the server answered: attacks that may have worked."""


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Board:
    """Aggregates exchanges per serving container (else calling container, else unattributed).

    ``wanted`` narrows what is shown (`watch -c`, `--ports`, `-i`); with ``flows``
    the board also keeps that many of the latest flow summaries.
    """

    name = "board"

    def __init__(self, latest: int = 200, wanted: Callable[[Record], bool] | None = None, flows: int = 0) -> None:
        self._tallies: dict[tuple[str | None, str], _Tally] = {}
        """(observer, bucket) -> its tally: many hosts' containers are told apart."""
        self._latest: deque[Exchange] = deque(maxlen=latest)
        self._flows: deque[Flow] | None = deque(maxlen=flows) if flows else None
        self._lock = threading.Lock()
        self._wanted = wanted or (lambda record: True)
        self.total = 0
        self._accepted = 0

    def accept(self, record: Record) -> None:
        self._accepted += 1
        if type(record) is Flow:
            if self._flows is not None and self._wanted(record):
                self._flows.append(record)
        else:
            self.add(record)  # type: ignore[arg-type]

    def replace_flows(self, flows: Iterable[Flow]) -> None:
        """The latest flow summaries as read from a database (`watch --attach --flows`), oldest first."""
        if self._flows is not None:
            fresh = deque((flow for flow in flows if self._wanted(flow)), maxlen=self._flows.maxlen)
            self._flows = fresh

    def flush(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float) -> None:
        """Nothing to deliver: the board is memory."""

    def counters(self) -> SinkCounters:
        return SinkCounters(self._accepted, self._accepted, 0)

    def losses(self) -> Mapping[str, int]:
        return NO_LOSSES

    def add(self, x: Exchange) -> None:
        if not self._wanted(x):
            return
        bucket = bucket_of(x)
        name = x.attribution.container or x.attribution.client_container or bucket
        second = int(x.ts)
        key = (x.observer, bucket)
        with self._lock:
            tally = self._tallies.get(key)
            if tally is None:
                tally = self._tallies[key] = _Tally(name)
            tally.name = name  # renamed containers show their latest name
            tally.requests += 1
            if x.alerts:
                tally.alerts += 1
                if outcome(x) == ANSWERED:
                    tally.answered += 1
            status = x.status
            tally.by_class[status // 100 - 2 if status is not None and 200 <= status < 600 else 4] += 1
            if x.latency_ms is not None:
                tally.latencies.append(x.latency_ms)
            seconds = tally.seconds
            if seconds and seconds[-1][0] == second:
                seconds[-1][1] += 1
            else:
                seconds.append([second, 1])
                while seconds and seconds[0][0] <= second - RATE_WINDOW:
                    seconds.popleft()
            if x.ts >= tally.last_seen:
                tally.last, tally.last_seen = x, x.ts
            self._latest.append(x)
            self.total += 1

    def snapshot(self, now: float, services: Mapping[str, tuple[str | None, str | None]] | None = None) -> Snapshot:
        """Rows by activity (rate, then requests), the latest exchanges and flows; ``services`` names the compose
        service and image of each running container by short id."""
        services = services or {}
        flows = tuple(self._flows) if self._flows is not None else ()
        with self._lock:
            raw = [(key, t.name, t.requests, tuple(t.by_class), list(t.latencies),
                    sum(count for second, count in t.seconds if second > now - RATE_WINDOW), t.last, t.last_seen,
                    t.alerts, t.answered)
                   for key, t in self._tallies.items()]
            latest = tuple(self._latest)
            total = self.total
        rows = []
        for (observer, key), name, requests, by_class, latencies, recent, last, last_seen, alerts, answered in raw:
            latencies.sort()
            service, image = services.get(key, (None, None))
            rows.append(ContainerRow(
                key=key, observer=observer, name=name, service=service, image=image, requests=requests,
                rate=recent / RATE_WINDOW, by_class=by_class,  # type: ignore[arg-type]
                p50_ms=_percentile(latencies, 0.50) if latencies else None,
                p95_ms=_percentile(latencies, 0.95) if latencies else None,
                last=last, last_seen=last_seen, alerts=alerts, answered_alerts=answered,
            ))
        rows.sort(key=lambda row: (row.key == UNATTRIBUTED, -row.rate, -row.requests, row.name, row.observer or ""))
        return Snapshot(tuple(rows), latest, total, flows)
