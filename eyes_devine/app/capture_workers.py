"""`run --workers N` and capturing `watch --workers N`: live capture and the engine spread over N processes.

Each worker is a process of its own with a :class:`~eyes_devine.app.pipeline.LivePipeline`
(sniffers, queue, engine), whose socket on each interface joins that
interface's ``PACKET_FANOUT`` group: the kernel hands each packet to one
worker by a symmetric flow hash, so a connection, both ways and on every
interface it crosses (a bridge and a veth), is whole in one worker.  Workers
send their records in batches to this process, which attributes, annotates
and stores them (:class:`~eyes_devine.app.pipeline.Stages`, on one receiving
thread) and serves the views.  Counters (kernel drops, gaps, ...) are summed
over the workers, and a restarted worker's are kept.

A worker that dies is restarted and the log says so.  What it had not sent is
lost, and since the kernel gives a leaving member's place in a fanout group to
another, connections in flight then move between workers (each is picked up
mid-stream by its new worker, as after a capture gap).

Each worker is a fresh interpreter (never a fork of this multi-threaded
process) started with one end of a socket pair, over which its spec comes and
its records go; no helper process of multiprocessing's stays behind, as root
or otherwise.  Workers open their sockets while this process still may, and
drop to ``--user`` themselves; a worker started again after the drop cannot
open its sockets, and says so.  Linux only (PACKET_FANOUT).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from types import MappingProxyType
from typing import Any

from eyes_devine.adapters.capture import CaptureError
from eyes_devine.app.pipeline import LivePipeline, Stages, http_limits
from eyes_devine.config import Settings
from eyes_devine.records import Exchange, Flow
from eyes_devine.sinks import NO_LOSSES, Record, SinkCounters
from eyes_devine.snapshots import EngineSnapshot

STATUS_SECONDS = 0.5
"""How often a worker reports its counters and its sniffers."""
BATCH_SECONDS = 0.05
"""Longest a record waits in a worker before it is sent."""
HOLD_SECONDS = 0.3
"""How long after its completion a record waits in this process for the other workers' earlier ones."""
MAX_WAITING = 100_000
"""Records a worker holds for this process; past it they are dropped and counted as queue drops."""
RESTART_SECONDS = 5.0
MAX_RESTART_SECONDS = 300.0
START_SECONDS = 60.0
"""How long a worker may take to open its sockets."""


def default_workers() -> int:
    """Half the cores the process may use (the other half is the traffic's), at most 8; one on two cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(8, cores // 2))


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs, picklable (it crosses into a fresh interpreter)."""

    index: int
    settings: Settings
    interfaces: tuple[str, ...]
    bpf: str
    ports: tuple[int, ...]
    flows: bool
    active_flows: int
    fanout: Mapping[str, int]
    account: Any = None


class _Batches:
    """A worker's sink: records wait here, bounded, until the worker's loop sends them."""

    name = "workers"

    def __init__(self) -> None:
        self.waiting: deque[Record] = deque()
        self.dropped = 0

    def accept(self, record: Record) -> None:
        if len(self.waiting) >= MAX_WAITING:
            self.dropped += 1
        else:
            self.waiting.append(record)

    def take(self) -> list[Record]:
        waiting, taken = self.waiting, []
        for _ in range(len(waiting)):  # the engine thread may append meanwhile: take what was there
            taken.append(waiting.popleft())
        return taken

    def flush(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float) -> None:
        """The worker's loop sends what is left."""

    def counters(self) -> SinkCounters:
        return SinkCounters(0, 0, self.dropped)

    def losses(self) -> Mapping[str, int]:
        return NO_LOSSES


def worker_main(fd: int) -> None:
    """A worker process's start: its spec comes first over the socket it was given (``fd``)."""
    conn = Connection(fd)
    _worker(conn, conn.recv())


class _Process:
    """A worker's process, as the pool asks about it."""

    def __init__(self, process: subprocess.Popen) -> None:
        self._process = process

    def is_alive(self) -> bool:
        return self._process.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self._process.poll()

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self._process.kill()


def _worker(conn: Connection, spec: WorkerSpec) -> None:
    """A worker process: capture its share, send records and status until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us in order
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    batches = _Batches()
    pipeline = LivePipeline(spec.interfaces, spec.bpf, spec.ports, Stages([batches]), flows=spec.flows,
                            active_flows=spec.active_flows, http_limits=http_limits(spec.settings),
                            fanout=spec.fanout)
    after_open = None
    if spec.account is not None:
        from eyes_devine.adapters.host import drop_privileges

        def after_open() -> None:
            drop_privileges(spec.account)
    try:
        pipeline.start(after_open)
    except Exception as error:  # noqa: BLE001 - CaptureError, PrivilegeDropError: said by the parent in one line
        conn.send(("error", str(error)))
        return
    conn.send(("ready",))
    last_status = 0.0
    try:
        while True:
            if conn.poll(BATCH_SECONDS):
                message = conn.recv()
                if message[0] == "stop":
                    break
                if message[0] == "ports":
                    pipeline.set_ports(message[1], message[2])
            records = batches.take()
            if records:
                conn.send(("records", records))
            if time.monotonic() - last_status >= STATUS_SECONDS:
                last_status = time.monotonic()
                conn.send(_status(pipeline, batches, pipeline.check()))
    except (EOFError, OSError):
        pipeline.capture.stop()  # the parent is gone: nobody would take the records
        return
    pipeline.stop()
    records = batches.take()
    if records:
        conn.send(("records", records))
    conn.send(_status(pipeline, batches, []))
    conn.send(("stopped",))


def _status(pipeline: LivePipeline, batches: _Batches, events: list[str]) -> tuple:
    snapshot = pipeline.snapshot
    return ("status", dict(snapshot.counters), snapshot.flows_open, snapshot.flow_summaries, snapshot.flow_evictions,
            snapshot.active_flows, pipeline.capture.kernel_drops(), pipeline.queue_drops + batches.dropped,
            {name: status.running for name, status in pipeline.capture.status.items()}, events)


@dataclass
class _Status:
    counters: dict[str, object] = field(default_factory=dict)
    flows_open: int = 0
    flow_summaries: int = 0
    flow_evictions: int = 0
    active_flows: tuple[Flow, ...] = ()
    kernel_drops: int = 0
    queue_drops: int = 0
    sniffers: dict[str, bool] = field(default_factory=dict)


@dataclass
class _Worker:
    spec: WorkerSpec
    process: Any
    conn: Connection
    started: float
    state: str = "starting"
    """starting, ready, failed, stopped."""
    error: str | None = None
    status: _Status = field(default_factory=_Status)


@dataclass
class SnifferState:
    """An interface's sniffers, over the workers: running while every worker's is."""

    running: bool


class PoolCapture:
    """What the monitor asks of the capture (filter, sniffers, kernel drops), answered over the workers."""

    def __init__(self, pool: WorkerPool, bpf: str) -> None:
        self._pool = pool
        self.bpf = bpf

    @property
    def status(self) -> Mapping[str, SnifferState]:
        return self._pool.sniffers()

    def kernel_drops(self) -> int:
        return self._pool.total("kernel_drops")


def _fanout_groups(interfaces: Sequence[str]) -> dict[str, int]:
    """A PACKET_FANOUT group id per interface, unlikely to be another program's (ids are per network namespace)."""
    base = random.randrange(1, 0xFFFF - len(interfaces))
    return {name: base + offset for offset, name in enumerate(interfaces)}


class WorkerPool:
    """``count`` capture workers behind the interface of one :class:`LivePipeline` (see the module doc)."""

    def __init__(self, settings: Settings, interfaces: tuple[str, ...], bpf: str, ports: tuple[int, ...],
                 stages: Stages, count: int, flows: bool = False, active_flows: int = 0,
                 account: Any = None) -> None:
        self._stages = stages
        self._active_flows = active_flows
        fanout = _fanout_groups(interfaces)  # one group per interface, every worker in it
        self._specs = [WorkerSpec(index, settings, interfaces, bpf, ports, flows, active_flows, fanout, account)
                       for index in range(count)]
        self._workers: list[_Worker] = []
        self._retired = _Status()
        """What workers that died had counted: counters never go back."""
        self._events: list[str] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._receiver = threading.Thread(target=self._receive, name="eyes-devine-workers", daemon=True)
        self.capture = PoolCapture(self, bpf)
        self._last_restart: dict[int, float] = {}
        self._failures: dict[int, int] = {}
        """Restarts in a row per worker that did not get back to capturing."""

    # -- the LivePipeline interface -------------------------------------------------------

    def start(self, after_open: Callable[[], None] | None = None) -> None:
        """Start the workers one after the other, each once the last has opened its sockets (raises CaptureError
        with a worker's reason), then call ``after_open`` and start receiving.

        One at a time, so the workers join every interface's fanout group in the same order: the kernel picks a
        member by its place in the group, and a flow crossing two interfaces (two bridges, a bridge and a veth)
        then lands in the same worker on both.
        """
        deadline = time.monotonic() + START_SECONDS * len(self._specs)
        for spec in self._specs:
            worker = self._spawn(spec)
            self._workers.append(worker)
            remaining = max(0.0, deadline - time.monotonic())
            if not worker.conn.poll(remaining):
                self._abort()
                raise CaptureError(f"capture worker {worker.spec.index} did not start in {START_SECONDS:.0f} s")
            try:
                message = worker.conn.recv()
            except EOFError:
                self._abort()
                raise CaptureError(f"capture worker {worker.spec.index} ended as it started "
                                   f"(exit {worker.process.exitcode})") from None
            if message[0] == "error":
                self._abort()
                raise CaptureError(message[1])
            worker.state = "ready"
        if after_open is not None:
            try:
                after_open()
            except BaseException:
                self._abort()
                raise
        self._receiver.start()

    @property
    def queue_drops(self) -> int:
        return self.total("queue_drops")

    @property
    def snapshot(self) -> EngineSnapshot:
        with self._lock:
            statuses = [self._retired, *(worker.status for worker in self._workers)]
        counters: dict[str, object] = {}
        for status in statuses:
            for name, value in status.counters.items():
                if isinstance(value, list):
                    merged = counters.setdefault(name, [])
                    merged.extend(item for item in value if item not in merged)  # type: ignore[union-attr]
                elif isinstance(value, int):
                    counters[name] = counters.get(name, 0) + value  # type: ignore[operator]
        active = sorted((flow for status in statuses[1:] for flow in status.active_flows),
                        key=lambda flow: flow.ts_last, reverse=True)[:self._active_flows]
        return EngineSnapshot(
            time.time(), MappingProxyType(counters), sum(status.flows_open for status in statuses[1:]),
            sum(status.flow_summaries for status in statuses), sum(status.flow_evictions for status in statuses),
            tuple(self._stages.attribute(flow) for flow in active),  # type: ignore[misc]
            tuple(int(status.counters.get("packets", 0)) for status in statuses[1:]),  # type: ignore[call-overload]
        )

    def check(self) -> list[str]:
        """Restart workers that died; returns a line per change, and the workers' own sniffer lines.

        A worker is replaced once it has exited and everything it sent was received (the receiver saw the end
        of its pipe).  A worker that fails again waits longer each time (:data:`RESTART_SECONDS`, doubling to
        :data:`MAX_RESTART_SECONDS`), and is said again only when it comes back.
        """
        with self._lock:
            events, self._events = self._events, []
        for position, worker in enumerate(list(self._workers)):
            if self._stopping or worker.process.is_alive() or worker.state != "failed":
                continue
            index = worker.spec.index
            failures = self._failures.get(index, 0)
            if time.monotonic() - self._last_restart.get(index, 0.0) < min(
                    MAX_RESTART_SECONDS, RESTART_SECONDS * 2 ** max(0, failures - 1)):
                continue
            self._last_restart[index] = time.monotonic()
            with self._lock:
                replacement = self._spawn(self._specs[index])  # the ports and filter in force now
                self._retire(worker.status)
                self._workers[position] = replacement
            self._failures[index] = failures + 1
            if failures == 0:
                reason = worker.error or f"exit {worker.process.exitcode}"
                events.append(f"capture worker {index} ended ({reason}): what it had not sent is lost, and the "
                              "connections in flight move between workers; started again")
        for worker in self._workers:
            if worker.state == "ready" and self._failures.pop(worker.spec.index, 0) > 1:
                events.append(f"capture worker {worker.spec.index} is capturing again")
        return events

    def set_ports(self, ports: tuple[int, ...], bpf: str | None) -> None:
        with self._lock:  # a worker started meanwhile gets the new ports in its spec, or this message
            if bpf is not None:
                self.capture.bpf = bpf
            self._specs = [WorkerSpec(spec.index, spec.settings, spec.interfaces, bpf or spec.bpf, ports,
                                      spec.flows, spec.active_flows, spec.fanout, spec.account)
                           for spec in self._specs]
            for worker in list(self._workers):
                with contextlib.suppress(OSError, ValueError):
                    worker.conn.send(("ports", ports, bpf))

    def stop(self) -> None:
        """Every worker stops capturing, ends its connections and sends what it has; then they exit."""
        self._stopping = True
        for worker in list(self._workers):
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(("stop",))
        if self._receiver.is_alive():
            self._receiver.join(START_SECONDS)
        for worker in self._workers:
            worker.process.join(10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()

    # -- inside -----------------------------------------------------------------------------

    def total(self, name: str) -> int:
        with self._lock:
            return getattr(self._retired, name) + sum(getattr(worker.status, name) for worker in self._workers)

    def sniffers(self) -> Mapping[str, SnifferState]:
        with self._lock:
            workers = list(self._workers)
        names = self._specs[0].interfaces
        return {name: SnifferState(all(worker.status.sniffers.get(name, False) for worker in workers))
                for name in names}

    def _spawn(self, spec: WorkerSpec) -> _Worker:
        ours, theirs = socket.socketpair()
        process = subprocess.Popen(
            [sys.executable, "-c", f"from {__name__} import worker_main; worker_main({theirs.fileno()})"],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        theirs.close()
        conn = Connection(ours.detach())
        conn.send(spec)
        return _Worker(spec, _Process(process), conn, time.monotonic())

    def _abort(self) -> None:
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join()

    def _retire(self, status: _Status) -> None:
        retired = self._retired
        for name, value in status.counters.items():
            if isinstance(value, int):
                retired.counters[name] = retired.counters.get(name, 0) + value  # type: ignore[operator]
        retired.flow_summaries += status.flow_summaries
        retired.flow_evictions += status.flow_evictions
        retired.kernel_drops += status.kernel_drops
        retired.queue_drops += status.queue_drops

    def _receive(self) -> None:
        """The one thread that runs the stages: records from every worker, put back in the order they completed.

        Each worker sends what completed in its share every :data:`BATCH_SECONDS`, so two workers' records
        arrive interleaved out of order; the stages (the burst rule's window, the store's newest-first bound)
        expect them in the order one engine would have given them.  Records wait :data:`HOLD_SECONDS` past their
        completion and go on in completion order.
        """
        waiting: list[tuple[float, int, Record]] = []
        arrival = itertools.count()
        while True:
            with self._lock:
                live = {worker.conn: worker for worker in self._workers if worker.state in ("starting", "ready")}
            self._release(waiting, time.time() - HOLD_SECONDS)
            if not live:
                if self._stopping:
                    self._release(waiting, float("inf"))
                    return
                time.sleep(0.2)  # every worker is down: check() starts them again
                continue
            for conn in wait(list(live), timeout=0.1):
                worker = live[conn]  # type: ignore[index]
                try:
                    message = conn.recv()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    worker.state = "stopped" if self._stopping else "failed"
                    continue
                kind = message[0]
                if kind == "records":
                    for record in message[1]:
                        heapq.heappush(waiting, (_completed(record), next(arrival), record))
                elif kind == "status":
                    counters, flows_open, summaries, evictions, active, kernel, queued, sniffers, events = message[1:]
                    with self._lock:
                        worker.status = _Status(counters, flows_open, summaries, evictions, active, kernel, queued,
                                                sniffers)
                        self._events.extend(events)
                elif kind == "ready":
                    worker.state = "ready"
                elif kind == "error":
                    worker.state, worker.error = "failed", message[1]
                elif kind == "stopped":
                    worker.state = "stopped"

    def _release(self, waiting: list[tuple[float, int, Record]], until: float) -> None:
        """The records that completed before ``until``, oldest first, through the stages."""
        exchange, flow = self._stages.exchange, self._stages.flow
        while waiting and waiting[0][0] <= until:
            record = heapq.heappop(waiting)[2]
            if type(record) is Exchange:
                exchange(record)
            else:
                flow(record)  # type: ignore[arg-type]


def _completed(record: Record) -> float:
    """When a record was complete, in capture time: an exchange's last response byte, a flow's last packet."""
    if type(record) is Exchange:
        return record.ts + (record.duration_ms or record.latency_ms or 0.0) / 1000.0
    return record.ts_last  # type: ignore[union-attr]
