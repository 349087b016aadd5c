"""The store as a sink: exchanges and flow summaries reach the database in batches, on a thread of their own.

Capture must never wait for the disk.  :meth:`StoreWriter.accept` runs on the
engine thread and only appends to a bounded deque (what does not fit is
dropped and counted).  The writer's own thread runs an event loop holding the
database connection; it writes up to ``batch_size`` records per transaction, as
soon as that many wait or else every ``flush_interval`` seconds.

A failed write (a full disk, an I/O error) must not stop capture: the batch is
counted as not stored under its kind of error, and the writer carries on with
the next batch, which succeeds again once there is space.  ``on_error`` hears
of a kind of error once, not once per batch (again only after writes recovered
and a minute passed), and ``on_recovered`` when writes succeed after failures
it heard of: a disk that stays full costs two lines, not one per batch.

A database that cannot be reached (PostgreSQL down, the network gone) loses
nothing at first: batches wait in the :class:`~eyes_devine.adapters.store.spool.Spool`
(memory, then the ``--spool`` file) with their idempotency keys, and are sent
oldest first once a retry (every :data:`RETRY_SECONDS` at most) gets through.
Only what overflows the spool is lost, and counted.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

from eyes_devine.adapters.store.errors import StoreError, StoreUnavailable
from eyes_devine.adapters.store.opener import Store, display, open_database
from eyes_devine.adapters.store.spool import DEFAULT_MEMORY_RECORDS, Batch, Spool
from eyes_devine.records import ContainerTenure, Exchange, Flow, MonitorStatus
from eyes_devine.sinks import Record, SinkCounters

DEFAULT_BATCH_SIZE = 500
DEFAULT_MAX_PENDING = 100_000
DEFAULT_FLUSH_INTERVAL = 0.2
"""Seconds between flushes of a partial batch: 0.2 leaves room for the write itself within the 250 ms promise."""
ERROR_REPEAT_SECONDS = 60.0
"""A kind of error already reported is reported again only after writes recovered, and at most this often."""
MAX_ERROR_KINDS = 8
"""Kinds of error told apart; beyond these, failures count as "other errors"."""
RETRY_SECONDS = 2.0
"""Most seconds between attempts to reach a database that could not be reached."""
TENURE_HEADROOM = 10_000
"""Container tenures queued beyond ``max_pending``: a few a minute, and without them `read --db` cannot name the
containers of that time, so a queue full of exchanges does not cost them."""
_NONE_IN_FLIGHT = (0, 0, 0)


def error_kind(error: Exception) -> str:
    """One line naming what went wrong: the store's own message, else the exception's type and text."""
    text = str(error) if isinstance(error, StoreError) else f"{type(error).__name__}: {error}"
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


class StoreWriter:
    """A :class:`~eyes_devine.sinks.Sink` writing exchanges and flows to one database (SQLite or PostgreSQL)."""

    name = "store"

    def __init__(
        self,
        path: str | os.PathLike[str],
        keep: int,
        *,
        retain: float | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        on_batch: Callable[[int, int, float], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_recovered: Callable[[int, int], None] | None = None,
        on_alerts: Callable[[int], None] | None = None,
        observer: str | None = None,
        spool: Path | None = None,
        on_unreachable: Callable[[str], None] | None = None,
        on_reachable: Callable[[], None] | None = None,
        spool_records: int = DEFAULT_MEMORY_RECORDS,
    ) -> None:
        """``on_batch(exchanges, flows, seconds)`` is told of each batch stored, ``on_alerts`` how many of its
        exchanges matched a suspicious-request rule (when any did), ``on_error(kind)`` of a kind of failed write
        and ``on_recovered(batches, records)`` of the first write that worked after it (see the module's
        docstring); all run on the writer's thread."""
        if batch_size < 1 or max_pending < 1:
            raise ValueError("batch_size and max_pending must be at least 1")
        self.path = path
        self.keep = keep
        self.retain = retain
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.flush_interval = flush_interval
        self.on_batch = on_batch
        self.on_error = on_error
        self.on_recovered = on_recovered
        self.on_alerts = on_alerts
        self.observer = observer
        self.on_unreachable = on_unreachable
        self.on_reachable = on_reachable
        self._spool = Spool(memory_records=spool_records, path=spool)
        self._run_key = uuid.uuid4()
        self._seq = 0
        """The sequence number of the next record: with the run key, each batch's idempotency key."""
        self._unreachable = False
        """The last attempt could not reach the database: new batches go to the spool until one does."""
        self.spooled_at_stop = 0
        """Records left in the spool file at stop, for the next run to send."""
        self.accepted = 0
        self.written = 0
        """Exchanges stored."""
        self.flows_accepted = 0
        self.flows_written = 0
        self.tenures_accepted = 0
        self.tenures_written = 0
        """Changes to the container inventory queued, and stored."""
        self._tenures_refused = self._tenures_failed = self._tenures_at_close = 0
        self.batches = 0
        self.failed_batches = 0
        self.dropped_full = 0
        """Exchanges refused because the queue was full or the writer had stopped (the engine thread counts these)."""
        self.dropped_failed = 0
        """Exchanges of batches whose write failed (the writer's thread counts these)."""
        self.dropped_at_close = 0
        """Exchanges still queued or being written when close() gave up waiting."""
        self._flows_refused = self._flows_failed = self._flows_at_close = 0
        self._full = self._late = 0
        """Records (exchanges and flows) refused for a full queue, arriving after close, left at close."""
        self._failures: dict[str, list[int]] = {}
        """Kind of error -> [batches, records] that failed with it."""
        self._reported: dict[str, float] = {}
        """Kind of error -> when on_error last heard of it."""
        self._streak = [0, 0]
        """Batches and records failed since the last write that worked."""
        self._streak_reported = False
        self._close_timeout = 0.0
        self._lock = threading.Lock()
        """Between the writer's thread and close(): what is being written, and the counts of failures."""
        self._in_flight = _NONE_IN_FLIGHT
        """Exchanges, flows and tenures of the batch being written."""
        self._abandoned = False
        """close() gave up on the writer's thread: what it held is counted, whatever it does later."""
        self._pending: deque[Record] = deque()
        self._status: MonitorStatus | None = None
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
            if self._closing:
                self._late += 1
            else:
                self._full += 1
            if is_flow:
                self._flows_refused += 1
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

    def accept_tenure(self, tenure: ContainerTenure) -> None:
        """Queue a change to the container inventory (on the Docker watcher's thread); never blocks.  Written with
        the next batch, within a flush interval."""
        self.tenures_accepted += 1
        if self._closing or len(self._pending) >= self.max_pending + TENURE_HEADROOM:
            if self._closing:
                self._late += 1
            else:
                self._full += 1
            self._tenures_refused += 1
            return
        self._pending.append(tenure)  # type: ignore[arg-type]

    def report(self, status: MonitorStatus) -> None:
        """Publish the monitor's status (for `eyes-devine health`); never blocks.  The writer's thread writes
        the latest one within a flush interval, so a status that stops changing in the database means this
        thread, its disk or the process stopped."""
        self._status = status

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
        self._close_timeout = timeout
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._wake_up)
            except RuntimeError:
                pass
        self._thread.join(timeout)
        with self._lock:
            exchanges, flows, tenures = self._in_flight if self._thread.is_alive() else _NONE_IN_FLIGHT
            if self._thread.is_alive():  # and what waited for an unreachable database, in memory
                spool = self._spool
                flows += spool.flow_records
                tenures += spool.tenure_records
                exchanges += spool.records - spool.flow_records - spool.tenure_records
            self._abandoned = True
            left = list(self._pending)
            self._pending.clear()
        flows += sum(1 for record in left if type(record) is Flow)
        tenures += sum(1 for record in left if type(record) is ContainerTenure)
        exchanges += sum(1 for record in left if type(record) is Exchange)
        self._flows_at_close += flows
        self._tenures_at_close += tenures
        self.dropped_at_close += exchanges

    @property
    def dropped(self) -> int:
        """Exchanges not stored."""
        return self.dropped_full + self.dropped_failed + self.dropped_at_close + self._spool.overflowed[0]

    @property
    def flows_dropped(self) -> int:
        """Flow summaries not stored: refused, lost in a failed write, or left at close."""
        return self._flows_refused + self._flows_failed + self._flows_at_close + self._spool.overflowed[1]

    @property
    def tenures_dropped(self) -> int:
        """Changes to the container inventory not stored."""
        return self._tenures_refused + self._tenures_failed + self._tenures_at_close + self._spool.overflowed[2]

    @property
    def spool_path(self) -> Path | None:
        """The file batches wait in past what memory holds (``--spool``), if any."""
        return self._spool.path

    @property
    def pending(self) -> int:
        return len(self._pending) + self._spool.records

    def lag(self, now: float) -> tuple[int, float]:
        """Records waiting to be written, and how long ago the oldest of them was captured (0 when none waits)."""
        pending = self._pending
        try:
            oldest = pending[0]
        except IndexError:  # empty, or emptied by the writer's thread just now
            return 0, 0.0
        kind = type(oldest)
        captured = oldest.ts_last if kind is Flow else oldest.ts if kind is Exchange else \
            oldest.ended or oldest.started  # type: ignore[union-attr]
        return len(pending), max(0.0, now - captured)

    def counters(self) -> SinkCounters:
        return SinkCounters(self.accepted + self.flows_accepted + self.tenures_accepted,
                            self.written + self.flows_written + self.tenures_written,
                            self.dropped + self.flows_dropped + self.tenures_dropped)

    def losses(self) -> Mapping[str, int]:
        """Records (exchanges and flows) not stored, by reason; each kind of failed write with its batches."""
        with self._lock:
            failures = [(kind, batches, records) for kind, (batches, records) in self._failures.items()]
        reasons = {"queue full": self._full, "arrived after stop": self._late,
                   "spool full while the database was unreachable": sum(self._spool.overflowed)}
        for kind, batches, records in failures:
            reasons[f"in {batches:,} failed batch{'' if batches == 1 else 'es'}: {kind}"] = records
        reasons[f"not written within {self._close_timeout:g} s of stop"] = \
            self.dropped_at_close + self._flows_at_close + self._tenures_at_close
        return {reason: count for reason, count in reasons.items() if count}

    # -- the writer's thread ---------------------------------------------------------------

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        try:
            store = await open_database(str(self.path), self.keep, retain=self.retain, observer=self.observer)
        except Exception as error:  # one line for start() to raise; never a thread dying with start() waiting
            self._open_error = error if isinstance(error, StoreError) else StoreError(
                f"cannot open {display(str(self.path))}: {error_kind(error)}")
            self._opened.set()
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._opened.set()
        try:
            await self._write_batches(store)
        finally:
            await store.close()  # an open connection's thread would keep the process alive

    async def _write_batches(self, store: Store) -> None:
        assert self._wake is not None and self._loop is not None
        pending = self._pending
        clock = self._loop.time
        emptied_at = clock()
        written_status: MonitorStatus | None = None
        retry_at = clock() if self._spool.file_bytes() else None  # what an earlier run left is sent first
        retries = 0
        while True:
            # Everything queued before emptied_at is written; what came after waits one interval at most.
            timeout = emptied_at + self.flush_interval - clock()
            if retry_at is not None:
                timeout = min(timeout, retry_at - clock())
            if len(pending) < self.batch_size and not self._closing and timeout > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except TimeoutError:
                    pass
            self._wake.clear()
            self._wake_requested = False
            if retry_at is not None and (clock() >= retry_at or self._closing):
                if await self._drain(store):
                    retry_at, retries = None, 0
                else:
                    retries += 1
                    retry_at = clock() + min(RETRY_SECONDS, 0.25 * 2 ** retries)
            while True:
                emptied_at = clock()
                closing = self._closing  # read before the status: the run's last status comes before close()
                with self._lock:  # close() sees each record either queued or in flight
                    batch = [pending.popleft() for _ in range(min(self.batch_size, len(pending)))]
                    exchanges = [record for record in batch if type(record) is Exchange]
                    flows = [record for record in batch if type(record) is Flow]
                    tenures = [record for record in batch if type(record) is ContainerTenure]
                    self._in_flight = (len(exchanges), len(flows), len(tenures))
                if batch:
                    kept = Batch((self._run_key, self._seq), exchanges, flows, tenures)  # type: ignore[arg-type]
                    self._seq += len(batch)
                    if self._unreachable:
                        self._keep(kept)
                    elif not await self._write(store, kept) and retry_at is None:
                        retry_at, retries = clock() + 0.25, 0
                status = self._status  # between batches too: a writer that is behind is still alive
                if status is not None and status is not written_status and not self._unreachable:
                    written_status = status
                    try:
                        await store.write_status(status)
                    except Exception:  # the batches report a failing disk; the row going stale tells health
                        pass
                if len(batch) < self.batch_size:
                    break
            if closing and not pending:
                if self._unreachable:
                    self._stop_unreachable()
                return

    async def _drain(self, store: Store) -> bool:
        """Send what waits in the spool, the file's first; True when all of it is stored."""
        if self._spool.file_bytes():
            for index, batch in self._spool.file_batches():
                if not await self._write(store, batch, from_spool=True):
                    self._spool.keep_file_from(index)  # what was sent is not sent, nor counted, again
                    return False
            self._spool.clear_file()
        while self._spool.batches:
            with self._lock:  # close() sees it in the spool or in flight
                batch = self._spool.pop()
                self._in_flight = (len(batch.exchanges), len(batch.flows), len(batch.tenures))
            if not await self._write(store, batch, from_spool=True):
                with self._lock:
                    self._spool.push_front(batch)
                    self._in_flight = _NONE_IN_FLIGHT
                return False
        return True

    def _keep(self, batch: Batch) -> None:
        """Spool ``batch``; the first time the spool overflows, say so (the losses count every record)."""
        overflowed = sum(self._spool.overflowed)
        with self._lock:  # close() sees each record in flight or in the spool
            self._spool.add(batch)
            self._in_flight = _NONE_IN_FLIGHT
        if not overflowed and sum(self._spool.overflowed) and self.on_error is not None:
            self.on_error("the spool is full while the database is unreachable: its oldest batches are dropped"
                          + ("" if self._spool.path else "; give --spool FILE to keep more"))

    def _stop_unreachable(self) -> None:
        """At stop, with the database still out of reach: the spool's batches go to its file, else are lost."""
        while self._spool.batches:
            batch = self._spool.pop()
            if not self._spool.to_file(batch):
                self._failed("database unreachable at stop", len(batch.exchanges), len(batch.flows),
                             len(batch.tenures))
        self.spooled_at_stop = self._spool.file_records()  # this run's and any earlier one's

    async def _write(self, store: Store, batch: Batch, from_spool: bool = False) -> bool:
        """Store one batch; False when the database could not be reached (the batch is then in the spool)."""
        exchanges, flows = batch.exchanges, batch.flows
        started = time.perf_counter()
        try:
            await store.write(exchanges, flows, batch.key, tenures=batch.tenures)
        except StoreUnavailable as error:  # kept, not lost: sent again once the database answers
            if not from_spool:  # (a batch from the spool goes back where it was: see _drain)
                self._keep(batch)
            if not self._unreachable:
                self._unreachable = True
                if self.on_unreachable is not None:
                    self.on_unreachable(error_kind(error))
            return False
        except Exception as error:  # a full disk must not stop capture: count, report once, go on
            self._failed(error_kind(error), len(exchanges), len(flows), len(batch.tenures))
            return True
        if self._unreachable:
            self._unreachable = False
            if self.on_reachable is not None:
                self.on_reachable()
        with self._lock:
            self._in_flight = _NONE_IN_FLIGHT
            if self._abandoned:
                return
            self.written += len(exchanges)
            self.flows_written += len(flows)
            self.tenures_written += len(batch.tenures)
            self.batches += 1
        failed_batches, failed_records = self._streak
        if failed_batches:
            if self._streak_reported and self.on_recovered is not None:
                self.on_recovered(failed_batches, failed_records)
            self._streak, self._streak_reported = [0, 0], False
        if self.on_batch is not None:
            self.on_batch(len(exchanges), len(flows), time.perf_counter() - started)
        if self.on_alerts is not None:
            alerted = sum(1 for x in exchanges if x.alerts)
            if alerted:
                self.on_alerts(alerted)
        return True

    def _failed(self, kind: str, exchanges: int, flows: int, tenures: int = 0) -> None:
        """Count a batch that was not stored, and tell on_error if this kind is news (see the module docstring)."""
        with self._lock:
            self._in_flight = _NONE_IN_FLIGHT
            if self._abandoned:
                return
            if kind not in self._failures and len(self._failures) >= MAX_ERROR_KINDS:
                kind = "other errors"
            tally = self._failures.setdefault(kind, [0, 0])
            tally[0] += 1
            tally[1] += exchanges + flows + tenures
            self.failed_batches += 1
            self.dropped_failed += exchanges
            self._flows_failed += flows
            self._tenures_failed += tenures
        new_streak = not self._streak[0]
        self._streak[0] += 1
        self._streak[1] += exchanges + flows + tenures
        now = time.monotonic()
        last = self._reported.get(kind)
        if last is None or (new_streak and now - last >= ERROR_REPEAT_SECONDS):
            self._reported[kind] = now
            self._streak_reported = True
            if self.on_error is not None:
                self.on_error(kind)
