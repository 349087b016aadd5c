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

from eyes_devine.core.decode import Decode, decoder_for
from eyes_devine.core.flows import FlowTracker
from eyes_devine.core.http.connection import HttpConnection
from eyes_devine.core.http.framing import HttpLimits
from eyes_devine.core.tcp import FlowTable, TcpLimits
from eyes_devine.records import EngineCounters, Exchange, Segment

EXPIRE_EVERY = 1.0
"""Seconds of capture time between idle-flow sweeps."""


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
    ) -> None:
        """``only_server_ports`` drops TCP on other ports, as the BPF filter does for live capture; a ``tracker``
        implies it, since its capture filter lets every port through."""
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

    def decoder(self, linktype: int) -> Decode:
        """The decoder for a link type; raises UnsupportedLinkType for ones we cannot read."""
        decode = self._decoders.get(linktype)
        if decode is None:
            observe = self.tracker.observe if self.tracker is not None else None
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
