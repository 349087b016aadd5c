"""Flow summaries beyond HTTP: every TCP, UDP and ICMP conversation, named and counted, without I/O.

With ``--all-traffic`` the decoder shows every packet to a :class:`FlowTracker`
(see :data:`eyes_devine.core.decode.Observe`), which keeps one small record per
conversation and emits a :class:`Flow` when it ends: both FINs or a RST (after
``closed_linger`` seconds, so the last ACK still counts), idle for its
protocol's timeout, evicted by ``max_flows``, or end of capture.

Keys and roles.  A TCP or UDP flow is its 5-tuple, in either direction; an
ICMP echo exchange is its two hosts and echo identifier; other ICMP messages
between two hosts share one flow.  The client is the initiator: the sender of
a SYN (the receiver of a SYN+ACK), of an echo request, or the first UDP sender
unless that packet came from a well-known port to an ephemeral one.  A TCP
flow picked up mid-stream takes the lower port as the server's.

Duplicates.  The same packet captured on a bridge and on a container's veth is
counted once: each direction of a flow is counted from one interface, the
first that carried it.  A copy on another interface is set aside while that
interface has carried the direction within ``duplicate_window`` seconds; once
it has gone quiet (its sniffer stopped), the other interface takes over.

Classification looks at the first payload of each direction, signature first
(a DNS header with a well-formed question, a TLS ClientHello and its SNI, an
SSH banner, an FTP greeting or command, an HTTP request or status line), then
at the server port (53 dns, 443 tls, 22 ssh, 21 ftp, 80 and 8080 http), and
otherwise says ``tcp``, ``udp``, ``icmp`` or ``icmpv6``.  A ClientHello split
over several segments is gathered (up to one TLS record) until its SNI is read.
"""

from __future__ import annotations

import socket
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter

from eyes_devine.core.classify import dns_question, tcp_signature
from eyes_devine.core.decode import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP
from eyes_devine.core.tls import parse_client_hello_sni, record_length
from eyes_devine.records import ACK, FIN, RST, SYN, Flow


@dataclass(frozen=True, slots=True)
class FlowLimits:
    """The memory and time bounds of a :class:`FlowTracker`."""

    max_flows: int = 50_000
    """Flows tracked at once; a new one beyond this ends the least recently active."""
    tcp_idle: float = 300.0
    udp_idle: float = 60.0
    icmp_idle: float = 30.0
    closed_linger: float = 2.0
    """Seconds a flow stays open after its FINs or RST, so the last ACKs count."""
    duplicate_window: float = 1.0
    """Seconds an interface keeps a flow direction before another interface's copies count instead."""

    def __post_init__(self) -> None:
        if self.max_flows < 1:
            raise ValueError(f"max_flows must be at least 1, not {self.max_flows}")


TRANSPORTS = {IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp", IPPROTO_ICMP: "icmp", IPPROTO_ICMPV6: "icmpv6"}
PORT_PROTOCOLS = {
    (IPPROTO_UDP, 53): "dns", (IPPROTO_TCP, 53): "dns", (IPPROTO_TCP, 443): "tls", (IPPROTO_TCP, 22): "ssh",
    (IPPROTO_TCP, 21): "ftp", (IPPROTO_TCP, 80): "http", (IPPROTO_TCP, 8080): "http",
}
"""The fallback when no payload signature matched: (IP protocol, server port) → protocol."""
PROTOCOLS = ("dns", "tls", "ssh", "ftp", "http", "tcp", "udp", "icmp", "icmpv6")
"""Every label a flow can carry, for `flows --protocol`."""

_EXPIRE_EVERY = 1.0
_REQUEUE_EVERY = 1.0
_MAX_HELLO = 8192
"""The most of one ClientHello gathered while waiting for its SNI (real ones are 0.5-3 kB)."""
_HELLO_BUDGET = 8 << 20
"""The most held for all ClientHellos being gathered at once, so partial hellos cannot grow memory unbounded."""
_ECHO = {IPPROTO_ICMP: (8, 0), IPPROTO_ICMPV6: (128, 129)}
"""Echo request and reply types."""
_ICMP_KINDS = {
    IPPROTO_ICMP: {0: "echo", 8: "echo", 3: "unreachable", 5: "redirect", 11: "time-exceeded", 12: "parameter-problem"},
    IPPROTO_ICMPV6: {128: "echo", 129: "echo", 1: "unreachable", 2: "packet-too-big", 3: "time-exceeded",
                     4: "parameter-problem", 130: "multicast-listener", 131: "multicast-listener",
                     132: "multicast-listener", 143: "multicast-listener", 133: "neighbor-discovery",
                     134: "neighbor-discovery", 135: "neighbor-discovery", 136: "neighbor-discovery",
                     137: "neighbor-discovery"},
}

_Key = tuple[int, bytes, bytes, int, int]
"""(IP protocol, source, destination, source port, destination port) of one direction."""


class _Flow:
    __slots__ = ("proto", "keys", "client", "server", "client_port", "server_port", "interface", "first", "last",
                 "packets", "octets", "owners", "owner_seen", "looked", "label", "sni", "detail", "hello",
                 "fins", "closing_at", "ended", "requeue_at", "done")

    def __init__(self, proto: int, keys: tuple[_Key, _Key], client: bytes, server: bytes, client_port: int,
                 server_port: int, interface: str, ts: float) -> None:
        self.proto = proto
        self.keys = keys
        """The client's direction, then the server's."""
        self.client = client
        self.server = server
        self.client_port = client_port
        self.server_port = server_port
        self.interface = interface
        self.first = ts
        self.last = ts
        self.packets = [0, 0]
        """Client to server, server to client."""
        self.octets = [0, 0]
        self.owners: list[str | None] = [None, None]
        """The interface each direction is counted from."""
        self.owner_seen = [ts, ts]
        self.looked = [False, False]
        """Whether each direction's first payload was examined."""
        self.label: str | None = None
        self.sni: str | None = None
        self.detail: str | None = None
        self.hello: bytes | None = None
        """A ClientHello being gathered until its SNI is readable."""
        self.fins = 0
        self.closing_at: float | None = None
        self.ended = "end"
        self.requeue_at = ts + _REQUEUE_EVERY
        self.done = False


class FlowTracker:
    """Every conversation in progress, fed one packet at a time through :meth:`observe`."""

    def __init__(self, emit: Callable[[Flow], None], limits: FlowLimits | None = None) -> None:
        self._emit = emit
        self.limits = limits or FlowLimits()
        self._directions: dict[_Key, tuple[_Flow, int]] = {}
        """Each direction's key → its flow and side (0 client, 1 server)."""
        self._idle = {IPPROTO_TCP: self.limits.tcp_idle, IPPROTO_UDP: self.limits.udp_idle,
                      IPPROTO_ICMP: self.limits.icmp_idle, IPPROTO_ICMPV6: self.limits.icmp_idle}
        self._lru: dict[int, OrderedDict[_Flow, None]] = {proto: OrderedDict() for proto in self._idle}
        """Per protocol (each has its own idle timeout), least recently active first (to within a second)."""
        self._closing: deque[_Flow] = deque()
        self._open = 0
        self._held = 0
        """Bytes of ClientHellos being gathered."""
        self._next_expire = float("-inf")
        self.last_ts = 0.0
        self.flows = 0
        """Flows started."""
        self.emitted = 0
        self.evicted = 0
        self.duplicates = 0
        """Packets set aside as another interface's copy."""

    def __len__(self) -> int:
        return self._open

    def observe(self, ts: float, interface: str, proto: int, src: bytes, dst: bytes, sport: int, dport: int,
                flags: int, length: int, payload: bytes) -> None:
        """One packet (the decoder's :data:`~eyes_devine.core.decode.Observe`)."""
        if ts > self.last_ts:
            self.last_ts = ts
        if ts >= self._next_expire:
            self.expire(ts)
        if proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6:
            if len(payload) < 4:
                return
            kind = payload[0]
            request, reply = _ECHO[proto]
            if kind == request or kind == reply:
                sport = dport = (payload[4] << 8 | payload[5]) if len(payload) >= 8 else 0
            else:
                sport = dport = -1  # any other message between these hosts: one flow
        entry = self._directions.get((proto, src, dst, sport, dport))
        if entry is None:
            if proto == IPPROTO_TCP and flags & RST:
                return  # a reset of nothing we track starts nothing
            flow, side = self._start(ts, interface, proto, src, dst, sport, dport, flags, payload)
        else:
            flow, side = entry
            if (proto == IPPROTO_TCP and flow.closing_at is not None and flags & SYN and not flags & ACK
                    and side == 0):
                self._end(flow, flow.ended)  # the client reuses its port: a new connection
                flow, side = self._start(ts, interface, proto, src, dst, sport, dport, flags, payload)
        owner = flow.owners[side]
        if owner != interface:
            if owner is not None and ts - flow.owner_seen[side] <= self.limits.duplicate_window:
                self.duplicates += 1
                return
            flow.owners[side] = interface
        flow.owner_seen[side] = ts
        flow.packets[side] += 1
        flow.octets[side] += length
        if ts > flow.last:
            flow.last = ts
            if ts > flow.requeue_at and flow.closing_at is None:
                flow.requeue_at = ts + _REQUEUE_EVERY
                self._lru[proto].move_to_end(flow)
        if payload and (not flow.looked[side] or (side == 0 and flow.hello is not None)):
            self._look(flow, side, payload)
        if proto == IPPROTO_TCP and flags & (FIN | RST) and flow.closing_at is None:
            if flags & RST:
                self._closing_from(flow, ts, "rst")
            else:
                flow.fins |= 1 << side
                if flow.fins == 3:
                    self._closing_from(flow, ts, "fin")

    def expire(self, now: float) -> None:
        """End flows idle past their timeout and flows whose FINs or RST lingered long enough."""
        self._next_expire = now + _EXPIRE_EVERY
        for proto, lru in self._lru.items():
            cutoff = now - self._idle[proto]
            while lru:
                flow = next(iter(lru))
                if flow.last > cutoff:
                    if flow.requeue_at - _REQUEUE_EVERY > cutoff:
                        break  # everything after it was queued later still
                    flow.requeue_at = flow.last + _REQUEUE_EVERY
                    lru.move_to_end(flow)
                    continue
                self._end(flow, "idle")
        closing = self._closing
        while closing and (closing[0].done or closing[0].closing_at <= now):  # type: ignore[operator]
            flow = closing.popleft()
            if not flow.done:
                self._end(flow, flow.ended)

    def active(self, limit: int) -> list[Flow]:
        """Summaries of the ``limit`` most recently active flows still open, for a live view.

        Safe to call from another thread than the one feeding packets: each
        table is copied in one C call under the GIL, and a flow's counters are
        read as they stand.
        """
        flows = [flow for lru in list(self._lru.values()) for flow in list(lru)] + list(self._closing)
        flows.sort(key=attrgetter("last"))
        return [self._summary(flow, "open") for flow in flows[-limit:] if not flow.done]

    def close_all(self) -> None:
        """End of capture: every flow still open is summarised."""
        for lru in self._lru.values():
            for flow in list(lru):
                self._end(flow, "end")
        for flow in self._closing:
            if not flow.done:
                self._end(flow, flow.ended)
        self._closing.clear()

    # -- lifecycle -----------------------------------------------------------

    def _start(self, ts: float, interface: str, proto: int, src: bytes, dst: bytes, sport: int, dport: int,
               flags: int, payload: bytes) -> tuple[_Flow, int]:
        if len(self) >= self.limits.max_flows:
            self._evict()
        if proto == IPPROTO_TCP:
            if flags & SYN:
                sender_is_client = not flags & ACK
            else:
                sender_is_client = sport > dport or (sport == dport)
        elif proto == IPPROTO_UDP:
            sender_is_client = not (sport < 1024 <= dport)
        else:
            sender_is_client = payload[0] != _ECHO[proto][1]
        forward = (proto, src, dst, sport, dport)
        backward = (proto, dst, src, dport, sport)
        if sender_is_client:
            flow = _Flow(proto, (forward, backward), src, dst, sport, dport, interface, ts)
        else:
            flow = _Flow(proto, (backward, forward), dst, src, dport, sport, interface, ts)
        self._directions[flow.keys[1]] = (flow, 1)
        self._directions[flow.keys[0]] = (flow, 0)  # a host talking to itself on one port: one key, the client's
        self._lru[proto][flow] = None
        self._open += 1
        self.flows += 1
        return self._directions[forward]

    def _evict(self) -> None:
        oldest = min((next(iter(lru)) for lru in self._lru.values() if lru), key=attrgetter("last"), default=None)
        if oldest is None:  # every tracked flow is closing: the first to close goes
            oldest = next(flow for flow in self._closing if not flow.done)
        self.evicted += 1
        self._end(oldest, "evicted")

    def _closing_from(self, flow: _Flow, ts: float, reason: str) -> None:
        flow.closing_at = ts + self.limits.closed_linger
        flow.ended = reason
        del self._lru[flow.proto][flow]
        self._closing.append(flow)

    def _end(self, flow: _Flow, ended: str) -> None:
        if flow.done:
            return
        flow.done = True
        if flow.hello is not None:
            self._held -= len(flow.hello)
            flow.hello = None
        for key in flow.keys:
            self._directions.pop(key, None)
        self._lru[flow.proto].pop(flow, None)
        self._open -= 1
        self.emitted += 1
        self._emit(self._summary(flow, ended))

    def _summary(self, flow: _Flow, ended: str) -> Flow:
        proto = flow.proto
        label = flow.label or PORT_PROTOCOLS.get((proto, flow.server_port)) or TRANSPORTS[proto]
        icmp = proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6
        return Flow(
            flow.first, flow.last, flow.interface, TRANSPORTS[proto], label,
            _text(flow.client), 0 if icmp else flow.client_port, _text(flow.server), 0 if icmp else flow.server_port,
            flow.packets[0], flow.octets[0], flow.packets[1], flow.octets[1],
            sni=flow.sni, detail=flow.detail, ended=ended,
        )

    # -- classification ------------------------------------------------------

    def _hold(self, flow: _Flow, hello: bytes) -> None:
        """Keep a ClientHello whose SNI is not read yet, while it is incomplete and within the bounds."""
        self._held -= len(flow.hello) if flow.hello is not None else 0
        complete = len(hello) >= min(record_length(hello), _MAX_HELLO)
        if flow.sni is None and not complete and self._held + len(hello) <= _HELLO_BUDGET:
            flow.hello = hello
            self._held += len(hello)
        else:
            flow.hello = None

    def _look(self, flow: _Flow, side: int, payload: bytes) -> None:
        """Examine a direction's first payload (and, for a ClientHello, what follows until the SNI)."""
        if side == 0 and flow.hello is not None:
            hello = flow.hello + payload
            flow.sni = parse_client_hello_sni(hello)
            self._hold(flow, hello)
            return
        flow.looked[side] = True
        proto = flow.proto
        if proto == IPPROTO_TCP:
            label, detail = tcp_signature(payload, side == 0, flow.server_port)
            if label == "tls" and side == 0:
                flow.sni = parse_client_hello_sni(payload)
                self._hold(flow, payload)
        elif proto == IPPROTO_UDP:
            question = dns_question(payload, flow.server_port)
            label, detail = ("dns", question or None) if question is not None else (None, None)
        else:
            label, detail = TRANSPORTS[proto], _ICMP_KINDS[proto].get(payload[0], f"type {payload[0]}")
        if label is None:
            return
        if flow.label is None:
            flow.label = label
        if detail and (flow.detail is None or (label == "ssh" and side == 1)):  # the server's SSH banner wins
            flow.detail = detail


def _text(address: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(address) == 4 else socket.AF_INET6, address)
