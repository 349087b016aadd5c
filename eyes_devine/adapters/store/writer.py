"""The store as a sink: exchanges and flow summaries reach SQLite in batches, on a thread of their own.

Capture must never wait for the disk.  :meth:`StoreWriter.accept` runs on the
engine thread and only appends to a bounded deque (what does not fit is
dropped and counted).  The writer's own thread runs an event loop holding the
database connection; it writes up to ``batch_size`` records per transaction, as
soon as that many wait or else every ``flush_interval`` seconds.  A failed write
(a full disk) is reported to ``on_error`` and its records counted as dropped;
the writer carries on with the next batch.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from collections.abc import Callable

from eyes_devine.adapters.store.sqlite import ExchangeStore, StoreError, open_store
from eyes_devine.records import Exchange, Flow
from eyes_devine.sinks import Record, SinkCounters

DEFAULT_BATCH_SIZE = 500
DEFAULT_MAX_PENDING = 100_000
DEFAULT_FLUSH_INTERVAL = 0.2
"""Seconds between flushes of a partial batch: 0.2 leaves room for the write itself within the 250 ms promise."""


class StoreWriter:
    """A :class:`~eyes_devine.sinks.Sink` writing exchanges and flows to one SQLite database."""

    name = "store"

    def __init__(
        self,
        path: str | os.PathLike[str],
        keep: int,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        on_batch: Callable[[int, int, float], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_alerts: Callable[[int], None] | None = None,
    ) -> None:
        """``on_batch(exchanges, flows, seconds)`` is told of each batch stored, ``on_alerts`` how many of its
        exchanges matched a suspicious-request rule (when any did); both run on the writer's thread."""
        if batch_size < 1 or max_pending < 1:
            raise ValueError("batch_size and max_pending must be at least 1")
        self.path = path
        self.keep = keep
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.flush_interval = flush_interval
        self.on_batch = on_batch
        self.on_error = on_error
        self.on_alerts = on_alerts
        self.accepted = 0
        self.written = 0
        """Exchanges stored."""
        self.flows_accepted = 0
        self.flows_written = 0
        self.batches = 0
        self.failed_batches = 0
        self.dropped_full = 0
        """Records refused because the queue was full or the writer had stopped (the engine thread counts these)."""
        self.dropped_failed = 0
        """Exchanges of batches whose write failed (the writer's thread counts these)."""
        self.flows_dropped = 0
        """Flow summaries refused or lost in a failed write."""
        self._pending: deque[Record] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._wake_requested = False
        self._closing = False
        self._opened = threading.Event()
        self._open_error: StoreError | None = None
        self._thread = threading.Thread(target=self._main, name="eyes-devine-store", daemon=True)

    # -- the Sink interface, on the engine thread -----------------------------------------

    def start(self) -> None:
        """Open (create, migrate) the database on the writer's thread; raises StoreError when it cannot."""
        self._thread.start()
        self._opened.wait()
        if self._open_error is not None:
            self._thread.join()
            raise self._open_error

    def accept(self, record: Record) -> None:
        """Queue one exchange or flow summary; never blocks."""
        is_flow = type(record) is Flow
        if is_flow:
            self.flows_accepted += 1
        else:
            self.accepted += 1
        pending = self._pending
        if self._closing or len(pending) >= self.max_pending:
            if is_flow:
                self.flows_dropped += 1
            else:
                self.dropped_full += 1
            return
        pending.append(record)
        if len(pending) >= self.batch_size and not self._wake_requested and self._loop is not None:
            self._wake_requested = True  # one wake-up per full batch, not one per record
            try:
                self._loop.call_soon_threadsafe(self._wake_up)
            except RuntimeError:  # the loop has ended; close() counts what is left
                pass

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._pending:
            if time.monotonic() >= deadline or not self._thread.is_alive():
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Write everything still queued (as long as ``timeout`` allows), then close the database."""
        self._closing = True
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._wake_up)
            except RuntimeError:
                pass
        self._thread.join(timeout)
        left = list(self._pending)
        self._pending.clear()
        self.flows_dropped += sum(1 for record in left if type(record) is Flow)
        self.dropped_full += sum(1 for record in left if type(record) is not Flow)

    @property
    def dropped(self) -> int:
        """Exchanges not stored."""
        return self.dropped_full + self.dropped_failed

    @property
    def pending(self) -> int:
        return len(self._pending)

    def counters(self) -> SinkCounters:
        return SinkCounters(self.accepted + self.flows_accepted, self.written + self.flows_written,
                            self.dropped + self.flows_dropped)

    # -- the writer's thread ---------------------------------------------------------------

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        try:
            store = await open_store(self.path, self.keep)
        except StoreError as error:
            self._open_error = error
            self._opened.set()
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._opened.set()
        try:
            await self._write_batches(store)
        finally:
            await store.close()  # an open connection's thread would keep the process alive

    async def _write_batches(self, store: ExchangeStore) -> None:
        assert self._wake is not None and self._loop is not None
        pending = self._pending
        clock = self._loop.time
        emptied_at = clock()
        while True:
            # Everything queued before emptied_at is written; what came after waits one interval at most.
            timeout = emptied_at + self.flush_interval - clock()
            if len(pending) < self.batch_size and not self._closing and timeout > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except TimeoutError:
                    pass
            self._wake.clear()
            self._wake_requested = False
            while True:
                emptied_at = clock()
                batch = [pending.popleft() for _ in range(min(self.batch_size, len(pending)))]
                if batch:
                    await self._write(store, batch)
                if len(batch) < self.batch_size:
                    break
            if self._closing and not pending:
                return

    async def _write(self, store: ExchangeStore, batch: list[Record]) -> None:
        exchanges = [record for record in batch if type(record) is Exchange]
        flows = [record for record in batch if type(record) is Flow]
        started = time.perf_counter()
        try:
            await store.write(exchanges, flows)
        except Exception as error:  # a full disk must not stop capture: count, report, go on
            self.failed_batches += 1
            self.dropped_failed += len(exchanges)
            self.flows_dropped += len(flows)
            if self.on_error is not None:
                self.on_error(error)
            return
        self.written += len(exchanges)
        self.flows_written += len(flows)
        self.batches += 1
        if self.on_batch is not None:
            self.on_batch(len(exchanges), len(flows), time.perf_counter() - started)
        if self.on_alerts is not None:
            alerted = sum(1 for x in exchanges if x.alerts)
            if alerted:
                self.on_alerts(alerted)
