"""How the record leaves the host: the /metrics address, and OTLP as the standard OTEL_* variables say.

Parsed here from flags and a plain mapping of the environment (``config``
hands it in; nothing here reads ``os.environ``), so a bad value is one line
naming the flag or variable, at start.  The OTLP variables mean what the
OpenTelemetry specification says they mean, so a collector setup written for
any instrumented service works unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from eyes_devine.config.values import ConfigError, bounded_whole, parse_number, parse_seconds

DEFAULT_MAX_ROUTES = 100
ROUTE_BOUNDS = (1, 10_000)
DEFAULT_METRICS_GRACE = 300.0
"""Seconds a removed container's series stay exposed: long enough for a few scrapes to see their last counts."""
OTLP_PROTOCOLS = ("http/protobuf", "grpc")
TRACES_PATH = "v1/traces"

EXPORT_VARIABLES: dict[str, str] = {
    "EYES_DEVINE_METRICS": "serve Prometheus /metrics on [ADDR:]PORT (same as --metrics; a bare port is 127.0.0.1)",
    "EYES_DEVINE_MAX_ROUTES": "routes kept per container in metric labels (same as --max-routes; default 100)",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "export exchanges as spans to this OTLP collector (base URL, as the OTel spec "
                                   "says; same as --otlp)",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "the OTLP traces URL itself (used as given)",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf (default) or grpc (also _TRACES_PROTOCOL)",
    "OTEL_EXPORTER_OTLP_HEADERS": "key=value,... sent with every export, e.g. an API key (also _TRACES_HEADERS)",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "milliseconds one export may take (default 10000; also _TRACES_TIMEOUT)",
    "OTEL_RESOURCE_ATTRIBUTES": "key=value,... added to every span's resource (deployment.environment=prod)",
    "OTEL_SERVICE_NAME": "service.name of spans whose server is not a container (default unknown_service)",
    "OTEL_SDK_DISABLED": "true: no OTLP export from the environment (--otlp still exports)",
    "EYES_DEVINE_OTLP_SAMPLE": "share of exchanges exported, 0 to 1 (same as --otlp-sample; default 1)",
}


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    address: str
    port: int
    max_routes: int = DEFAULT_MAX_ROUTES
    grace_seconds: float = DEFAULT_METRICS_GRACE

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/metrics"


@dataclass(frozen=True, slots=True)
class OtlpSettings:
    endpoint: str
    """The traces URL the exporter posts to (or the gRPC target)."""
    source: str
    """Which flag or variable named it, for messages."""
    protocol: str = "http/protobuf"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    """May hold an API key: never printed."""
    timeout_seconds: float = 10.0
    resource: Mapping[str, str] = field(default_factory=dict)
    service_name: str = "unknown_service"
    sample: float = 1.0


def metrics_settings(flag: str | None, max_routes: int | None, grace: str | None,
                     environ: Mapping[str, str]) -> MetricsSettings | None:
    """``--metrics`` (else EYES_DEVINE_METRICS): None when neither asks for metrics."""
    if flag is not None:
        value, source = flag, "--metrics"
    elif environ.get("EYES_DEVINE_METRICS", "").strip():
        value, source = environ["EYES_DEVINE_METRICS"], "EYES_DEVINE_METRICS"
    else:
        return None
    address, port = parse_listen(value.strip(), source)
    routes = bounded_whole(max_routes, environ.get("EYES_DEVINE_MAX_ROUTES"), "--max-routes", "EYES_DEVINE_MAX_ROUTES",
                           DEFAULT_MAX_ROUTES, ROUTE_BOUNDS)
    seconds = DEFAULT_METRICS_GRACE if grace is None else parse_seconds(grace, "--metrics-grace", 0.0)
    return MetricsSettings(address, port, routes, seconds)


_HOST_PORT = re.compile(r"(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[A-Za-z0-9.\-]+)):(?P<port>[0-9]{1,5})")


def parse_listen(value: str, what: str) -> tuple[str, int]:
    """``9464`` → 127.0.0.1:9464 (a bare port stays on this host); ``0.0.0.0:9464``, ``[::]:9464`` or
    ``host:9464`` listen where they say, so a wider bind is always written out."""
    if value.isascii() and value.isdigit():
        address, port_text = "127.0.0.1", value
    else:
        match = _HOST_PORT.fullmatch(value)
        if match is None:
            raise ConfigError(f"{what}: {value!r} is not PORT or ADDRESS:PORT (examples: 9464, "
                                    "127.0.0.1:9464, 0.0.0.0:9464 to listen on every address, [::1]:9464)")
        address, port_text = match["v6"] or match["host"], match["port"]
    if not 1 <= int(port_text) <= 65535:
        raise ConfigError(f"{what}: port {port_text} is not 1-65535")
    return address, int(port_text)


def otlp_settings(flag: str | None, sample: str | None, environ: Mapping[str, str]) -> OtlpSettings | None:
    """``--otlp URL`` (a collector's base URL), else the OTEL_EXPORTER_OTLP_* variables; None when nothing asks."""
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf").strip()
    if flag is not None:
        endpoint, source = _traces_url(flag, "--otlp", protocol), "--otlp"
    elif environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    elif environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip():
        source = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        endpoint = _checked_url(environ[source].strip(), source)
    elif environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        source = "OTEL_EXPORTER_OTLP_ENDPOINT"
        endpoint = _traces_url(environ[source], source, protocol)
    else:
        return None
    if protocol not in OTLP_PROTOCOLS:
        raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not one eyes-devine sends; use "
                                "http/protobuf or grpc")
    headers = _pairs(environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or environ.get("OTEL_EXPORTER_OTLP_HEADERS"),
                     "OTEL_EXPORTER_OTLP_HEADERS")
    timeout = environ.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or environ.get("OTEL_EXPORTER_OTLP_TIMEOUT")
    ratio = sample if sample is not None else environ.get("EYES_DEVINE_OTLP_SAMPLE")
    resource = _pairs(environ.get("OTEL_RESOURCE_ATTRIBUTES"), "OTEL_RESOURCE_ATTRIBUTES")
    return OtlpSettings(
        endpoint=endpoint, source=source, protocol=protocol, headers=headers,
        timeout_seconds=parse_number(timeout, "OTEL_EXPORTER_OTLP_TIMEOUT", 1, 600_000, "a number of milliseconds")
        / 1000 if timeout else 10.0,
        resource=resource,
        service_name=(environ.get("OTEL_SERVICE_NAME") or "").strip() or resource.get("service.name")
        or "unknown_service",  # the spec: OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES
        sample=parse_number(ratio, "--otlp-sample" if sample is not None else "EYES_DEVINE_OTLP_SAMPLE", 0, 1)
        if ratio is not None and ratio.strip() else 1.0,
    )


def _checked_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what}: {url!r} is not an http:// or https:// URL "
                                "(example: http://collector:4318)")
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here, at start
    except ValueError:
        raise ConfigError(f"{what}: {url!r} has a port that is not a number") from None
    return url


def _traces_url(base: str, what: str, protocol: str) -> str:
    """A collector's base URL made into the traces URL, as the spec says for OTEL_EXPORTER_OTLP_ENDPOINT (gRPC
    takes the base as it is); a URL already ending in /v1/traces is kept."""
    url = _checked_url(base.strip(), what)
    if protocol == "grpc" or url.rstrip("/").endswith("/" + TRACES_PATH):
        return url
    return url.rstrip("/") + "/" + TRACES_PATH


def _pairs(value: str | None, what: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` with percent-encoded values, the format of OTEL_EXPORTER_OTLP_HEADERS and
    OTEL_RESOURCE_ATTRIBUTES."""
    pairs: dict[str, str] = {}
    for item in (value or "").split(","):
        if not item.strip():
            continue
        key, equals, text = item.partition("=")
        if not equals or not key.strip():
            raise ConfigError(f"{what}: {item.strip()[:40]!r} is not key=value (example: {what}=a=1,b=2)")
        pairs[key.strip()] = unquote(text.strip())
    return pairs
