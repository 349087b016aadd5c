"""Exchanges into Prometheus metrics, and the monitor's health read at scrape time.

:class:`MetricsSink` runs on the engine thread like every sink, and never
waits for I/O: observing a histogram is a few in-memory increments under
prometheus_client's lock (about half a microsecond); the text a scrape reads
is made on prometheus_client's server thread.  Labels are bounded: the method
(:func:`~eyes_devine.core.routes.method_label`), the route (templates, and at
most ``--max-routes`` per container), and the containers, whose series are
dropped a grace period after they are removed.  A gRPC call also counts in
the RPC duration histogram by service, method and gRPC status (a failed call
still answers HTTP 200), with at most ``--max-routes`` methods per container.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from eyes_devine.adapters.metrics import Metrics, Reading
from eyes_devine.adapters.store.writer import StoreWriter
from eyes_devine.app.directory import ContainerDirectory
from eyes_devine.core.routes import OTHER_ROUTE, RouteCap, method_label
from eyes_devine.records import ContainerInfo, Exchange
from eyes_devine.sinks import NO_LOSSES, Record, Sink, SinkCounters
from eyes_devine.snapshots import MonitorSnapshot

MAX_CACHED_TARGET = 512


class MetricsSink:
    """The request histograms and the alert counter, by container, method, status and route."""

    name = "metrics"

    def __init__(self, metrics: Metrics, directory: ContainerDirectory, max_routes: int = 100,
                 grace_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics = metrics
        self._directory = directory
        self._routes = RouteCap(max_routes)
        self._grace = grace_seconds
        self._clock = clock
        self._children: dict[tuple[bool, str, str, str, str, str], tuple[object, object, object]] = {}
        """(server side?, labels...) → the three histograms' children: a label lookup once per series."""
        self._series: dict[str, set[tuple[bool, str, str, str, str, str]]] = {}
        """Container name → its series keys, so a removed container's series can be dropped."""
        self._alert_series: dict[str, set[str]] = {}
        self._rpc_methods = RouteCap(max_routes)
        self._rpc_series: dict[str, set[tuple[bool, tuple[str, ...]]]] = {}
        """Container name → its gRPC series (server side?, labels)."""
        self._recent: dict[tuple[object, str, int, str], tuple[object, object, object]] = {}
        """(attribution, method, status, target) → the series' children: a repeated request costs one lookup, not
        a route template, a cap check and a label lookup.  Bounded; emptied when series are dropped."""
        self._missing_since: dict[str, float] = {}
        self._lock = threading.Lock()
        """Between the engine thread (observing) and the service loop (dropping removed containers' series)."""
        self.accepted = 0

    def accept(self, record: Record) -> None:
        if type(record) is not Exchange:
            return
        self.accepted += 1
        status = record.status
        with self._lock:
            if status is not None:
                if len(record.target) > MAX_CACHED_TARGET:  # a 64 KiB target must not stay in memory as a key
                    children = self._series_of(record)
                else:
                    recent = (record.attribution, record.method, status, record.target)
                    children = self._recent.get(recent)
                    if children is None:
                        children = self._series_of(record)
                        if len(self._recent) >= 65536:
                            self._recent.clear()
                        self._recent[recent] = children
                duration, request_size, response_size = children
                duration.observe((record.duration_ms or 0.0) / 1000.0)  # type: ignore[attr-defined]
                if record.request_bytes:  # a request without a body has no body size (as instrumentations record it)
                    request_size.observe(record.request_bytes)  # type: ignore[attr-defined]
                response_size.observe(record.response_bytes)  # type: ignore[attr-defined]
                if record.grpc_status is not None:
                    self._observe_call(record)
            if status is None or record.alerts:
                self._count_apart(record)

    @staticmethod
    def _side(record: Exchange) -> tuple[bool, str | None, str | None]:
        """Server side?, and the container whose series it is: the server, else the calling container."""
        attribution = record.attribution
        if attribution.container is not None or attribution.client_container is None:
            return True, attribution.container, attribution.container_id
        return False, attribution.client_container, attribution.client_container_id

    def _series_of(self, record: Exchange) -> tuple[object, object, object]:
        server_side, container, short_id = self._side(record)
        name = container or ""
        key = (server_side, name, self._service(short_id, container), method_label(record.method),
               str(record.status), self._routes.route(name, record.target))
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = self._new_series(key)
        return children

    def _observe_call(self, record: Exchange) -> None:
        """A gRPC call with its status, in the RPC histogram: ``/package.Service/Method`` gives the two labels."""
        server_side, container, short_id = self._side(record)
        name = container or ""
        route = self._rpc_methods.route(name, record.target.partition("?")[0])
        service, _, method = route.lstrip("/").rpartition("/")
        if not service or route == OTHER_ROUTE:
            service = method = "{other}"
        labels = (name, self._service(short_id, container), "grpc", service, method, str(record.grpc_status))
        self.metrics.rpc_histogram(server_side).labels(*labels).observe((record.duration_ms or 0.0) / 1000.0)
        self._rpc_series.setdefault(name, set()).add((server_side, labels))

    def _count_apart(self, record: Exchange) -> None:
        """What is not a duration: a request without a response, the alerts it raised."""
        server_side, container, _ = self._side(record)
        name = container or ""
        if record.status is None:
            self.metrics.unanswered.labels(name, "server" if server_side else "client").inc()
            self._series.setdefault(name, set())
        for rule in record.alerts:
            self.metrics.alerts.labels(rule, name).inc()
            self._alert_series.setdefault(name, set()).add(rule)

    def _service(self, short_id: str | None, name: str | None) -> str:
        info = self._directory.get(short_id, name)
        return (info.compose_service or "") if info is not None else ""

    def _new_series(self, key: tuple[bool, str, str, str, str, str]) -> tuple[object, object, object]:
        server_side, *labels = key
        self._series.setdefault(labels[0], set()).add(key)
        histograms = self.metrics.histograms(server_side)
        return tuple(histogram.labels(*labels) for histogram in histograms)  # type: ignore[return-value]

    def follow(self, running: Sequence[ContainerInfo], docker_reachable: bool) -> list[str]:
        """Drop the series of containers gone for longer than the grace period; returns their names.

        Called once per tick with the containers running now.  While Docker is
        unreachable nothing is known to be gone, so nothing is dropped.
        """
        if not docker_reachable:
            return []
        now = self._clock()
        names = {info.name for info in running}
        dropped = []
        with self._lock:
            for name in [name for name in {*self._series, *self._alert_series, *self._rpc_series}
                         if name and name not in names]:
                since = self._missing_since.setdefault(name, now)
                if now - since >= self._grace:
                    self._drop(name)
                    dropped.append(name)
            for name in [name for name in self._missing_since if name in names]:
                del self._missing_since[name]  # it came back (a container of that name runs again)
        return sorted(set(dropped))

    def _drop(self, name: str) -> None:
        self._recent.clear()
        metrics = self.metrics
        for key in self._series.pop(name, set()):
            server_side, *labels = key
            for histogram in metrics.histograms(server_side):
                histogram.remove(*labels)
            del self._children[key]
        for side in ("server", "client"):
            try:
                metrics.unanswered.remove(name, side)
            except KeyError:
                pass
        for rule in self._alert_series.pop(name, set()):
            metrics.alerts.remove(rule, name)
        for server_side, labels in self._rpc_series.pop(name, set()):
            metrics.rpc_histogram(server_side).remove(*labels)
        self._routes.forget(name)
        self._rpc_methods.forget(name)
        self._missing_since.pop(name, None)

    def flush(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float) -> None:
        self.metrics.close()

    def counters(self) -> SinkCounters:
        return SinkCounters(self.accepted, self.accepted, 0)

    def losses(self) -> Mapping[str, int]:
        return NO_LOSSES


_ENGINE_HELP = {
    "packets": "Frames the engine decoded",
    "bytes": "Bytes of the frames the engine decoded",
    "exchanges": "HTTP exchanges recorded",
    "gaps": "Holes in TCP streams (bytes the capture lost)",
    "tls_streams": "TLS connections seen on HTTP ports",
    "tls_decrypted": "TLS connections decrypted with the key log (--tls-keylog)",
    "non_http_streams": "Connections on HTTP ports that did not carry HTTP",
}


def health_readings(snapshot: MonitorSnapshot | None, sinks: Sequence[Sink], now: float) -> Iterator[Reading]:
    """The monitor's own health at one scrape: engine counters, drops by stage, sniffers, Docker, the store."""
    if snapshot is None:
        return
    for name, value in snapshot.engine.counters.items():
        if isinstance(value, int):
            yield Reading(name, _ENGINE_HELP.get(name) or f"Engine counter: {name.replace('_', ' ')}", value)
    yield Reading("kernel_drops", "Frames the kernel dropped before the sniffers read them", snapshot.kernel_drops)
    yield Reading("queue_drops", "Frames dropped because the engine fell behind the sniffers", snapshot.queue_drops)
    for sink in sinks:
        accepted, written, dropped = sink.counters()
        yield Reading("sink_written", "Records each output delivered", written, labels=(("sink", sink.name),))
        yield Reading("sink_dropped", "Records each output gave up (queue full, failed write, reader gone)",
                      dropped, labels=(("sink", sink.name),))
        if isinstance(sink, StoreWriter):
            queued, seconds = sink.lag(now)
            yield Reading("store_queued_records", "Records waiting to be written to the database", queued,
                          counter=False)
            yield Reading("store_lag_seconds", "Age of the oldest record waiting to be written (0 when none waits)",
                          seconds, counter=False)
    for interface, up in snapshot.sniffers.items():
        yield Reading("sniffer_up", "1 while the interface's sniffer is capturing", int(up), counter=False,
                      labels=(("interface", interface),))
    yield Reading("docker_up", "1 while the Docker Engine answers", int(snapshot.docker_reachable), counter=False)
    yield Reading("containers", "Containers running", snapshot.containers, counter=False)

