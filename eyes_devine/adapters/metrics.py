"""Prometheus metrics with prometheus_client: the metric families, their registry, and the `/metrics` server.

Names follow the OpenTelemetry HTTP semantic conventions as Prometheus spells
them (``http.server.request.duration`` in seconds →
``http_server_request_duration_seconds``), so dashboards written for
instrumented services read eyes-devine's too.  The label names are that
contract; what fills them (route templates, the per-container cap) is decided
by the caller.  The monitor's own health is read at scrape time from a
callable, so the engine never writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

HTTP_LABELS = ("container", "compose_service", "http_request_method", "http_response_status_code", "http_route")
"""The labels of every request metric; for client requests ``container`` is the calling container."""
RPC_LABELS = ("container", "compose_service", "rpc_system", "rpc_service", "rpc_method", "rpc_grpc_status_code")
"""The labels of the gRPC call metrics, as the OpenTelemetry RPC conventions name the attributes."""
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""The buckets the semantic conventions advise for ``http.server.request.duration``."""
SIZE_BUCKETS = (0, 64, 256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 4 << 20, 16 << 20, 64 << 20)


class MetricsServerError(Exception):
    """The /metrics address cannot be served (in use, not an address of this host, a privileged port)."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of the monitor's health, read at scrape time."""

    name: str
    """Without the ``eyes_devine_`` prefix; counters without ``_total`` (prometheus_client adds it)."""
    help: str
    value: float
    counter: bool = True
    """A count that only grows (else a gauge)."""
    labels: tuple[tuple[str, str], ...] = ()


class _HealthCollector:
    """Turns the readings of one scrape into metric families (one family per name, a sample per label set)."""

    def __init__(self, readings: Callable[[], Iterable[Reading]]) -> None:
        self._readings = readings

    def collect(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for reading in self._readings():
            family = families.get(reading.name)
            if family is None:
                kind = CounterMetricFamily if reading.counter else GaugeMetricFamily
                family = families[reading.name] = kind(f"eyes_devine_{reading.name}", reading.help,
                                                       labels=[name for name, _ in reading.labels])
            family.add_metric([value for _, value in reading.labels], reading.value)
        yield from families.values()

    def describe(self) -> list[Metric]:
        return []  # the families depend on what is running; nothing to check at registration


class Metrics:
    """Every metric eyes-devine exposes, in a registry of its own (not the process-global one)."""

    def __init__(self, health: Callable[[], Iterable[Reading]]) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # the monitor's own CPU and memory: its cost, in the same scrape

        def histogram(name: str, help: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, help, HTTP_LABELS, buckets=buckets, registry=self.registry)

        self.server_duration = histogram("http_server_request_duration_seconds",
                                         "Time from the first request byte to the last response byte, "
                                         "requests a container served", DURATION_BUCKETS)
        self.server_request_size = histogram("http_server_request_body_size_bytes",
                                             "Request body sizes, requests with a body a container served",
                                             SIZE_BUCKETS)
        self.server_response_size = histogram("http_server_response_body_size_bytes",
                                              "Response body sizes, requests a container served", SIZE_BUCKETS)
        self.client_duration = histogram("http_client_request_duration_seconds",
                                         "Time from the first request byte to the last response byte, "
                                         "requests a container sent to a server that is not a container",
                                         DURATION_BUCKETS)
        self.client_request_size = histogram("http_client_request_body_size_bytes",
                                             "Request body sizes, requests with a body a container sent out",
                                             SIZE_BUCKETS)
        self.client_response_size = histogram("http_client_response_body_size_bytes",
                                              "Response body sizes, requests a container sent out", SIZE_BUCKETS)
        self.rpc_server_duration = Histogram("rpc_server_call_duration_seconds",
                                             "Time from the first request byte to the last response byte, gRPC "
                                             "calls a container served, by gRPC status", RPC_LABELS,
                                             buckets=DURATION_BUCKETS, registry=self.registry)
        self.rpc_client_duration = Histogram("rpc_client_call_duration_seconds",
                                             "Time from the first request byte to the last response byte, gRPC "
                                             "calls a container sent to a server that is not a container, by gRPC "
                                             "status", RPC_LABELS, buckets=DURATION_BUCKETS, registry=self.registry)
        self.unanswered = Counter("eyes_devine_unanswered_requests",
                                  "Requests seen with no response (the connection ended, or capture lost it)",
                                  ("container", "side"), registry=self.registry)
        self.alerts = Counter("eyes_devine_alerts", "Exchanges that matched a suspicious-request rule, by rule",
                              ("rule", "container"), registry=self.registry)
        self.registry.register(_HealthCollector(health))  # type: ignore[arg-type]
        self._server: object | None = None

    def histograms(self, server_side: bool) -> tuple[Histogram, Histogram, Histogram]:
        """Duration, request size and response size: of requests a container served, or of those it sent out."""
        if server_side:
            return self.server_duration, self.server_request_size, self.server_response_size
        return self.client_duration, self.client_request_size, self.client_response_size

    def rpc_histogram(self, server_side: bool) -> Histogram:
        """The duration of gRPC calls a container served, or of those it sent out."""
        return self.rpc_server_duration if server_side else self.rpc_client_duration

    def serve(self, address: str, port: int) -> None:
        """Serve /metrics on ``address:port`` from a thread of prometheus_client's own."""
        try:
            self._server, _thread = start_http_server(port, addr=address, registry=self.registry)
        except OSError as error:
            raise MetricsServerError(f"cannot serve metrics on {_host_port(address, port)}: "
                                     f"{error.strerror or error}") from None

    def close(self) -> None:
        server = self._server
        if server is not None:
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]
            self._server = None


def _host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
