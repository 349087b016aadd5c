"""One direction of a TCP connection: holding out-of-order bytes and declaring what the capture lost.

Offsets (``nxt``, ``fin``, ``starts``) are unwrapped sequence numbers: congruent
to the wire value modulo 2**32, growing past 2**32 instead of wrapping.

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
  the end of the capture).

A hole with nothing after it (the tail of a stream lost) is never declared: no
byte follows it, and ``closed`` tells the handler the stream ended.  Holes only
ever hold back their own direction; the other direction is delivered as it
arrives.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from eyes_devine.records import EngineCounters

MASK = 0xFFFFFFFF
"""Sequence numbers are 32 bits."""
HALF = 0x80000000
"""Half the sequence space: a difference beyond it is a step backwards."""


class Direction:
    """The bytes one endpoint sends, and the flow (with its handler) they belong to."""

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

    def __init__(self, flow: Any, from_client: bool) -> None:
        self.flow = flow
        self.peer: Direction
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

    def hold(self, off: int, payload: bytes, counters: EngineCounters) -> None:
        """Add a segment's bytes beyond ``nxt`` to the held chunks; bytes already held win."""
        half = self
        nxt = half.nxt
        end = off + len(payload)
        if end <= nxt:
            counters.retransmitted_segments += 1
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
            counters.overlap_conflicts += 1
        if not pieces:
            counters.retransmitted_segments += 1
            return
        for start, chunk in pieces:
            k = bisect_right(starts, start)
            starts.insert(k, start)
            chunks.insert(k, chunk)
            half.held_bytes += len(chunk)

    def resolve(self, ts: float, counters: EngineCounters, max_buffered: int, force: bool = False) -> None:
        """Deliver what is contiguous; declare holes the gap policy (or ``force``) says are lost."""
        half = self
        nxt = half.nxt
        if nxt is None:
            return
        starts, chunks = half.starts, half.chunks
        handler = half.flow.handler
        from_client = half.from_client
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
                upto = nxt if acked is None else nxt + ((acked - nxt + HALF) & MASK) - HALF
                if upto > nxt:
                    upto = min(upto, stop)
                elif half.held_bytes > max_buffered:
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
