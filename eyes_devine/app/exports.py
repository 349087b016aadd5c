"""The exporters `run` and capturing `watch` start when asked: Prometheus /metrics and OTLP spans.

Both are sinks beside the store; they learn the containers' compose services
and images from one :class:`~eyes_devine.app.directory.ContainerDirectory`,
and the metrics read the monitor's health from the latest snapshot at scrape
time.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eyes_devine.adapters.metrics import Metrics
from eyes_devine.adapters.otlp import Exporter, SpanBuilder
from eyes_devine.app.directory import ContainerDirectory
from eyes_devine.app.logs import MemoryLog, ServiceLog
from eyes_devine.app.metrics import MetricsSink, health_readings
from eyes_devine.app.otlp import OtlpSink
from eyes_devine.config import Settings
from eyes_devine.sinks import Sink
from eyes_devine.snapshots import MonitorSnapshot


@dataclass
class Exports:
    """The exporting sinks, and what each tick tells them."""

    sinks: list[Sink] = field(default_factory=list)
    directory: ContainerDirectory = field(default_factory=ContainerDirectory)
    metrics: MetricsSink | None = None

    def tick(self, snapshot: MonitorSnapshot) -> list[str]:
        """A new picture of the monitor; returns log lines (containers whose series were dropped)."""
        if self.metrics is None:
            return []
        gone = self.metrics.follow(snapshot.running, snapshot.docker_reachable)
        return [f"metrics: series of removed container {name} dropped" for name in gone]


def open_exports(settings: Settings, log: ServiceLog | MemoryLog, latest: Callable[[], MonitorSnapshot | None],
                 outputs: Callable[[], Sequence[Sink]], now: Callable[[], float]) -> Exports:
    """Start what ``settings`` asks for; raises MetricsServerError (the address cannot be served) or OtlpError."""
    exports = Exports()
    if settings.otlp is not None:
        otlp = settings.otlp
        exporter = Exporter(otlp.endpoint, otlp.protocol, otlp.headers, otlp.timeout_seconds)
        builder = SpanBuilder(otlp.resource, socket.gethostname(), otlp.service_name)
        exports.sinks.append(OtlpSink(exporter, builder, exports.directory, otlp.endpoint, log, otlp.sample))
    if settings.metrics is not None:
        wanted = settings.metrics
        metrics = Metrics(lambda: health_readings(latest(), outputs(), now()))
        try:
            metrics.serve(wanted.address, wanted.port)
        except Exception:
            for sink in exports.sinks:
                sink.close(0)
            raise
        exports.metrics = MetricsSink(metrics, exports.directory, wanted.max_routes, wanted.grace_seconds)
        exports.sinks.append(exports.metrics)
    return exports
