"""One direction of a TCP connection: holding out-of-order bytes and declaring what the capture lost.

Offsets (``nxt``, ``fin``, ``starts``) are unwrapped sequence numbers: congruent
to the wire value modulo 2**32, growing past 2**32 instead of wrapping.

Overlap policy: target-based, as the receiver is Linux.  Behind a Docker bridge
the receiving end is always a Linux kernel, so where two copies of the same
bytes differ, the bytes kept are the ones Linux hands the application (Suricata's
``linux`` policy; Zeek and Suricata both reassemble by target OS because an
attacker who sends different copies chooses what a first-wins or last-wins
monitor sees).  Linux's out-of-order queue (``tcp_data_queue_ofo``) keeps, for
each byte, the copy from the segment that *starts* lowest; of two segments
starting at the same place the longer one, and the earlier one on a tie.
In-order data goes to the application at once, so it beats whatever was held
beyond it.  Bytes already delivered stay as they were.  Every segment whose
copy of held bytes differs counts in ``overlap_conflicts``, and the handler's
``overlap`` is called just before the first byte of the differing range is
delivered, so the message holding it can be flagged ``overlap_conflict``.

Gap policy.  A hole
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

from bisect import bisect_right, insort
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
        "origins",
        "held_bytes",
        "conflicts",
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
        self.origins: list[tuple[int, int]] = []
        """(start, end) of the segment each held chunk's bytes came from: the overlap policy compares those."""
        self.held_bytes = 0
        self.conflicts: list[int] = []
        """Offsets, sorted, where held bytes differ from another copy: the handler hears of each on delivery."""

    def hold(self, off: int, payload: bytes, counters: EngineCounters) -> None:
        """Add a segment's bytes beyond ``nxt`` to the held chunks, by the Linux overlap policy (module docstring)."""
        nxt = self.nxt
        end = off + len(payload)
        if end <= nxt:
            counters.retransmitted_segments += 1
            return
        origin = (off, end)
        pos = max(off, nxt)
        starts, chunks, origins = self.starts, self.chunks, self.origins
        first = bisect_right(starts, pos) - 1
        if first < 0 or starts[first] + len(chunks[first]) <= pos:
            first += 1
        last = first
        while last < len(starts) and starts[last] < end:
            last += 1
        if first == last:  # nothing held in the way: the usual out-of-order segment
            starts.insert(first, pos)
            chunks.insert(first, payload[pos - off :] if pos > off else payload)
            origins.insert(first, origin)
            self.held_bytes += end - pos
            return
        pieces: list[tuple[int, bytes, tuple[int, int]]] = []
        conflict: int | None = None
        fresh = 0
        for k in range(first, last):
            held_start, held, held_origin = starts[k], chunks[k], origins[k]
            held_end = held_start + len(held)
            if held_start > pos:
                pieces.append((pos, payload[pos - off : held_start - off], origin))
                fresh += held_start - pos
            elif held_start < pos:
                pieces.append((held_start, held[: pos - held_start], held_origin))
            lap_start, lap_end = max(held_start, pos), min(held_end, end)
            mine = payload[lap_start - off : lap_end - off]
            theirs = held[lap_start - held_start : lap_end - held_start]
            new_wins = off < held_origin[0] or (off == held_origin[0] and end > held_origin[1])
            pieces.append((lap_start, mine, origin) if new_wins else (lap_start, theirs, held_origin))
            if mine != theirs and conflict is None:
                conflict = lap_start + _first_difference(mine, theirs)
            if held_end > end:
                pieces.append((end, held[end - held_start :], held_origin))
            pos = lap_end
        if pos < end:
            pieces.append((pos, payload[pos - off :], origin))
            fresh += end - pos
        self.held_bytes += sum(len(piece) for _, piece, _ in pieces) - sum(len(chunk) for chunk in chunks[first:last])
        starts[first:last] = [piece_start for piece_start, _, _ in pieces]
        chunks[first:last] = [piece for _, piece, _ in pieces]
        origins[first:last] = [piece_origin for _, _, piece_origin in pieces]
        if conflict is not None:
            counters.overlap_conflicts += 1
            insort(self.conflicts, conflict)
        elif not fresh:
            counters.retransmitted_segments += 1

    def resolve(self, ts: float, counters: EngineCounters, max_buffered: int, force: bool = False) -> None:
        """Deliver what is contiguous; declare holes the gap policy (or ``force``) says are lost."""
        half = self
        nxt = half.nxt
        if nxt is None:
            return
        starts, chunks, origins, conflicts = half.starts, half.chunks, half.origins, half.conflicts
        handler = half.flow.handler
        from_client = half.from_client
        while True:
            while starts and starts[0] == nxt:
                del starts[0]
                del origins[0]
                chunk = chunks.pop(0)
                half.held_bytes -= len(chunk)
                if conflicts and conflicts[0] < nxt + len(chunk):
                    half._deliver_conflicted(chunk, ts)
                    nxt = half.nxt
                    continue
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
                origins.clear()
                conflicts.clear()
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
            while conflicts and conflicts[0] < nxt:  # in the hole: those bytes never arrive
                del conflicts[0]
        half.nxt = nxt
        half.slow = bool(starts) or fin is not None

    def _deliver_conflicted(self, chunk: bytes, ts: float) -> None:
        """Deliver a chunk holding bytes whose copies differed, telling the handler just before the first of them."""
        handler = self.flow.handler
        from_client = self.from_client
        nxt = self.nxt
        assert nxt is not None
        conflicts = self.conflicts
        while conflicts and conflicts[0] < nxt + len(chunk):
            cut = max(conflicts.pop(0) - nxt, 0)
            if cut:
                handler.data(from_client, chunk[:cut], ts)
                chunk = chunk[cut:]
                nxt += cut
                self.nxt = nxt
            handler.overlap(from_client, ts)
        if chunk:
            self.nxt = nxt + len(chunk)
            handler.data(from_client, chunk, ts)


def _first_difference(mine: bytes, theirs: bytes) -> int:
    """Index of the first byte where two equal-length copies differ."""
    for index, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        if a != b:
            return index
    return len(mine)
