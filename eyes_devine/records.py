"""The records shared by every stage of the pipeline.

Data flows one way: ``decode`` turns a frame into a :class:`Segment`, ``tcp``
reassembles segments per connection and hands ordered bytes to a
:class:`StreamHandler`, ``http`` turns those bytes into :class:`Exchange`
records, and everything after that (attribution, storage, views, ``--json``)
speaks only :class:`Exchange`.  Keeping the contract here, in one place, is what
lets ``read --json``, ``requests --json`` and the SQLite columns agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Protocol


@dataclass(slots=True)
class Segment:
    """One TCP segment as the wire carried it.

    Addresses stay packed (4 or 16 bytes) because the hot path only compares
    them; they are turned into text once per connection, not once per packet.
    """

    ts: float
    interface: str
    src_addr: bytes
    dst_addr: bytes
    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes


# TCP header flag bits, as on the wire.
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Who is the client and who the server of one TCP connection, as text."""

    interface: str
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int


class StreamHandler(Protocol):
    """What the TCP layer drives for each connection (the HTTP layer implements it).

    ``from_client`` tells the direction.  Bytes arrive in order, each byte once;
    where bytes were lost ``gap`` is called instead, with how many are missing,
    before the bytes that follow the hole.
    """

    def data(self, from_client: bool, payload: bytes, ts: float) -> None: ...

    def gap(self, from_client: bool, missing: int, ts: float) -> None: ...

    def closed(self, ts: float) -> None: ...


@dataclass(slots=True)
class Exchange:
    """One HTTP request and the response that answered it (if one was seen).

    This is the unit that crosses every boundary after the HTTP layer.  Header
    values that carry credentials and credential-like query parameters are
    redacted before a record is built; bodies are never kept.

    A value: once built it is never changed in place (later stages use
    ``dataclasses.replace``).  It is not declared frozen only because a frozen
    dataclass costs ten times as much to build, and `read` builds one per request.
    """

    ts: float
    """Time of the first request byte, epoch seconds."""
    interface: str
    """Interface the request was first seen on."""
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    method: str
    target: str
    """The request-target as sent (path and query), with secrets redacted."""
    host: str | None
    http_version: str
    """"1.1", "1.0"."""
    status: int | None
    """Final (non-1xx) status code; None when no response was seen."""
    reason: str | None
    latency_ms: float | None
    """First request byte to first byte of the final response."""
    request_bytes: int
    """Request body size (decoded length for chunked bodies)."""
    response_bytes: int
    """Response body size (decoded length for chunked bodies)."""
    user_agent: str | None
    content_type: str | None
    """Content-Type of the response, else of the request."""
    flags: tuple[str, ...] = ()
    """Anomalies: pipelined, gap, no_response, truncated, smuggling_suspect, upgrade, ..."""
    container: str | None = None
    """The serving container's name, filled by Docker attribution."""
    client_container: str | None = None
    """The calling container's name, filled by Docker attribution."""
    container_id: str | None = None
    """The serving container's short id (12 characters): names are reused, ids are not."""
    client_container_id: str | None = None
    """The calling container's short id (12 characters)."""
    alerts: tuple[str, ...] = ()
    """Ids of the suspicious-request rules this exchange matched (see `eyes-devine alerts`)."""
    country: str | None = None
    """ISO country code of the exchange's public end (the client of an inbound request, the server of an
    outbound one), from the --geoip database."""
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    reputation: str | None = None
    """Why the public end is suspect: "blocklist:<list>" or "abuseipdb:<score>"; None when clean or unknown."""

    def to_dict(self) -> dict[str, object]:
        """The JSON contract: every field, flags as a list, latency to the microsecond."""
        record = dict(zip(EXCHANGE_FIELDS, _exchange_values(self), strict=True))
        record["flags"] = list(self.flags)
        record["alerts"] = list(self.alerts)
        if self.latency_ms is not None:
            record["latency_ms"] = round(self.latency_ms, 3)
        return record


EXCHANGE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Exchange))
_exchange_values = attrgetter(*EXCHANGE_FIELDS)


@dataclass(slots=True)
class EngineCounters:
    """What the core saw, for summaries, logs and the live header.

    Plain integers mutated in place by the stage that owns each one; readers take
    a copy with :meth:`snapshot`.
    """

    packets: int = 0
    bytes: int = 0
    undecodable: int = 0
    """Frames that were not IPv4/IPv6 TCP, or were malformed."""
    ip_fragments: int = 0
    off_port_segments: int = 0
    """TCP segments on no HTTP port (counted when reading files, and with --all-traffic, where no BPF port filter
    applied)."""
    flows: int = 0
    flows_evicted: int = 0
    flows_timed_out: int = 0
    retransmitted_segments: int = 0
    """Includes the second copy of each packet seen on both a bridge and a container veth."""
    overlap_conflicts: int = 0
    """Overlapping bytes that disagreed with data already held (first data wins)."""
    gaps: int = 0
    bytes_missing: int = 0
    buffer_evictions: int = 0
    """Times a direction's out-of-order buffer limit forced a hole to be declared a gap (no data is dropped)."""
    exchanges: int = 0
    non_http_streams: int = 0
    tls_streams: int = 0
    tls_server_names: list[str] = field(default_factory=list)
    """SNI names seen on HTTP ports (bounded, first ones kept)."""
    http_parse_errors: int = 0
    unpaired_responses: int = 0
    """Responses dropped because no request seen could have caused them (after capture loss)."""

    def snapshot(self) -> dict[str, object]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), list) else v) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Flow:
    """One conversation at the transport layer, summarised when it ended.

    Like :class:`~eyes_devine.records.Exchange`, the unit that crosses every
    boundary after the tracker: storage columns and ``flows --json`` keys derive
    from its fields.
    """

    ts_first: float
    """Time of the first packet seen, epoch seconds."""
    ts_last: float
    """Time of the last packet seen."""
    interface: str
    """Interface the flow was first seen on."""
    transport: str
    """"tcp", "udp", "icmp" or "icmpv6"."""
    protocol: str
    """What it carried: dns, tls, ssh, ftp, http, else the transport."""
    client_ip: str
    client_port: int
    """0 for ICMP."""
    server_ip: str
    server_port: int
    client_packets: int
    """Packets from client to server."""
    client_bytes: int
    """IP bytes (headers included) from client to server."""
    server_packets: int
    server_bytes: int
    sni: str | None = None
    """TLS server name from the ClientHello."""
    detail: str | None = None
    """What the signature showed: the SSH banner, the FTP greeting, the first DNS question, the ICMP message kind."""
    ended: str = "end"
    """Why the summary was written: fin, rst, idle, evicted, or end (of capture); "open" in a live view's
    snapshot of a flow still in progress."""
    container: str | None = None
    """The serving container's name, filled by Docker attribution."""
    client_container: str | None = None
    container_id: str | None = None
    """The serving container's short id."""
    client_container_id: str | None = None
    country: str | None = None
    """ISO country code of the flow's public end (the client if public, else the server), from --geoip."""
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    reputation: str | None = None
    """Why the public end is suspect: "blocklist:<list>" or "abuseipdb:<score>"."""

    def to_dict(self) -> dict[str, object]:
        """The JSON contract of `flows --json`: every field."""
        return dict(zip(FLOW_FIELDS, _flow_values(self), strict=True))


FLOW_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Flow))
_flow_values = attrgetter(*FLOW_FIELDS)


@dataclass(frozen=True, slots=True)
class PublishedPort:
    """A host port Docker forwards to a container port (``-p HOST_IP:HOST_PORT:CONTAINER_PORT``)."""

    host_ip: str
    """Empty, 0.0.0.0 or :: when bound on every host address."""
    host_port: int
    container_port: int


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """What attribution needs to know of a running container; its environment is never read."""

    id: str
    name: str
    image: str
    compose_project: str | None = None
    compose_service: str | None = None
    addresses: tuple[str, ...] = ()
    """Its IPv4 and IPv6 addresses on every network it is attached to."""
    gateways: tuple[str, ...] = ()
    """The gateways of those networks: where the userland proxy's connections come from."""
    published: tuple[PublishedPort, ...] = ()
    ports: tuple[int, ...] = ()
    """TCP ports it exposes or publishes (container side), for the capture filter."""

    @property
    def short_id(self) -> str:
        return self.id[:12]


UNATTRIBUTED = "unattributed"
"""The bucket of records that no container served or sent (host, outside machines, capture files)."""


def bucket_of(x: Exchange | Flow) -> str:
    """The serving container's id, else the caller's (an outbound request belongs to its sender), else unattributed.

    Ids rather than names: a name is reused when a container is recreated, an id never is.
    """
    return x.container_id or x.client_container_id or UNATTRIBUTED
