"""Connection tracking for TCP reassembly, without I/O.

A :class:`FlowTable` takes :class:`~eyes_devine.records.Segment` records in capture
order and drives one :class:`~eyes_devine.records.StreamHandler` per connection
with each direction's bytes in order, each byte once.

Connections are keyed by their two (address, port) endpoints, not by interface:
the same packet captured on a bridge and on a container's veth is, to
reassembly, a duplicate, and is delivered once (and counted as a
retransmission).  Sequence numbers are unwrapped per direction into a growing
integer offset, so 32-bit wraparound needs no special case past the one
conversion.

Roles: the sender of a SYN without ACK is the client, the sender of a SYN+ACK
the server.  A connection picked up mid-stream takes as server the endpoint
whose port is in ``server_ports``, else (both or neither) the lower port.  A
direction seen first mid-stream starts at its first data (or FIN) segment;
anything seen later with an earlier sequence number is treated as an old
retransmission.  Bare ACKs and RSTs for unknown connections create nothing.

Each direction's reassembly (what is held, when a hole is declared lost) is
:mod:`eyes_devine.core.reassembly`'s.

A connection ends when both FINs have been reached in sequence, or on RST: the
handler gets what is deliverable, gaps for the rest, then ``closed`` once.  Its
endpoints are remembered for ``closed_linger`` seconds so late
retransmissions are dropped instead of starting a bogus connection; a new SYN
on the same endpoints starts a new one at any time.
"""

from __future__ import annotations

import socket
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from eyes_devine.core.reassembly import HALF, MASK, Direction
from eyes_devine.records import ACK, FIN, RST, SYN, EngineCounters, Segment


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
    before the bytes that follow the hole; where the wire carried different
    copies of the next bytes, ``overlap`` is called before them.
    """

    def data(self, from_client: bool, payload: bytes, ts: float) -> None: ...

    def gap(self, from_client: bool, missing: int, ts: float) -> None: ...

    def overlap(self, from_client: bool, ts: float) -> None:
        """The next byte delivered is one whose copies on the wire differed (the Linux receiver's copy)."""

    def closed(self, ts: float) -> None: ...


_MASK, _HALF = MASK, HALF
_REQUEUE_EVERY = 1.0
"""Seconds of capture time between refreshes of one flow's place in the LRU order."""
_EXPIRE_EVERY = 1.0
"""Seconds of capture time between idle sweeps run from :meth:`FlowTable.ingest`."""

_Key = tuple[bytes, bytes, int, int]
"""(source address, destination address, source port, destination port) of one direction."""


@dataclass(frozen=True, slots=True)
class TcpLimits:
    """The memory and time bounds of a :class:`FlowTable`."""

    max_flows: int = 50_000
    """Live connections; a new one beyond this evicts the least recently active."""
    max_buffered_bytes: int = 1 << 20
    """Out-of-order bytes held per direction before the hole in front of them is skipped."""
    idle_timeout: float = 300.0
    """Seconds without packets after which a connection is closed."""
    closed_linger: float = 5.0
    """Seconds a FIN/RST-closed connection is remembered, to drop late retransmissions."""

    def __post_init__(self) -> None:
        if self.max_flows < 1:
            raise ValueError(f"max_flows must be at least 1, not {self.max_flows}")


class _Flow:
    """One connection: its handler, its two directions, and its place in the LRU order."""

    __slots__ = ("handler", "client", "server", "keys", "last_seen", "requeue_at")

    def __init__(self, handler: StreamHandler, keys: tuple[_Key, _Key], ts: float) -> None:
        self.handler = handler
        self.keys = keys
        self.last_seen = ts
        self.requeue_at = ts + _REQUEUE_EVERY
        self.client = Direction(self, True)
        self.server = Direction(self, False)
        self.client.peer = self.server
        self.server.peer = self.client


class _Unborn:
    """A flow's handler until its first byte: a SYN flood or a port scan costs no HTTP parsers.

    Half-open and empty connections are most of what a busy or scanned host
    sees; a parser pair is 4 KB or more.  The first ``data`` or ``gap`` makes the
    real handler (with the flow's opening time) and puts it in the flow's place.
    """

    __slots__ = ("flow", "factory", "interface", "client", "client_port", "server", "server_port", "ts")

    def __init__(self, flow: _Flow, factory: Callable[[Endpoints, float], StreamHandler], interface: str,
                 client: bytes, client_port: int, server: bytes, server_port: int, ts: float) -> None:
        self.flow = flow
        self.factory = factory
        self.interface = interface
        self.client = client
        self.client_port = client_port
        self.server = server
        self.server_port = server_port
        self.ts = ts

    def _born(self) -> StreamHandler:
        if self.flow.handler is not self:  # a caller holding this stand-in after the birth
            return self.flow.handler
        endpoints = Endpoints(self.interface, _endpoint_text(self.client), self.client_port,
                              _endpoint_text(self.server), self.server_port)
        handler = self.flow.handler = self.factory(endpoints, self.ts)
        return handler

    def data(self, from_client: bool, payload: bytes, ts: float) -> None:
        self._born().data(from_client, payload, ts)

    def gap(self, from_client: bool, missing: int, ts: float) -> None:
        self._born().gap(from_client, missing, ts)

    def overlap(self, from_client: bool, ts: float) -> None:
        self._born().overlap(from_client, ts)

    def closed(self, ts: float) -> None:
        if self.flow.handler is not self:
            self.flow.handler.closed(ts)


_DEFAULT_LIMITS = TcpLimits()


def _endpoint_text(addr: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)


class FlowTable:
    """Every tracked connection, fed one segment at a time."""

    def __init__(
        self,
        handler_factory: Callable[[Endpoints, float], StreamHandler],
        counters: EngineCounters,
        server_ports: Collection[int] = frozenset(),
        limits: TcpLimits = _DEFAULT_LIMITS,
    ) -> None:
        self._factory = handler_factory
        self._counters = counters
        self._server_ports = frozenset(server_ports)
        self._limits = limits
        self._halves: dict[_Key, Direction] = {}
        self._lru: OrderedDict[_Flow, None] = OrderedDict()
        """Live flows, least recently active first (to within ``_REQUEUE_EVERY``)."""
        self._tombstones: OrderedDict[_Key, tuple[float, int | None]] = OrderedDict()
        """Directions of recently closed flows → (close time, initial sequence number), oldest first."""
        self._next_expire = float("-inf")

    def set_server_ports(self, server_ports: Collection[int]) -> None:
        """Ports that mark the server side of flows picked up mid-stream (grows as containers start)."""
        self._server_ports = frozenset(server_ports)

    def __len__(self) -> int:
        return len(self._lru)

    def ingest(self, segment: Segment) -> None:
        """Take one segment, in capture order, delivering whatever it makes deliverable."""
        # One unpacking of the tuple costs less than its fields read one by one.
        ts, _, src, dst, sport, dport, seq, ack, flags, _, payload = segment
        if ts >= self._next_expire:
            self.expire(ts)
        half = self._halves.get((src, dst, sport, dport))
        if half is None:
            self._open(segment)
            return
        flow = half.flow
        flow.last_seen = ts
        if ts > flow.requeue_at:
            flow.requeue_at = ts + _REQUEUE_EVERY
            self._lru.move_to_end(flow)
        if flags & (SYN | FIN | RST) or half.slow or seq != half.nxt & _MASK:
            self._segment(half, segment)
            return
        # Fast path: in order, nothing held, nothing special.
        if payload:
            half.nxt += len(payload)
            flow.handler.data(half.from_client, payload, ts)
        if flags & ACK:
            peer = half.peer
            peer.acked = ack
            if peer.slow:
                self._settle(peer, ts)

    def expire(self, now: float) -> None:
        """Close flows idle for ``idle_timeout`` and forget tombstones older than ``closed_linger``."""
        self._next_expire = now + _EXPIRE_EVERY
        cutoff = now - self._limits.idle_timeout
        lru = self._lru
        while lru:
            flow = next(iter(lru))
            if flow.last_seen > cutoff:
                if flow.requeue_at - _REQUEUE_EVERY > cutoff:
                    break  # everything after it was queued later still
                flow.requeue_at = flow.last_seen + _REQUEUE_EVERY
                lru.move_to_end(flow)
                continue
            self._counters.flows_timed_out += 1
            self._close(flow, now, tombstone=False)
        linger_cutoff = now - self._limits.closed_linger
        tombstones = self._tombstones
        while tombstones and next(iter(tombstones.values()))[0] <= linger_cutoff:
            tombstones.popitem(last=False)

    def close_all(self, ts: float) -> None:
        """End of input: flush every flow, declaring its holes, and close it."""
        for flow in list(self._lru):
            self._close(flow, ts, tombstone=False)
        self._tombstones.clear()

    # -- connection lifecycle ------------------------------------------------

    def _open(self, segment: Segment) -> None:
        """A segment of no live flow: maybe the first of a new one."""
        flags = segment.flags
        if flags & RST or not (segment.payload or flags & SYN):
            return
        src, dst, sport, dport = segment.src_addr, segment.dst_addr, segment.src_port, segment.dst_port
        key = (src, dst, sport, dport)
        reverse = (dst, src, dport, sport)
        tombstones = self._tombstones
        if key in tombstones:
            if not flags & SYN or segment.seq == tombstones[key][1]:
                # A late copy: retransmitted, or seen on a second interface (bridge and veth) after
                # the first copy of the whole connection was already processed.
                self._counters.retransmitted_segments += 1
                return
            del tombstones[key]
            tombstones.pop(reverse, None)
        if len(self._lru) >= self._limits.max_flows:
            self._counters.flows_evicted += 1
            self._close(next(iter(self._lru)), segment.ts, tombstone=False)

        if flags & SYN:
            sender_is_client = not flags & ACK
        else:
            src_listed = sport in self._server_ports
            if src_listed != (dport in self._server_ports):
                sender_is_client = not src_listed
            else:
                sender_is_client = sport > dport
        flow = _Flow(None, (key, reverse), segment.ts)  # type: ignore[arg-type]
        if sender_is_client:
            flow.handler = _Unborn(flow, self._factory, segment.interface, src, sport, dst, dport, segment.ts)
        else:
            flow.handler = _Unborn(flow, self._factory, segment.interface, dst, dport, src, sport, segment.ts)
        self._counters.flows += 1
        self._lru[flow] = None
        sender, receiver = (flow.client, flow.server) if sender_is_client else (flow.server, flow.client)
        self._halves[key] = sender
        self._halves[reverse] = receiver
        if flags & SYN and not flags & ACK:
            sender.isn = segment.seq
        self._segment(sender, segment)

    def _close(self, flow: _Flow, ts: float, tombstone: bool) -> None:
        """Deliver what is deliverable, declare every remaining hole, call ``closed``, forget the flow."""
        del self._lru[flow]
        tombstones = self._tombstones
        for key in flow.keys:
            half = self._halves.pop(key)
            if tombstone:
                tombstones[key] = (ts, half.isn)
                tombstones.move_to_end(key)
        while len(tombstones) > 2 * self._limits.max_flows:
            tombstones.popitem(last=False)
        for half in (flow.client, flow.server):
            half.resolve(ts, self._counters, self._limits.max_buffered_bytes, force=True)
        flow.handler.closed(ts)

    # -- reassembly ----------------------------------------------------------

    def _segment(self, half: Direction, segment: Segment) -> None:
        """Everything the fast path does not handle."""
        flags = segment.flags
        flow = half.flow
        ts = segment.ts
        if flags & RST:
            self._close(flow, ts, tombstone=True)
            return
        seq = segment.seq
        if flags & SYN:
            if not flags & ACK and seq != half.isn:
                # A fresh SYN on these endpoints: the old connection ended unseen.
                self._close(flow, ts, tombstone=False)
                self._open(segment)
                return
            if half.isn is None:
                half.isn = seq
            if half.nxt is None:
                half.nxt = (seq + 1) & _MASK
            seq = (seq + 1) & _MASK
        payload = segment.payload
        nxt = half.nxt
        if nxt is None and (payload or flags & FIN):
            half.nxt = nxt = seq
        if nxt is not None:
            off = nxt + ((seq - nxt + _HALF) & _MASK) - _HALF
            if payload:
                half.hold(off, payload, self._counters)
            if flags & FIN and half.fin is None and off + len(payload) >= nxt:
                half.fin = off + len(payload)
            half.resolve(ts, self._counters, self._limits.max_buffered_bytes)
        if flags & ACK:
            peer = half.peer
            peer.acked = segment.ack
            if peer.slow:
                peer.resolve(ts, self._counters, self._limits.max_buffered_bytes)
        if half.done and half.peer.done:
            self._close(flow, ts, tombstone=True)

    def _settle(self, half: Direction, ts: float) -> None:
        """The peer's acknowledgement of ``half`` moved while ``half`` waits on a hole."""
        half.resolve(ts, self._counters, self._limits.max_buffered_bytes)
        if half.done and half.peer.done:
            self._close(half.flow, ts, tombstone=True)
