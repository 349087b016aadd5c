"""Connection tracking and per-direction TCP reassembly, without I/O.

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

Gap policy.  Out-of-order data is held (first data wins where segments overlap;
``overlap_conflicts`` counts segments whose overlapping bytes differ).  A hole
in front of held data (or in front of a FIN) is declared lost, with
``handler.gap`` before the bytes after it, as soon as one of these holds:

* the peer has acknowledged beyond the start of the hole: the receiver has
  those bytes, so no retransmission will come and the capture lost them.  The
  gap covers the hole up to the acknowledged point, and the held data after it
  is delivered at once.  This is checked whenever data is held and whenever
  the peer's ACK moves, in either order, so on a keep-alive connection whose
  response lost a segment the gap is declared, and the next response
  delivered, as soon as the client's ACK for that next response is seen (or
  at once, if the client had already acknowledged past the hole);
* the direction holds more than ``max_buffered_bytes``: the hole is skipped
  to the first held byte so the stream makes progress (``buffer_evictions``
  counts these forced skips; no held data is dropped);
* the connection ends (RST, restart by a new SYN, idle timeout, eviction,
  :meth:`FlowTable.close_all`).

A hole with nothing after it (the tail of a stream lost) is never declared: no
byte follows it, and ``closed`` tells the handler the stream ended.  Holes only
ever hold back their own direction; the other direction is delivered as it
arrives.

A connection ends when both FINs have been reached in sequence, or on RST: the
handler gets what is deliverable, gaps for the rest, then ``closed`` once.  Its
endpoints are remembered for ``closed_linger`` seconds so late
retransmissions are dropped instead of starting a bogus connection; a new SYN
on the same endpoints starts a new one at any time.
"""

from __future__ import annotations

import socket
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

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
    before the bytes that follow the hole.
    """

    def data(self, from_client: bool, payload: bytes, ts: float) -> None: ...

    def gap(self, from_client: bool, missing: int, ts: float) -> None: ...

    def closed(self, ts: float) -> None: ...


_MASK = 0xFFFFFFFF
_HALF = 0x80000000
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
        self.client = _Half(self, True)
        self.server = _Half(self, False)
        self.client.peer = self.server
        self.server.peer = self.client


class _Half:
    """The bytes one endpoint sends.

    Offsets (``nxt``, ``fin``, ``starts``) are unwrapped sequence numbers: congruent
    to the wire value modulo 2**32, growing past 2**32 instead of wrapping.
    """

    __slots__ = (
        "flow",
        "peer",
        "from_client",
        "nxt",
        "isn",
        "acked",
        "fin",
        "done",
        "slow",
        "starts",
        "chunks",
        "held_bytes",
    )

    def __init__(self, flow: _Flow, from_client: bool) -> None:
        self.flow = flow
        self.peer: _Half
        self.from_client = from_client
        self.nxt: int | None = None
        """Offset of the next byte to deliver; None until the direction's start is known."""
        self.isn: int | None = None
        """Sequence number of this side's SYN without ACK, to tell a retransmitted SYN from a new connection."""
        self.acked: int | None = None
        """Latest acknowledgement number the peer sent for this direction (wire value)."""
        self.fin: int | None = None
        """Offset of the FIN once seen."""
        self.done = False
        """The FIN has been reached in sequence."""
        self.slow = True
        """The fast path must not be used: start unknown, data held or a FIN waiting."""
        self.starts: list[int] = []
        """Offsets of held out-of-order chunks: sorted, disjoint, all beyond ``nxt``."""
        self.chunks: list[bytes] = []
        self.held_bytes = 0


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
        self._halves: dict[_Key, _Half] = {}
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
            self._resolve(half, ts, force=True)
        flow.handler.closed(ts)

    # -- reassembly ----------------------------------------------------------

    def _segment(self, half: _Half, segment: Segment) -> None:
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
                self._hold(half, off, payload)
            if flags & FIN and half.fin is None and off + len(payload) >= nxt:
                half.fin = off + len(payload)
            self._resolve(half, ts)
        if flags & ACK:
            peer = half.peer
            peer.acked = segment.ack
            if peer.slow:
                self._resolve(peer, ts)
        if half.done and half.peer.done:
            self._close(flow, ts, tombstone=True)

    def _settle(self, half: _Half, ts: float) -> None:
        """The peer's acknowledgement of ``half`` moved while ``half`` waits on a hole."""
        self._resolve(half, ts)
        if half.done and half.peer.done:
            self._close(half.flow, ts, tombstone=True)

    def _hold(self, half: _Half, off: int, payload: bytes) -> None:
        """Add a segment's bytes beyond ``nxt`` to the held chunks; bytes already held win."""
        nxt = half.nxt
        end = off + len(payload)
        if end <= nxt:
            self._counters.retransmitted_segments += 1
            return
        if off < nxt:
            payload = payload[nxt - off :]
            off = nxt
        starts, chunks = half.starts, half.chunks
        if not starts:
            starts.append(off)
            chunks.append(payload)
            half.held_bytes += end - off
            return
        pieces: list[tuple[int, bytes]] = []
        conflict = False
        pos = off
        i = bisect_right(starts, off) - 1
        if i >= 0:
            held_end = starts[i] + len(chunks[i])
            if held_end > off:
                pos = min(held_end, end)
                conflict = chunks[i][off - starts[i] : pos - starts[i]] != payload[: pos - off]
        j = i + 1
        while pos < end and j < len(starts) and starts[j] < end:
            start, chunk = starts[j], chunks[j]
            if start > pos:
                pieces.append((pos, payload[pos - off : start - off]))
            pos = min(start + len(chunk), end)
            if chunk[: pos - start] != payload[start - off : pos - off]:
                conflict = True
            j += 1
        if pos < end:
            pieces.append((pos, payload[pos - off :]))
        if conflict:
            self._counters.overlap_conflicts += 1
        if not pieces:
            self._counters.retransmitted_segments += 1
            return
        for start, chunk in pieces:
            k = bisect_right(starts, start)
            starts.insert(k, start)
            chunks.insert(k, chunk)
            half.held_bytes += len(chunk)

    def _resolve(self, half: _Half, ts: float, force: bool = False) -> None:
        """Deliver what is contiguous; declare holes the gap policy (or ``force``) says are lost."""
        nxt = half.nxt
        if nxt is None:
            return
        starts, chunks = half.starts, half.chunks
        handler = half.flow.handler
        from_client = half.from_client
        counters = self._counters
        while True:
            while starts and starts[0] == nxt:
                del starts[0]
                chunk = chunks.pop(0)
                half.held_bytes -= len(chunk)
                nxt += len(chunk)
                half.nxt = nxt
                handler.data(from_client, chunk, ts)
            fin = None if half.done else half.fin
            if fin is not None and nxt >= fin:
                # The FIN is reached; anything held beyond it is bogus and goes with it.
                half.done = True
                nxt = max(nxt, fin + 1)
                fin = None
                starts.clear()
                chunks.clear()
                half.held_bytes = 0
            if starts:
                stop = starts[0]
            elif fin is not None:
                stop = fin
            else:
                break
            if force:
                upto = stop
            else:
                acked = half.acked
                upto = nxt if acked is None else nxt + ((acked - nxt + _HALF) & _MASK) - _HALF
                if upto > nxt:
                    upto = min(upto, stop)
                elif half.held_bytes > self._limits.max_buffered_bytes:
                    counters.buffer_evictions += 1
                    upto = stop
                else:
                    break
            missing = upto - nxt
            counters.gaps += 1
            counters.bytes_missing += missing
            nxt = upto
            half.nxt = nxt
            handler.gap(from_client, missing, ts)
        half.nxt = nxt
        half.slow = bool(starts) or fin is not None
