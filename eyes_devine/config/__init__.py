"""The one Settings object: flags > environment > defaults, built once and passed down.

Its parts: checked numbers (:mod:`.values`), and how the record leaves the host
(:mod:`.exports`: Prometheus and OTLP).

No other module reads ``os.environ``; the CLI hands the environment in here, so
tests can build Settings from a plain dict.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from eyes_devine.config.exports import (
    EXPORT_VARIABLES,
    MetricsSettings,
    OtlpSettings,
    metrics_settings,
    otlp_settings,
)
from eyes_devine.config.values import WHOLE, ConfigError, bounded_whole, parse_seconds

__all__ = [  # the package's names for other modules, its parts' included
    "ConfigError", "DEFAULT_PORTS", "ENVIRONMENT_VARIABLES", "MetricsSettings", "OtlpSettings", "Settings",
    "bpf_filter", "default_db_path", "parse_observer", "parse_ports", "parse_seconds", "parse_since", "parse_status",
    "port_filter",
]

DEFAULT_PORTS: tuple[int, ...] = (80, 8080, 8000, 3000, 5000)
TLS_PORTS: tuple[int, ...] = (443, 8443)
"""Added to the default ports when a key log is given."""
DEFAULT_KEEP = 1000
DEFAULT_BATCH_SIZE = 500
DEFAULT_MAX_HEADER_BYTES = 65536
"""As nginx, Node and Go allow by default."""
KEEP_BOUNDS = (1, 10_000_000)
BATCH_BOUNDS = (1, 100_000)
WORKER_BOUNDS = (1, 64)
HEADER_BOUNDS = (1024, 16 << 20)
ABUSEIPDB_URL = "https://api.abuseipdb.com/api/v2/check"

DOCKER_ENVIRONMENT = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
"""The variables the Docker SDK reads, passed to it explicitly."""

ENVIRONMENT_VARIABLES: dict[str, str] = {
    "NETWORK_INTERFACES": "comma-separated interfaces to capture (same as repeated -i; `any`: all, on Linux)",
    "NETWORK_INTERFACE": "the same as NETWORK_INTERFACES, as ThreatWatch names it",
    "EYES_DEVINE_PORTS": "comma-separated TCP ports carrying HTTP (same as --ports)",
    "CAPTURE_FILTER": "a full BPF filter replacing the port filter (same as --filter)",
    "EYES_DEVINE_PROFILE": "an interface profile TOML file replacing the built-in one (same as --profile)",
    "EYES_DEVINE_DB": "the SQLite file or postgresql:// URL `run` writes and `requests` reads (same as --db)",
    "EYES_DEVINE_SPOOL": "a file batches wait in while the database cannot be reached (same as --spool)",
    "EYES_DEVINE_OBSERVER": "the name stored with every record this host captures (same as --observer; default "
                            "the hostname)",
    "EYES_DEVINE_KEEP": "exchanges kept per container (and per observer), in memory and on disk (same as --keep; "
                        "default 1000)",
    "EYES_DEVINE_RETAIN": "how long stored exchanges and flows are kept at most, e.g. 7d (same as --retain)",
    "EYES_DEVINE_WORKERS": "capture worker processes sharing the interfaces (same as --workers; default half the "
                           "cores, at most 8; Linux)",
    "EYES_DEVINE_BATCH_SIZE": "most exchanges written to SQLite in one transaction (same as --batch-size; default 500)",
    "EYES_DEVINE_MAX_HEADER_BYTES": "most bytes of one HTTP message head (same as --max-header-bytes; default 65536)",
    "EYES_DEVINE_TLS_KEYLOG": "an NSS key log (what SSLKEYLOGFILE names for curl, browsers, Node, Python, Go): TLS "
                              "is decrypted with it (same as --tls-keylog)",
    "EYES_DEVINE_LOG_FORMAT": "`run` log lines: text or json (same as --log-format)",
    "EYES_DEVINE_GEOIP": "a MaxMind .mmdb (GeoLite2 City or Country): where public peers are (same as --geoip)",
    "EYES_DEVINE_RULES": "a TOML file of suspicious-request rules added to the built-in ones (same as --rules)",
    "EYES_DEVINE_BLOCKLISTS": "comma-separated IP blocklist files added to the built-in list (same as --blocklist)",
    "ABUSEIPDB_API_KEY": "check public peers with AbuseIPDB's v2 API (cached, off the capture path)",
    "ABUSEIPDB_URL": "the AbuseIPDB check endpoint (default https://api.abuseipdb.com/api/v2/check)",
    "DOCKER_HOST": "Docker Engine address, as for the docker CLI (with DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)",
    **EXPORT_VARIABLES,
}
"""Every variable eyes-devine reads, for the README and --help."""


@dataclass(frozen=True, slots=True)
class Settings:
    interfaces: tuple[str, ...] | None = None
    """Interfaces asked for by name; None means discover them."""
    interfaces_source: str | None = None
    """Where ``interfaces`` came from ("-i" or "NETWORK_INTERFACES"), for messages."""
    ports: tuple[int, ...] = DEFAULT_PORTS
    ports_source: str = "default"
    """Where ``ports`` came from: "--ports", "EYES_DEVINE_PORTS" or "default"."""
    capture_filter: str | None = None
    """A full BPF expression overriding the port filter."""
    profile_path: str | None = None
    docker_environment: Mapping[str, str] = field(default_factory=dict)
    follow_docker_ports: bool = True
    """Add the ports containers expose or publish to the capture filter as they start."""
    db_path: str = ""
    """The SQLite database; the default is under the user's data directory (root: /var/lib/eyes-devine)."""
    observer: str = ""
    """The name of this host in what it stores (``--observer``, by default the hostname): many hosts share one
    PostgreSQL database."""
    spool: Path | None = None
    """A file batches wait in, past what memory holds, while the database cannot be reached (``--spool``)."""
    keep: int = DEFAULT_KEEP
    """Exchanges kept per (observer, container), and in each observer's unattributed bucket."""
    retain: float | None = None
    """Seconds a stored exchange or flow is kept at most (``--retain 7d``); None: no time bound, only ``keep``."""
    batch_size: int = DEFAULT_BATCH_SIZE
    workers: int | None = None
    """Capture worker processes (``--workers``); None: chosen from the cores."""
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    """Most bytes of one HTTP message head; past it the message is flagged ``oversized``."""
    tls_keylog: Path | None = None
    """An NSS key log whose secrets decrypt TLS on the HTTP ports (``--tls-keylog``); None: TLS is named by SNI."""
    log_format: str = "text"
    geoip_path: str | None = None
    """A MaxMind-format database for the country, city and coordinates of public peers."""
    rules_path: str | None = None
    """A TOML file of suspicious-request rules added to the built-in ones (``--rules``)."""
    blocklists: tuple[str, ...] = ()
    """IP/CIDR blocklist files (plain, FireHOL or Spamhaus DROP) on top of the built-in list."""
    abuseipdb_key: str | None = field(default=None, repr=False)
    abuseipdb_url: str = ABUSEIPDB_URL
    all_traffic: bool = False
    """Also summarise non-HTTP flows (DNS, TLS, SSH, ICMP, ...) per container."""
    metrics: MetricsSettings | None = None
    """Serve Prometheus /metrics (`run`, capturing `watch`); None: off."""
    otlp: OtlpSettings | None = None
    """Export exchanges as spans over OTLP; None: off."""

    @classmethod
    def build(
        cls,
        environ: Mapping[str, str],
        *,
        interfaces: tuple[str, ...] = (),
        ports: str | None = None,
        capture_filter: str | None = None,
        profile_path: str | None = None,
        follow_docker_ports: bool = True,
        db_path: str | None = None,
        observer: str | None = None,
        spool: str | None = None,
        keep: int | None = None,
        retain: str | None = None,
        batch_size: int | None = None,
        workers: int | None = None,
        max_header_bytes: int | None = None,
        tls_keylog: str | None = None,
        log_format: str | None = None,
        is_root: bool = False,
        geoip_path: str | None = None,
        rules_path: str | None = None,
        blocklists: tuple[str, ...] = (),
        all_traffic: bool = False,
        metrics: str | None = None,
        max_routes: int | None = None,
        metrics_grace: str | None = None,
        otlp: str | None = None,
        otlp_sample: str | None = None,
        exports: bool = False,
    ) -> Settings:
        """Combine flags (keyword arguments; empty means not given) with the environment.

        ``exports``: the command can export (`run`, `watch`), so the metrics
        flags and the OTEL_* variables are read (and a bad one refused); other
        commands ignore them.
        """
        if interfaces:
            names, source = _split_names(",".join(interfaces), "-i/--interface"), "-i"
        elif environ.get("NETWORK_INTERFACES", "").strip():
            names, source = _split_names(environ["NETWORK_INTERFACES"], "NETWORK_INTERFACES"), "NETWORK_INTERFACES"
        elif environ.get("NETWORK_INTERFACE", "").strip():  # ThreatWatch's name for it
            names, source = _split_names(environ["NETWORK_INTERFACE"], "NETWORK_INTERFACE"), "NETWORK_INTERFACE"
        else:
            names, source = None, None
        if ports is not None:
            port_list, ports_source = parse_ports(ports, "--ports"), "--ports"
        elif environ.get("EYES_DEVINE_PORTS", "").strip():
            ports_source = "EYES_DEVINE_PORTS"
            port_list = parse_ports(environ[ports_source], ports_source)
        else:
            port_list, ports_source = DEFAULT_PORTS, "default"
        keylog = _key_log(tls_keylog if tls_keylog is not None else environ.get("EYES_DEVINE_TLS_KEYLOG") or None)
        if keylog is not None and ports_source == "default":
            port_list = (*DEFAULT_PORTS, *TLS_PORTS)  # decrypting: HTTPS's ports carry HTTP too
        bpf = capture_filter if capture_filter is not None else environ.get("CAPTURE_FILTER") or None
        return cls(
            interfaces=names,
            interfaces_source=source,
            ports=port_list,
            ports_source=ports_source,
            capture_filter=bpf.strip() if bpf and bpf.strip() else None,
            profile_path=profile_path or environ.get("EYES_DEVINE_PROFILE") or None,
            docker_environment={key: environ[key] for key in DOCKER_ENVIRONMENT if key in environ},
            follow_docker_ports=follow_docker_ports,
            db_path=_db_path(db_path, environ, is_root),
            observer=_observer(observer, environ.get("EYES_DEVINE_OBSERVER", "")),
            spool=_spool(spool if spool is not None else environ.get("EYES_DEVINE_SPOOL") or None),
            keep=bounded_whole(keep, environ.get("EYES_DEVINE_KEEP"), "--keep", "EYES_DEVINE_KEEP", DEFAULT_KEEP,
                          KEEP_BOUNDS),
            retain=_retain(retain, environ.get("EYES_DEVINE_RETAIN")),
            batch_size=bounded_whole(batch_size, environ.get("EYES_DEVINE_BATCH_SIZE"), "--batch-size",
                                "EYES_DEVINE_BATCH_SIZE", DEFAULT_BATCH_SIZE, BATCH_BOUNDS),
            workers=None if workers is None and not environ.get("EYES_DEVINE_WORKERS", "").strip() else bounded_whole(
                workers, environ.get("EYES_DEVINE_WORKERS"), "--workers", "EYES_DEVINE_WORKERS", 1, WORKER_BOUNDS),
            max_header_bytes=bounded_whole(max_header_bytes, environ.get("EYES_DEVINE_MAX_HEADER_BYTES"),
                                      "--max-header-bytes", "EYES_DEVINE_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES,
                                      HEADER_BOUNDS),
            tls_keylog=keylog,
            log_format=_log_format(log_format or environ.get("EYES_DEVINE_LOG_FORMAT") or "text"),
            geoip_path=geoip_path or environ.get("EYES_DEVINE_GEOIP") or None,
            rules_path=rules_path or environ.get("EYES_DEVINE_RULES") or None,
            blocklists=tuple(blocklists) or tuple(
                name.strip() for name in environ.get("EYES_DEVINE_BLOCKLISTS", "").split(",") if name.strip()),
            abuseipdb_key=environ.get("ABUSEIPDB_API_KEY") or None,
            abuseipdb_url=environ.get("ABUSEIPDB_URL") or ABUSEIPDB_URL,
            all_traffic=all_traffic,
            metrics=metrics_settings(metrics, max_routes, metrics_grace, environ) if exports else None,
            otlp=otlp_settings(otlp, otlp_sample, environ) if exports else None,
        )


def default_db_path(environ: Mapping[str, str], is_root: bool) -> str:
    """Where the database lives when no --db or EYES_DEVINE_DB says otherwise.

    Root runs as a system service, so its data goes under /var/lib; anyone else
    gets the XDG data directory, as other per-user tools do.
    """
    if is_root:
        return "/var/lib/eyes-devine/exchanges.db"
    xdg = environ.get("XDG_DATA_HOME", "")
    if xdg and os.path.isabs(xdg):  # the XDG spec says to ignore a relative value
        return os.path.join(xdg, "eyes-devine", "exchanges.db")
    home = environ.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".local", "share", "eyes-devine", "exchanges.db")


def _db_path(flag: str | None, environ: Mapping[str, str], is_root: bool) -> str:
    """``--db ""`` is a mistake, not a wish for the default (an empty variable is unset, as for DOCKER_HOST)."""
    if flag is not None and not flag.strip():
        raise ConfigError("--db: an empty name; name a database file, or leave --db out for the default")
    return flag or environ.get("EYES_DEVINE_DB") or default_db_path(environ, is_root)


def _log_format(value: str) -> str:
    if value not in ("text", "json"):
        raise ConfigError(f"log format {value!r} is not text or json (--log-format, EYES_DEVINE_LOG_FORMAT)")
    return value


def _split_names(value: str, what: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))
    if not names:
        raise ConfigError(f"{what} is empty; give interface names such as docker0,br-1a2b3c4d5e6f")
    return names


def parse_ports(value: str, what: str) -> tuple[int, ...]:
    """Parse "80,8080" into ports, rejecting anything that is not 1-65535."""
    ports: list[int] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if not WHOLE.fullmatch(item) or not 1 <= int(item) <= 65535:
            raise ConfigError(f"{what}: {item!r} is not a TCP port (1-65535); example: {what}=80,8080")
        if int(item) not in ports:
            ports.append(int(item))
    if not ports:
        raise ConfigError(f"{what} is empty; example: {what}=80,8080")
    return tuple(ports)


def port_filter(ports: tuple[int, ...]) -> str:
    """The BPF expression for HTTP on ``ports``, compiled into the kernel so other traffic never reaches us."""
    return "tcp and (" + " or ".join(f"port {port}" for port in ports) + ")"


ALL_TRAFFIC_FILTER = "ip or ip6"
"""The capture filter of --all-traffic: every IP packet, for flow summaries (HTTP is still parsed on the ports)."""


def bpf_filter(settings: Settings) -> str:
    if settings.capture_filter:
        return settings.capture_filter
    return ALL_TRAFFIC_FILTER if settings.all_traffic else port_filter(settings.ports)


_STATUS = re.compile(r"([1-5])xx|([1-5]\d\d)", re.IGNORECASE)


def parse_status(text: str) -> tuple[int, int]:
    """ "404" → (404, 404); "5xx" → (500, 599)."""
    match = _STATUS.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"status {text!r} is neither a code like 404 nor a class like 5xx")
    if match[1]:
        low = int(match[1]) * 100
        return low, low + 99
    code = int(match[2])
    return code, code


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


RETAIN_BOUNDS = (60.0, 10 * 365 * 86400.0)
"""--retain: at least a minute (a shorter bound would empty the store between two reads), at most ten years."""


def parse_duration(text: str, what: str, low: float, high: float) -> float:
    """Seconds from a duration a person typed: 90s, 10m, 2h, 7d."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ConfigError(f"{what}: {text!r} is not a duration like 90s, 10m, 2h, 7d")
    seconds = float(match[1]) * _UNIT_SECONDS[match[2].lower()]
    if not low <= seconds <= high:
        raise ConfigError(f"{what}: {text!r} is outside {low:g} s to {high / 86400:g} days")
    return seconds


MAX_OBSERVER = 255
"""A host name's length at most (RFC 1123), and far below what a column or a label holds."""


def parse_observer(text: str, what: str) -> str:
    """A host's name as records carry it: printable, no spaces, at most 255 characters."""
    name = text.strip()
    if not name or len(name) > MAX_OBSERVER or not name.isprintable() or any(c.isspace() for c in name):
        raise ConfigError(f"{what}: {text!r} is not a name for this host (1 to {MAX_OBSERVER} printable characters, "
                          "no spaces)")
    return name


def _key_log(name: str | None) -> Path | None:
    if name is None:
        return None
    if not name.strip():
        raise ConfigError("--tls-keylog: an empty name; name the key log file, or leave --tls-keylog out")
    return Path(name)


def _spool(name: str | None) -> Path | None:
    if name is None:
        return None
    if not name.strip():
        raise ConfigError("--spool: an empty name; name a file, or leave --spool out")
    return Path(name)


def _observer(flag: str | None, variable: str) -> str:
    if flag is not None:
        return parse_observer(flag, "--observer")
    if variable.strip():
        return parse_observer(variable, "EYES_DEVINE_OBSERVER")
    return parse_observer(platform.node() or "localhost", "the hostname")


def _retain(flag: str | None, variable: str | None) -> float | None:
    if flag is not None:
        return parse_duration(flag, "--retain", *RETAIN_BOUNDS)
    if variable and variable.strip():
        return parse_duration(variable, "EYES_DEVINE_RETAIN", *RETAIN_BOUNDS)
    return None


def parse_since(text: str, now: float) -> float:
    """ "10m" → ``now`` minus ten minutes; an ISO-8601 time (local unless it has an offset) → that time."""
    text = text.strip()
    match = _DURATION.fullmatch(text)
    if match:
        return now - float(match[1]) * _UNIT_SECONDS[match[2].lower()]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(
            f"since {text!r} is neither a duration like 90s, 10m, 2h, 1d nor a time like 2024-05-01T12:00:00"
        ) from None
