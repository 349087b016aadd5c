"""The last line of `run` and of capturing `watch`: what was stored, what was lost and why, and the exit code.

A record is lost when a sink it was meant for gave it up: the store (a full
queue, a failed write, still queued when the store had to stop), stdout under
``--json`` (a reader too slow, or gone: the user asked for every exchange
there), the alert log lines, the OTLP exporter (a collector down for longer
than its queue lasts; exchanges left out by ``--otlp-sample`` are not lost).
Then the run ends with :data:`EXIT_LOST`, so a supervisor or a script can tell
"stopped, but records were lost" from a clean stop (0) and from a failure (1).

Packets that capture dropped (in the kernel, or in the engine's frame queue
when it fell behind) are named on the same line but leave the exit code alone,
as tcpdump reports "packets dropped by kernel" and exits 0: they are traffic
the host could not hand over in time, never records eyes-devine held, and the
exchanges they hit are flagged ``gap``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eyes_devine.adapters.store.writer import StoreWriter
from eyes_devine.sinks import Sink
from eyes_devine.snapshots import MonitorSnapshot

EXIT_OK = 0
EXIT_LOST = 3
"""Stopped as asked, but some records were not stored or printed: the final line says which and why."""

LOST_AS = {"store": "not stored", "stdout": "not printed on stdout", "alerts": "alert lines not logged",
           "otlp": "not exported over OTLP"}
"""How the final line names what each sink gave up."""


@dataclass(frozen=True, slots=True)
class Ending:
    code: int
    """:data:`EXIT_OK`, or :data:`EXIT_LOST` when any record was lost."""
    message: str
    """The final line: ``stopped: 9,800 exchanges stored; 475 not stored (in 3 failed batches: …)``."""
    lost: int
    """Records all sinks gave up, together."""


def ending(store: StoreWriter, sinks: Sequence[Sink], snapshot: MonitorSnapshot, flows: bool) -> Ending:
    """The end of a run whose sinks are all closed (everything they could deliver is delivered); ``flows``: the
    flow summaries stored are counted too (--all-traffic)."""
    stored = _many(store.written, "exchange") + (f" and {_many(store.flows_written, 'flow')}" if flows else "")
    stored += " stored"
    dropped = [(sink, sink.counters().dropped) for sink in sinks]
    losses = [_lost(sink, count) for sink, count in dropped if count]
    parts = [stored, ", ".join(losses) if losses else "nothing lost"]
    if store.spooled_at_stop:  # kept, not lost: the next run sends them
        parts.insert(1, f"{_many(store.spooled_at_stop, 'record')} wait in {store.spool_path} for the next run "
                        "(the database could not be reached)")
    captured = _capture_drops(snapshot)
    if captured:
        parts.append(captured)
    lost = sum(count for _, count in dropped)
    return Ending(EXIT_LOST if lost else EXIT_OK, "stopped: " + "; ".join(parts), lost)


def _many(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _lost(sink: Sink, dropped: int) -> str:
    """``475 not stored (463 in 3 failed batches: …: database or disk is full; 12 queue full)``."""
    text = f"{dropped:,} {LOST_AS.get(sink.name, f'dropped by {sink.name}')}"
    reasons = _reasons(sink.losses(), dropped)
    return f"{text} ({reasons})" if reasons else text


def _reasons(losses: Mapping[str, int], dropped: int) -> str:
    if len(losses) == 1 and next(iter(losses.values())) == dropped:
        return next(iter(losses))
    return "; ".join(f"{count:,} {reason}" for reason, count in losses.items())


def _capture_drops(snapshot: MonitorSnapshot) -> str:
    kinds = [(f"kernel {snapshot.kernel_drops:,}", snapshot.kernel_drops),
             (f"engine queue {snapshot.queue_drops:,}", snapshot.queue_drops)]
    total = sum(count for _, count in kinds)
    if not total:
        return ""
    return f"capture dropped {_many(total, 'packet')} ({', '.join(text for text, count in kinds if count)})"
