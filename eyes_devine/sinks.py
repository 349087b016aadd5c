"""Where records go after the enrich stages: one small interface, and a bounded queue with a thread for the ones
that can block.

A :class:`Sink` accepts a record, flushes, closes, and reports its counters
and, for what it dropped, why (the end of `run` names each reason).
:meth:`Sink.accept` runs on the engine thread and must never wait for I/O: a
sink that writes to a pipe, a terminal, a disk or a collector puts records in
a bounded queue that its own thread drains (:class:`QueuedSink`), and counts
what did not fit.  The store, stdout JSON Lines, alert log lines and the live
board are sinks today; an exporter or another database is one more.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from eyes_devine.records import Exchange, Flow

Record = Exchange | Flow


class SinkCounters(NamedTuple):
    """What a sink did with the records it was given."""

    accepted: int
    """Records handed to it."""
    written: int
    """Records it delivered (stored, printed, exported)."""
    dropped: int
    """Records it gave up: a full queue, a failed write, a reader that went away, time out at close."""


class Sink(Protocol):
    name: str
    """A short word for logs and counters: store, stdout, alerts, board."""

    def accept(self, record: Record) -> None:
        """Take one record; never blocks (called on the engine thread)."""

    def flush(self, timeout: float) -> bool:
        """Deliver what is queued; False when ``timeout`` seconds were not enough."""

    def close(self, timeout: float) -> None:
        """Flush, then stop; what could not be delivered within ``timeout`` is counted as dropped."""

    def counters(self) -> SinkCounters: ...

    def losses(self) -> Mapping[str, int]:
        """Records given up, by reason ("queue full"): the end of `run` names them.  Sums to ``dropped``."""


NO_LOSSES: Mapping[str, int] = MappingProxyType({})
"""What a sink that only keeps records in memory gives up: nothing (its bounds trim by design)."""

DEFAULT_QUEUE = 100_000
"""Records a queued sink holds before it drops: about ten seconds of a busy host."""


class QueuedSink:
    """A sink whose ``deliver(batch)`` may block: records wait in a bounded queue drained by the sink's own thread.

    ``deliver`` gets the records queued since its last call, oldest first (at
    most ``batch_size``; with ``linger``, it waits up to that many seconds for a
    full batch, as a collector would rather take few large requests), and
    returns how many of them it delivered (the rest count as dropped, for the
    reason in :attr:`undelivered`, which a subclass names when its output fails).
    ``wants`` picks the records this sink takes at all (others are ignored and
    not counted).
    """

    undelivered = "not delivered"
    """Why ``deliver`` gave records up, for :meth:`losses`."""

    def __init__(self, name: str, deliver: Callable[[list[Any]], int], *,
                 wants: Callable[[Record], bool] = lambda record: True, max_queued: int = DEFAULT_QUEUE,
                 batch_size: int = 1000, linger: float = 0.0) -> None:
        self.name = name
        self._deliver = deliver
        self._wants = wants
        self._max_queued = max_queued
        self._batch_size = batch_size
        self._linger = linger
        self._queue: deque[object] = deque()
        self._wake = threading.Event()
        self._full = threading.Event()
        """A whole batch is queued, or the sink is closing: no more lingering."""
        self._idle = threading.Event()
        self._idle.set()
        self._closing = False
        self._abandoned = False
        """Closed while ``deliver`` was stuck: what it held was counted as dropped, whatever it does later."""
        self._in_flight = 0
        self._count_lock = threading.Lock()
        self._accepted = self._written = 0
        self._dropped_full = self._dropped_late = self._dropped_at_close = self._dropped_delivery = 0
        self._close_timeout = 0.0
        self._thread = threading.Thread(target=self._run, name=f"eyes-devine-{name}", daemon=True)
        self._thread.start()

    def accept(self, record: Record) -> None:
        if self._wants(record):
            self._enqueue(record)

    def _enqueue(self, item: object) -> None:
        """Queue what ``deliver`` will get (a record, or what a subclass made of one), or count it dropped."""
        self._accepted += 1
        queue = self._queue
        if self._closing:
            self._dropped_late += 1
            return
        if len(queue) >= self._max_queued:
            self._dropped_full += 1
            return
        queue.append(item)
        if len(queue) == 1:
            self._idle.clear()
            self._wake.set()
        elif len(queue) == self._batch_size:
            self._full.set()

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._queue or not self._idle.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._wake.set()
            self._full.set()  # deliver now, whatever the batch's size
            self._idle.wait(min(remaining, 0.05))
        return True

    def close(self, timeout: float) -> None:
        self._closing = True
        self._full.set()
        self._close_timeout = timeout
        if self.flush(timeout):
            return
        # Whatever is still queued or being delivered now will never go out: a blocked reader, a stuck collector.
        with self._count_lock:
            self._abandoned = True
            self._dropped_at_close += len(self._queue) + self._in_flight
            self._queue.clear()
        self._wake.set()

    def counters(self) -> SinkCounters:
        dropped = self._dropped_full + self._dropped_late + self._dropped_at_close + self._dropped_delivery
        return SinkCounters(self._accepted, self._written, dropped)

    def losses(self) -> Mapping[str, int]:
        reasons = {
            "queue full": self._dropped_full,
            "arrived after close": self._dropped_late,
            f"still queued {self._close_timeout:g} s after stop": self._dropped_at_close,
            self.undelivered: self._dropped_delivery,
        }
        return {reason: count for reason, count in reasons.items() if count}

    def _run(self) -> None:
        queue = self._queue
        while True:
            self._wake.wait(0.5)
            self._wake.clear()
            if self._linger and queue and len(queue) < self._batch_size and not self._closing:
                self._full.wait(self._linger)
            self._full.clear()
            while queue:
                with self._count_lock:
                    batch = [queue.popleft() for _ in range(min(len(queue), self._batch_size))]
                    self._in_flight = len(batch)
                delivered = self._deliver(batch)
                with self._count_lock:
                    self._in_flight = 0
                    if not self._abandoned:
                        self._written += delivered
                        self._dropped_delivery += len(batch) - delivered
            self._idle.set()
            if self._closing and not queue:
                return
