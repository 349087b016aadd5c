"""The records shared by every stage: what crosses a boundary, built once and never changed.

Data flows one way.  The core turns a captured frame into a :class:`Segment`,
reassembles segments, and turns the byte streams into :class:`Exchange`
records (HTTP) and :class:`Flow` summaries (every conversation).  The enrich
stages return copies with their fields filled in (``record._replace(...)``);
storage, ``--json``, the views and the exporters read them.

Exchange and Flow share two sub-records, so no field is listed twice:
:class:`Attribution` (the containers at both ends) and :class:`Peer` (where the
public end is and how it is rated).  Their flat names are the storage columns
and the ``--json`` keys (:data:`EXCHANGE_FIELDS`, :data:`FLOW_FIELDS`), in the
order of :func:`exchange_values` and :func:`flow_values`.

The hot records are named tuples: immutable in fact, and as cheap to build as a
slotted class (a frozen dataclass costs ten times as much, and `read` builds one
record per request and one segment per packet).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import NamedTuple

# TCP header flag bits, as on the wire.
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10


class Segment(NamedTuple):
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


@dataclass(frozen=True, slots=True)
class Attribution:
    """The containers at both ends of an exchange or flow, as they were at its time (Docker attribution)."""

    container: str | None = None
    """The serving container's name."""
    client_container: str | None = None
    """The calling container's name."""
    container_id: str | None = None
    """The serving container's short id (12 characters): names are reused, ids are not."""
    client_container_id: str | None = None
    """The calling container's short id."""

    def __reduce__(self) -> str | tuple[type, tuple[str | None, ...]]:
        """The shared empty value comes back from another process as itself (it is tested by identity)."""
        if self == NO_ATTRIBUTION:
            return "NO_ATTRIBUTION"
        return Attribution, (self.container, self.client_container, self.container_id, self.client_container_id)


@dataclass(frozen=True, slots=True)
class Peer:
    """What is known of the record's public end: the client when its address is public, else the server."""

    country: str | None = None
    """ISO 3166-1 alpha-2 code, from the --geoip database."""
    city: str | None = None
    """English city name (City databases only)."""
    latitude: float | None = None
    longitude: float | None = None
    reputation: str | None = None
    """Why the public end is suspect: "blocklist:<list>" or "abuseipdb:<score>"; None when clean or unknown."""

    def __reduce__(self) -> str | tuple[type, tuple[object, ...]]:
        """As :meth:`Attribution.__reduce__`."""
        if self == NO_PEER:
            return "NO_PEER"
        return Peer, (self.country, self.city, self.latitude, self.longitude, self.reputation)


NO_ATTRIBUTION = Attribution()
"""No container at either end (the host, outside machines, capture files)."""
NO_PEER = Peer()
"""No public end, or nothing known about it."""
ATTRIBUTION_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Attribution))
PEER_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Peer))


class Exchange(NamedTuple):
    """One HTTP request and the response that answered it (if one was seen).

    Secrets in the target, Host and User-Agent are redacted before a record is
    built (see the README's table); credential headers and bodies are never kept.
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
    duration_ms: float | None
    """First request byte to the last byte of the response seen (a span's whole time); None without a response."""
    request_bytes: int
    """Request body size (decoded length for chunked bodies)."""
    response_bytes: int
    """Response body size (decoded length for chunked bodies)."""
    user_agent: str | None
    content_type: str | None
    """Content-Type of the response, else of the request."""
    flags: tuple[str, ...] = ()
    """Anomalies: pipelined, gap, no_response, truncated, smuggling_suspect, upgrade, ..."""
    attribution: Attribution = NO_ATTRIBUTION
    """The serving and calling containers."""
    alerts: tuple[str, ...] = ()
    """Ids of the suspicious-request rules this exchange matched (see `eyes-devine alerts`)."""
    peer: Peer = NO_PEER
    """Where the exchange's public end is (the client of an inbound request, the server of an outbound one)."""
    observer: str | None = None
    """The host that captured it (``--observer``, by default its hostname; ECS's ``observer.name``); None when
    read from a file."""
    grpc_status: int | None = None
    """gRPC's status code, from the trailers (0 is OK); None when the exchange is not a gRPC call, or its trailers
    were not seen."""
    grpc_message: str | None = None
    """The trailers' grpc-message (percent-decoded), when the call failed with one."""
    request_messages: int | None = None
    """gRPC messages the client sent (more than one: a client-streaming call); None for other HTTP."""
    response_messages: int | None = None
    """gRPC messages the server sent (more than one: a server-streaming call); None for other HTTP."""

    def to_dict(self) -> dict[str, object]:
        """The JSON contract: every flat field, flags and alerts as lists, latency to the microsecond."""
        record = dict(zip(EXCHANGE_FIELDS, exchange_values(self), strict=True))
        record["flags"] = list(self.flags)
        record["alerts"] = list(self.alerts)
        if self.latency_ms is not None:
            record["latency_ms"] = round(self.latency_ms, 3)
        if self.duration_ms is not None:
            record["duration_ms"] = round(self.duration_ms, 3)
        return record


class Flow(NamedTuple):
    """One conversation at the transport layer, summarised when it ended."""

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
    attribution: Attribution = NO_ATTRIBUTION
    """The serving and initiating containers when the flow started."""
    peer: Peer = NO_PEER
    """Where the flow's public end is (the client if public, else the server)."""
    observer: str | None = None
    """The host that captured it, as for exchanges."""

    def to_dict(self) -> dict[str, object]:
        """The JSON contract of `flows --json`: every flat field."""
        return dict(zip(FLOW_FIELDS, flow_values(self), strict=True))


def _flat_names(names: tuple[str, ...]) -> tuple[str, ...]:
    expanded = {"attribution": ATTRIBUTION_FIELDS, "peer": PEER_FIELDS}
    return tuple(flat for name in names for flat in expanded.get(name, (name,)))


EXCHANGE_FIELDS: tuple[str, ...] = _flat_names(Exchange._fields)
"""Flat field names of an exchange: the storage columns and the ``--json`` keys, in order."""
FLOW_FIELDS: tuple[str, ...] = _flat_names(Flow._fields)
"""Flat field names of a flow summary: the storage columns and the ``flows --json`` keys, in order."""
_ATTRIBUTION_AT = Exchange._fields.index("attribution")
_OBSERVER_AT = Exchange._fields.index("observer")
_FLOW_ATTRIBUTION_AT = Flow._fields.index("attribution")
_attribution_values = attrgetter(*ATTRIBUTION_FIELDS)
_peer_values = attrgetter(*PEER_FIELDS)
_PEER_WIDTH = len(PEER_FIELDS)


def exchange_values(x: Exchange) -> tuple[object, ...]:
    """The exchange's values in :data:`EXCHANGE_FIELDS` order."""
    return (*x[:_ATTRIBUTION_AT], *_attribution_values(x.attribution), x.alerts, *_peer_values(x.peer),
            *x[_OBSERVER_AT:])


def flow_values(flow: Flow) -> tuple[object, ...]:
    """The flow's values in :data:`FLOW_FIELDS` order."""
    return (*flow[:_FLOW_ATTRIBUTION_AT], *_attribution_values(flow.attribution), *_peer_values(flow.peer),
            flow.observer)


def attribution_of(values: tuple[object, ...] | list[object]) -> Attribution:
    """An Attribution from its flat values; the shared empty one when all are None."""
    return NO_ATTRIBUTION if not any(values) else Attribution(*values)  # type: ignore[arg-type]


def peer_of(values: tuple[object, ...] | list[object]) -> Peer:
    """A Peer from its flat values; the shared empty one when all are None."""
    return NO_PEER if all(value is None for value in values) else Peer(*values)  # type: ignore[arg-type]


def exchange_from_values(values: tuple[object, ...] | list[object]) -> Exchange:
    """The inverse of :func:`exchange_values` (flags and alerts as tuples)."""
    at, width = _ATTRIBUTION_AT, len(ATTRIBUTION_FIELDS)
    peer_at = at + width + 1
    return Exchange(*values[:at], attribution_of(values[at:peer_at - 1]), values[peer_at - 1],  # type: ignore[arg-type]
                    peer_of(values[peer_at:peer_at + _PEER_WIDTH]), *values[peer_at + _PEER_WIDTH:])


def flow_from_values(values: tuple[object, ...] | list[object]) -> Flow:
    """The inverse of :func:`flow_values`."""
    at, width = _FLOW_ATTRIBUTION_AT, len(ATTRIBUTION_FIELDS)
    return Flow(*values[:at], attribution_of(values[at:at + width]),  # type: ignore[arg-type]
                peer_of(values[at + width:at + width + _PEER_WIDTH]), values[at + width + _PEER_WIDTH])


ANSWERED, REDIRECTED, REFUSED, FAILED, NO_RESPONSE = "answered", "redirected", "refused", "failed", "no_response"
OUTCOMES: tuple[str, ...] = (ANSWERED, REDIRECTED, REFUSED, FAILED, NO_RESPONSE)


def outcome(x: Exchange) -> str:
    """Whether the server gave what was asked, which for an attack says whether it worked: ``answered`` (2xx,
    a 1xx that switched protocols, or a 3xx with more than a "Moved" notice), ``redirected`` (other 3xx), ``refused``
    (4xx), ``failed`` (5xx), ``no_response``."""
    status = x.status
    if status is None:
        return NO_RESPONSE
    if status >= 500:
        return FAILED
    if status >= 400:
        return REFUSED
    if status >= 300:
        return ANSWERED if x.response_bytes > REDIRECT_NOTICE else REDIRECTED
    return ANSWERED


REDIRECT_NOTICE = 512
"""Body bytes of the "Moved" notice nginx, Apache, Go and Express send with a redirect (100 to 300); a 3xx carrying
more sent a page."""
ANSWERED_SQL = f"(status < 300 OR (status < 400 AND response_bytes > {REDIRECT_NOTICE}))"
"""The SQL condition of :func:`outcome` being ``answered`` (NULL status, no response, is not)."""


UNATTRIBUTED = "unattributed"
"""The bucket of records that no container served or sent (host, outside machines, capture files)."""


def bucket_of(x: Exchange | Flow) -> str:
    """The serving container's id, else the caller's (an outbound request belongs to its sender), else unattributed.

    Ids rather than names: a name is reused when a container is recreated, an id never is.
    """
    attribution = x.attribution
    return attribution.container_id or attribution.client_container_id or UNATTRIBUTED


@dataclass(slots=True)
class EngineCounters:
    """What the core saw, for summaries, logs and the live header.

    Plain integers mutated in place by the engine thread, which owns them;
    other threads read the copy :meth:`snapshot` makes on that thread.
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
    tls_decrypted: int = 0
    """TLS streams whose records were opened with the key log's secrets (a subset of ``tls_streams``)."""
    tls_server_names: list[str] = field(default_factory=list)
    """SNI names seen on HTTP ports (bounded, first ones kept)."""
    http_parse_errors: int = 0
    """Heads llhttp refused (read leniently instead, or skipped) and bodies it could not delimit."""
    oversized_heads: int = 0
    """Message heads that grew past ``max_header_bytes`` (the message is flagged ``oversized``)."""
    unpaired_responses: int = 0
    """Responses dropped because no request seen could have caused them (after capture loss)."""

    def snapshot(self) -> dict[str, object]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), list) else v) for f in fields(self)}


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


@dataclass(frozen=True, slots=True)
class ContainerTenure:
    """One description of a container, from when it was first seen so until it changed or ended: the container
    inventory `run` keeps, so that `read --db` names the containers of a capture as they were at each packet.

    A container that is renamed or joins a network starts a new tenure; one that dies ends its last.
    """

    info: ContainerInfo
    started: float
    """When it was seen so (the Docker event's time, or the listing's), epoch seconds."""
    ended: float | None = None
    """When it changed, died or was removed; None while it still is (as far as the observer knows)."""
    observer: str | None = None
    """The host that saw it (``--observer``): addresses mean something on one host only."""


@dataclass(frozen=True, slots=True)
class MonitorStatus:
    """What a capturing `run` last said of itself, kept beside its records for `eyes-devine health`.

    Written through the store's own writer thread, so a fresh one also says
    that the database took a write; a stale one says the writer, the disk or
    the process stopped.
    """

    updated: float
    """When it was written (seconds since the epoch)."""
    started: float
    pid: int
    host: str
    version: str
    sniffers: tuple[tuple[str, str], ...]
    """Each interface and its sniffer's state: ``up`` (capturing), ``down`` (not capturing, though it should:
    the interface was asked for, or it is still there), or ``gone`` (a discovered bridge whose interface no longer
    exists: its Docker network was removed)."""
    stopped: bool = False
    """The run has ended (cleanly): nothing captures now."""
