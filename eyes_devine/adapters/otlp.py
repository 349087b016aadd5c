"""Exchanges as OpenTelemetry spans, exported over OTLP with the OpenTelemetry SDK's exporter.

Spans are built directly as the SDK's ``ReadableSpan`` values rather than
through a tracer: each exchange is observed after the fact, with its own start
and end times taken from the capture, and belongs to the resource of the
container that served (or sent) it, while a tracer provider has one resource.
The SDK's ``OTLPSpanExporter`` then groups them by resource and sends them.
Attribute names follow the HTTP semantic conventions; they are a public
contract, as metric names are.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from eyes_devine.records import ContainerInfo, Exchange

SCOPE = InstrumentationScope("eyes-devine")
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
ERROR_FLAGS = frozenset({"gap", "no_response", "truncated", "parse_error", "smuggling_suspect", "oversized",
                         "overlap_conflict"})
"""Flags that mean the exchange went wrong or cannot be trusted whole: they set ``error.type``."""
MAX_TEXT = 2048
"""Characters of a path, query or User-Agent kept: 512 exchanges of 64 KiB targets outgrow what collectors take."""


class OtlpError(Exception):
    """The exporter cannot be made (a protocol whose exporter is not installed)."""


@dataclass(frozen=True, slots=True)
class Ends:
    """What one exchange's spans need beyond the record: its route and bounded method, and the containers."""

    route: str
    method: str
    """The method if the conventions name it, else ``_OTHER``."""
    server: ContainerInfo | None
    client: ContainerInfo | None


GRPC_SERVER_ERRORS = frozenset({2, 4, 12, 13, 14, 15})
"""gRPC codes that are a server's error (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE,
DATA_LOSS), as the RPC conventions say; on a client's span every code but OK is."""


def is_error(x: Exchange) -> bool:
    """5xx, no response, a failed gRPC call, or a flag saying the exchange cannot be trusted whole: always
    exported."""
    return ((x.status or 0) >= 500 or x.status is None or bool(x.grpc_status)
            or any(flag in ERROR_FLAGS for flag in x.flags))


class SpanBuilder:
    """Spans for exchanges: a SERVER span for the serving container, and a CLIENT span in the same trace when the
    caller is a container.  Resources are made once per container."""

    def __init__(self, base: Mapping[str, str], host_name: str, default_service: str) -> None:
        self._base = dict(base)
        self._host_name = host_name
        self._unknown = Resource({**self._base, "service.name": default_service, "host.name": host_name})
        self._resources: dict[str, Resource] = {}

    def resource(self, info: ContainerInfo | None) -> Resource:
        if info is None:
            return self._unknown
        resource = self._resources.get(info.id)
        if resource is None:
            attributes = {**self._base, "service.name": info.compose_service or info.name,
                          "container.name": info.name, "container.id": info.id, "host.name": self._host_name}
            if info.image:
                attributes["container.image.name"] = info.image
            if info.compose_project:
                attributes["docker.compose.project"] = info.compose_project
            if len(self._resources) > 10_000:  # containers come and go; start again rather than grow
                self._resources.clear()
            resource = self._resources[info.id] = Resource(attributes)
        return resource

    def spans(self, x: Exchange, ends: Ends) -> list[ReadableSpan]:
        start = int(x.ts * 1e9)
        end = start + int((x.duration_ms if x.duration_ms is not None else x.latency_ms or 0.0) * 1e6)
        trace_id = random.getrandbits(128) or 1
        attributes = _attributes(x, ends)
        events = [Event("eyes_devine.alert", {"eyes_devine.rule": rule}, timestamp=start) for rule in x.alerts]
        name = f"{ends.method if ends.method == x.method else 'HTTP'} {ends.route}"  # the conventions' name
        error = _error_type(x, client_side=False)
        spans = []
        parent = None
        if ends.client is not None:
            parent = SpanContext(trace_id, random.getrandbits(64) or 1, is_remote=False, trace_flags=SAMPLED)
            client_error = _error_type(x, client_side=True)
            spans.append(ReadableSpan(
                name, parent, None, self.resource(ends.client),
                {**attributes, "network.peer.address": x.server_ip, "network.peer.port": x.server_port,
                 **({"error.type": client_error} if client_error else {})},
                events, kind=SpanKind.CLIENT, status=Status(StatusCode.ERROR) if client_error else Status(),
                start_time=start, end_time=end, instrumentation_scope=SCOPE))
        if ends.server is not None or ends.client is None:
            context = SpanContext(trace_id, random.getrandbits(64) or 1, is_remote=False, trace_flags=SAMPLED)
            spans.append(ReadableSpan(
                name, context, parent, self.resource(ends.server),
                {**attributes, "error.type": error} if error else attributes,
                events, kind=SpanKind.SERVER, status=Status(StatusCode.ERROR) if error else Status(),
                start_time=start, end_time=end, instrumentation_scope=SCOPE))
        return spans


def _attributes(x: Exchange, ends: Ends) -> dict[str, object]:
    path, _, query = x.target.partition("?")
    host, port = _host_and_port(x.host, x.server_port)
    attributes: dict[str, object] = {
        "http.request.method": ends.method,
        "url.path": path.partition("#")[0][:MAX_TEXT],
        "url.scheme": "https" if "tls" in x.flags else "http",
        "http.route": ends.route,
        "server.address": host or x.server_ip,
        "server.port": port,
        "client.address": x.client_ip,
        "client.port": x.client_port,
        "network.peer.address": x.client_ip,
        "network.protocol.name": "http",
        "network.protocol.version": x.http_version,
        "network.transport": "tcp",
        "http.request.body.size": x.request_bytes,
        "eyes_devine.interface": x.interface,
    }
    if ends.method != x.method:
        attributes["http.request.method_original"] = x.method
    if query:
        attributes["url.query"] = query.partition("#")[0][:MAX_TEXT]  # redacted when the exchange was built
    if x.status is not None:
        attributes["http.response.status_code"] = x.status
        attributes["http.response.body.size"] = x.response_bytes
    if x.user_agent is not None:
        attributes["user_agent.original"] = x.user_agent[:MAX_TEXT]
    if x.flags:
        attributes["eyes_devine.flags"] = list(x.flags)
    if x.alerts:
        attributes["eyes_devine.alerts"] = list(x.alerts)
    if x.request_messages is not None:  # a gRPC call: the RPC conventions' attributes too
        service, _, method = path.lstrip("/").rpartition("/")
        attributes["rpc.system"] = "grpc"
        if service and method:
            attributes["rpc.service"], attributes["rpc.method"] = service, method
        if x.grpc_status is not None:
            attributes["rpc.grpc.status_code"] = x.grpc_status
    return attributes


def _host_and_port(host: str | None, default_port: int) -> tuple[str | None, int]:
    """The Host header split as the conventions want it: ``server.address`` without the port."""
    if not host:
        return None, default_port
    if host.startswith("["):
        address, _, rest = host[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        address, _, port_text = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5 and 0 < int(port_text) < 65536):
        return address or None, default_port  # str.isdigit() also accepts "²", which int() refuses
    return address or None, int(port_text)


def _error_type(x: Exchange, client_side: bool) -> str | None:
    """``error.type``: the status code for 5xx (and 4xx on the client side, as the conventions say), else the
    first flag that says the exchange went wrong."""
    if x.status is not None and (x.status >= 500 or (client_side and x.status >= 400)):
        return str(x.status)
    grpc = x.grpc_status
    if grpc and (client_side or grpc in GRPC_SERVER_ERRORS):
        return str(grpc)
    for flag in x.flags:
        if flag in ERROR_FLAGS:
            return flag
    return "no_response" if x.status is None else None


def check_protocol(protocol: str) -> type:
    """The SDK's exporter class for ``protocol``; OtlpError when it is not installed (gRPC is an extra)."""
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
        except ImportError:
            raise OtlpError("OTLP over gRPC needs its exporter: pip install opentelemetry-exporter-otlp-proto-grpc "
                            "(or use OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)") from None
        return Grpc  # type: ignore[no-any-return]
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    return Http


class _LastError(logging.Handler):
    """Keeps the exporter's last complaint, so one line of ours can say why an outage began."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()


class Exporter:
    """The SDK's OTLP span exporter for ``endpoint`` (OTLP/HTTP with protobuf, or gRPC)."""

    def __init__(self, endpoint: str, protocol: str, headers: Mapping[str, str], timeout: float) -> None:
        self._complaints = _LastError()
        self._down = False
        otel_log = logging.getLogger("opentelemetry")
        otel_log.addHandler(self._complaints)
        otel_log.propagate = False  # its lines would repeat per batch; ours say it once per outage
        exporter = check_protocol(protocol)
        self._exporter = exporter(endpoint=endpoint, headers=dict(headers), timeout=timeout)

    def export(self, spans: Sequence[ReadableSpan]) -> str | None:
        """Send ``spans``; None when the collector took them, else why not."""
        self._complaints.last = None
        try:
            result = self._exporter.export(spans)
        except Exception as error:  # the SDK catches its transport's errors; anything else must not end the sink
            return str(error) or type(error).__name__
        if result is SpanExportResult.SUCCESS:
            return None
        return self._complaints.last or "the collector refused the spans"

    def interrupt(self) -> None:
        """End the SDK's retries at once (at stop, the collector away); :meth:`shutdown` still follows."""
        if not self._down:
            self._down = True
            self._exporter.shutdown()

    def shutdown(self) -> None:
        self.interrupt()
        logging.getLogger("opentelemetry").removeHandler(self._complaints)
