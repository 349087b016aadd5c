"""The sans-I/O core wired together: raw frames and timestamps in, Exchange records out.

Live capture and capture files feed the same :class:`Engine`; only the source
differs.  Nothing here does I/O or imports an adapter, so the whole path from
bytes to exchanges is tested from pcaps without privileges.

With a :class:`~eyes_devine.core.flows.FlowTracker` (``--all-traffic``) the decoder
also shows every TCP, UDP and ICMP packet to the tracker, and only TCP on the
server ports goes on to HTTP parsing, as the BPF port filter does otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from eyes_devine.core.decode import Decode, Observe, decoder_for
from eyes_devine.core.flows import FlowTracker
from eyes_devine.core.http.connection import HttpConnection
from eyes_devine.core.http.framing import HttpLimits
from eyes_devine.core.tcp import FlowTable, TcpLimits
from eyes_devine.records import EngineCounters, Exchange, Segment

EXPIRE_EVERY = 1.0
"""Seconds of capture time between idle-flow sweeps."""
SHARED_COUNTERS = frozenset({"packets", "bytes", "undecodable", "ip_fragments"})
"""Counted by the decoder, before a frame's share is known: every shard's engine counts the whole input."""


class Engine:
    """decode → TCP flows → HTTP exchanges, for one stream of frames in time order."""

    def __init__(
        self,
        emit: Callable[[Exchange], None],
        server_ports: Collection[int],
        *,
        only_server_ports: bool = False,
        limits: TcpLimits | None = None,
        http_limits: HttpLimits | None = None,
        tracker: FlowTracker | None = None,
        shard: tuple[int, int] | None = None,
    ) -> None:
        """``only_server_ports`` drops TCP on other ports, as the BPF filter does for live capture; a ``tracker``
        implies it, since its capture filter lets every port through.  ``shard`` = (index, count): only the
        connections of this share are followed, the others left to the engines of the other shares (workers
        reading one file); a connection's share comes from its two ports (:func:`share_of`), the same both ways.
        Every engine decodes every frame, so ``packets``, ``bytes``, ``undecodable`` and ``ip_fragments`` count
        the whole input in each (:data:`SHARED_COUNTERS`)."""
        http = http_limits or HttpLimits()
        self.counters = EngineCounters()
        counters = self.counters
        self._decoders: dict[int, Decode] = {}
        self.tracker = tracker
        self._ports = frozenset(server_ports) if only_server_ports or tracker is not None else None
        self.flows = FlowTable(
            lambda endpoints, ts: HttpConnection(endpoints, emit, counters, http),
            counters,
            frozenset(server_ports),
            limits or TcpLimits(),
        )
        self._next_expiry = 0.0
        self.last_ts = 0.0
        self._shard = shard

    def decoder(self, linktype: int) -> Decode:
        """The decoder for a link type; raises UnsupportedLinkType for ones we cannot read."""
        decode = self._decoders.get(linktype)
        if decode is None:
            observe = self.tracker.observe if self.tracker is not None else None
            if observe is not None and self._shard is not None:
                observe = _sharded(observe, *self._shard)
            decode = self._decoders[linktype] = decoder_for(linktype, self.counters, observe)
        return decode

    def feed(self, linktype: int, ts: float, frame: bytes, interface: str) -> None:
        decode = self._decoders.get(linktype) or self.decoder(linktype)
        segment = decode(frame, ts, interface)
        if segment is not None:
            self._ingest(segment)

    def feeder(self, linktype: int, interface: str) -> Callable[[float, bytes], None]:
        """``feed`` with the link type and interface fixed: the loop over a capture file calls it per frame."""
        decode = self.decoder(linktype)
        ingest = self._ingest

        def feed(ts: float, frame: bytes) -> None:
            segment = decode(frame, ts, interface)
            if segment is not None:
                ingest(segment)

        return feed

    def set_server_ports(self, server_ports: Collection[int]) -> None:
        """HTTP ports from now on (they grow as containers publish ports)."""
        if self._ports is not None:
            self._ports = frozenset(server_ports)
        self.flows.set_server_ports(server_ports)

    def _ingest(self, segment: Segment) -> None:
        shard = self._shard
        if shard is not None and share_of(segment[4], segment[5], shard[1]) != shard[0]:  # another engine's
            return
        ports = self._ports
        if ports is not None and segment[4] not in ports and segment[5] not in ports:  # src_port, dst_port
            self.counters.off_port_segments += 1
            return
        self.flows.ingest(segment)
        ts = self.last_ts = segment[0]  # ts
        if ts >= self._next_expiry:
            self.tick(ts)

    def tick(self, now: float) -> None:
        """Time passes (also called without packets, so idle flows end on a quiet network)."""
        self._next_expiry = now + EXPIRE_EVERY
        self.flows.expire(now)
        if self.tracker is not None:
            self.tracker.expire(now)

    def finish(self) -> None:
        """End of input: every open connection ends, and what it still held comes out."""
        self.flows.close_all(self.last_ts)
        if self.tracker is not None:
            self.tracker.close_all()


def share_of(port_a: int, port_b: int, count: int) -> int:
    """Which of ``count`` shares a connection between these ports is in: the same for both directions, and spread
    however the ports are chosen (Linux gives connect() even ports, so a plain sum would put every connection to
    port 80 in one of two shares).  Fibonacci hashing of each port, XORed."""
    return ((((port_a * 2654435761) ^ (port_b * 2654435761)) & 0xFFFFFFFF) >> 16) % count


def _sharded(observe: Observe, index: int, count: int) -> Observe:
    """The flow tracker's view of the packets of one share."""

    def observe_share(ts: float, interface: str, proto: int, src: bytes, dst: bytes, sport: int, dport: int,
                      flags: int, length: int, payload: bytes) -> None:
        if share_of(sport, dport, count) == index:
            observe(ts, interface, proto, src, dst, sport, dport, flags, length, payload)

    return observe_share
