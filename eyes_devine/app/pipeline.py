"""The only module that knows the order of the stages: source → engine → attribution → annotation → sinks.

A capture file is read on the caller's thread.  Live capture runs one sniffer
thread per interface; they hand raw frames to a bounded queue drained by a
single engine thread, because the core keeps per-connection state that must
see each connection's packets in order and from one thread.  When the queue is
full the frame is dropped and counted rather than letting the sniffers block
(the kernel would then drop silently instead).  Records leave the engine
thread through :class:`Stages` into the sinks, which never block it; once per
tick the engine thread also publishes an :class:`~eyes_devine.snapshots.EngineSnapshot`
for the log and the views, which never read engine state themselves.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from eyes_devine.adapters.capture import LiveCapture
from eyes_devine.adapters.pcapfile import CaptureFile, CaptureFileError
from eyes_devine.app.keylog import FollowedKeyLog
from eyes_devine.config import Settings, bpf_filter, port_filter
from eyes_devine.core.engine import Engine
from eyes_devine.core.flows import FlowTracker
from eyes_devine.core.http.framing import HttpLimits
from eyes_devine.enrich.annotator import Annotator
from eyes_devine.enrich.attribution import ContainerMap
from eyes_devine.enrich.inventory import InventoryRecorder, Tee
from eyes_devine.enrich.rule_data import header_rules, rule_book
from eyes_devine.records import ContainerInfo, EngineCounters, Exchange, Flow
from eyes_devine.sinks import Sink
from eyes_devine.snapshots import EngineSnapshot, MonitorSnapshot

if TYPE_CHECKING:
    from eyes_devine.app.capture_workers import WorkerPool

_new = tuple.__new__
_OBSERVER_AT = {Exchange: Exchange._fields.index("observer"), Flow: Flow._fields.index("observer")}

PROGRESS_EVERY = 8192
"""Frames between progress callbacks: often enough for a smooth bar, rare enough to cost nothing."""
QUEUE_FRAMES = 200_000
"""Frames held between the sniffers and the engine: about a second of a busy bridge."""
TICK_SECONDS = 0.5
"""Wall-clock seconds between idle sweeps and snapshots on the engine thread."""


def http_limits(settings: Settings) -> HttpLimits:
    """How HTTP is parsed: the head bound, the rule book's header signatures, judged while parsing, and the key
    log TLS is decrypted with."""
    keys = None if settings.tls_keylog is None else FollowedKeyLog(settings.tls_keylog)
    return HttpLimits(settings.max_header_bytes, header_rules(rule_book(settings.rules_path)), keys)


class Stages:
    """What happens to every record after the core, in order: attribution (live capture), annotation, the sinks.

    Runs on the engine thread (or the reading loop).  The container map is
    changed by the Docker watcher's thread, so lookups take ``lock``.
    :meth:`exchange` is made once for the stages present: `read` calls it for
    every request.
    """

    def __init__(self, sinks: Sequence[Sink], annotator: Annotator | None = None,
                 containers: ContainerMap | None = None, lock: threading.Lock | None = None,
                 observer: str | None = None) -> None:
        self.sinks = tuple(sinks)
        self._observer = observer
        """The capturing host's name, stamped on every record (live capture); None when reading a file."""
        self._accepts = tuple(sink.accept for sink in self.sinks)
        self._annotator = annotator
        self._containers = containers
        self._lock = lock or threading.Lock()
        self.exchange: Callable[[Exchange], None] = self._exchange_stages()

    def attribute(self, record: Exchange | Flow) -> Exchange | Flow:
        if self._observer is not None:  # slices and one tuple: a third of _replace's cost
            at = _OBSERVER_AT[type(record)]
            record = _new(type(record), (*record[:at], self._observer, *record[at + 1:]))
        if self._containers is None:
            return record
        with self._lock:
            return self._containers.attribute(record)

    def _exchange_stages(self) -> Callable[[Exchange], None]:
        annotate, accepts = self._annotator, self._accepts
        if self._containers is None and self._observer is None and annotate is not None and len(accepts) == 1:
            [accept] = accepts

            def annotated(x: Exchange) -> None:
                accept(annotate(x))

            return annotated

        def every_stage(x: Exchange) -> None:
            x = self.attribute(x)  # type: ignore[assignment]
            if annotate is not None:
                x = annotate(x)
            for accept in accepts:
                accept(x)

        return every_stage

    def flow(self, flow: Flow) -> None:
        flow = self.attribute(flow)  # type: ignore[assignment]
        if self._annotator is not None:
            flow = self._annotator.annotate_flow(flow)
        for accept in self._accepts:
            accept(flow)


@dataclass(frozen=True)
class FileResult:
    counters: EngineCounters
    frames: int
    seconds: float
    error: CaptureFileError | None
    """Set when the file was damaged; what came before was still processed."""
    flow_summaries: int | None
    """Flows summarised (when asked for), else None."""


def read_capture(path: str, ports: tuple[int, ...], stages: Stages,
                 progress: Callable[[int, int], None] | None = None, flows: bool = False,
                 http_limits: HttpLimits | None = None, shard: tuple[int, int] | None = None) -> FileResult:
    """Run a capture file through the engine into ``stages``; with ``flows`` every TCP, UDP and ICMP flow is
    summarised too; with ``shard`` (index, count) only that share of the connections (a worker's).  Raises
    CaptureFileError if the file cannot be opened at all, UnsupportedLinkType if its frames are of a kind we
    cannot decode."""
    started = time.perf_counter()
    engine = Engine(stages.exchange, ports, only_server_ports=True, http_limits=http_limits,
                    tracker=FlowTracker(stages.flow) if flows else None, shard=shard)
    interface = os.path.basename(path)
    current_linktype = None
    feed = None
    frames = 0
    error = None
    with CaptureFile(path) as capture:
        try:
            for linktype, ts, frame in capture:
                if linktype != current_linktype:  # once per file, except pcapng with mixed interfaces
                    feed = engine.feeder(linktype, interface)
                    current_linktype = linktype
                feed(ts, frame)
                frames += 1
                if progress is not None and not frames % PROGRESS_EVERY:
                    progress(capture.position(), capture.size)
        except CaptureFileError as damaged:
            error = damaged
        if progress is not None:
            progress(capture.size, capture.size)
    engine.finish()
    summaries = engine.tracker.emitted if engine.tracker is not None else None
    return FileResult(engine.counters, frames, time.perf_counter() - started, error, summaries)


class LivePipeline:
    """Live capture on ``interfaces`` through one engine thread into ``stages``.

    ``flows`` (whose BPF filter lets every port through) also summarises every
    flow, and HTTP is parsed on ``ports`` only.  ``active_flows`` is how many of
    the open flows each snapshot carries, for a live view.
    """

    def __init__(self, interfaces: tuple[str, ...], bpf: str, ports: tuple[int, ...], stages: Stages,
                 flows: bool = False, active_flows: int = 0, http_limits: HttpLimits | None = None,
                 fanout: Mapping[str, int] | None = None) -> None:
        """``fanout``: the PACKET_FANOUT group of each interface, when this pipeline is one of several workers."""
        self.engine = Engine(stages.exchange, ports, http_limits=http_limits,
                             tracker=FlowTracker(stages.flow) if flows else None)
        self._stages = stages
        self._active_flows = active_flows
        # SimpleQueue is the cheapest thread hand-off in CPython; its bound is enforced by hand.
        self._frames: queue.SimpleQueue = queue.SimpleQueue()
        self.queue_drops = 0
        self.capture = LiveCapture(interfaces, bpf, self._enqueue, fanout)
        self.snapshot = EngineSnapshot(time.time())
        """The latest picture of the engine, replaced (never changed) once per tick by the engine thread."""
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="eyes-devine-engine", daemon=True)

    def _enqueue(self, linktype: int, ts: float, frame: bytes, interface: str) -> None:
        if self._frames.qsize() >= QUEUE_FRAMES:
            self.queue_drops += 1
        else:
            self._frames.put((linktype, ts, frame, interface))

    def start(self, after_open: Callable[[], None] | None = None) -> None:
        """Open every interface (raises CaptureError), call ``after_open``, then start the engine thread.

        ``after_open`` is where privileges are dropped: the sockets are open and
        no packet has been parsed yet.
        """
        self.capture.start()
        if after_open is not None:
            try:
                after_open()
            except BaseException:
                self.capture.stop()
                raise
        self._thread.start()

    def _drain(self) -> None:
        get = self._frames.get
        feed = self.engine.feed
        clock = time.monotonic
        next_tick = clock() + TICK_SECONDS
        count = 0
        while True:
            try:
                item = get(timeout=TICK_SECONDS)
            except queue.Empty:
                item = ()
            if item is None:
                break
            if item:
                feed(*item)
                count += 1
                if count & 255:
                    continue
            if clock() >= next_tick:
                next_tick = clock() + TICK_SECONDS
                self._tick()
            elif not item and self._stopping.is_set():
                break

    def _tick(self) -> None:
        """Time passes for idle connections, and the views get a fresh picture."""
        engine = self.engine
        engine.tick(time.time())
        tracker = engine.tracker
        active: tuple[Flow, ...] = ()
        if tracker is not None and self._active_flows:
            active = tuple(self._stages.attribute(flow) for flow in tracker.active(self._active_flows))
        self.snapshot = EngineSnapshot(
            time.time(), MappingProxyType(engine.counters.snapshot()),
            len(tracker) if tracker is not None else 0,
            tracker.emitted if tracker is not None else 0,
            tracker.evicted if tracker is not None else 0,
            active,  # type: ignore[arg-type]
        )

    def check(self) -> list[str]:
        """Sniffer health: a line per interface that stopped or came back."""
        return self.capture.check()

    def set_ports(self, ports: tuple[int, ...], bpf: str | None) -> None:
        """Capture another set of HTTP ports from now on (BPF in the kernel unless ``bpf`` is None, server side
        in the flow table)."""
        self.engine.set_server_ports(ports)
        if bpf is not None:
            self.capture.set_filter(bpf)

    def stop(self) -> None:
        """Stop capturing, process every frame already queued, then end every connection."""
        self.capture.stop()
        self._stopping.set()
        self._frames.put(None)
        self._thread.join()
        self.engine.finish()
        self._tick()


def capture_workers(asked: int | None, log: Callable[[str], None]) -> int:
    """How many capture workers: as asked (``--workers``), else from the cores; one where PACKET_FANOUT does not
    exist (not Linux), which the log says when more were asked."""
    from eyes_devine.app.capture_workers import default_workers

    count = asked if asked is not None else default_workers()
    if count > 1 and not sys.platform.startswith("linux"):
        if asked is not None:
            log(f"--workers {asked}: capture workers share interfaces with Linux's PACKET_FANOUT; one here")
        return 1
    return count


class Monitor:
    """Live capture with Docker attribution: what `run` and `watch` drive.

    Records leave the engine thread attributed to the containers at both ends,
    as the containers were at the time of each, then annotated, then to the
    sinks.  The Docker watcher changes the container map on its own thread; one
    lock serialises those changes with lookups.  With port following on, every
    port a container exposes or publishes joins the capture filter as the
    container starts.
    """

    def __init__(self, settings: Settings, interfaces: tuple[str, ...], sinks: Sequence[Sink],
                 log: Callable[[str], None], annotator: Annotator | None = None,
                 host_addresses: tuple[str, ...] | None = None, active_flows: int = 0,
                 inventory: InventoryRecorder | None = None, account: object = None) -> None:
        """``inventory`` hears every change to the container map too, to keep it in the database; ``account``
        is the --user capture workers become once their sockets are open."""
        self.settings = settings
        if host_addresses is None:
            from eyes_devine.adapters.host import read_host_interfaces

            host_addresses = tuple(a for interface in read_host_interfaces() for a in interface.addresses)
        self.containers = ContainerMap(host_addresses=host_addresses)
        self._lock = threading.Lock()
        self._ports = settings.ports
        self.stages = Stages(sinks, annotator, self.containers, self._lock, settings.observer)
        # The Docker SDK costs `read` startup time; only live capture needs it.
        from eyes_devine.adapters.docker import DockerWatcher

        self.workers = capture_workers(settings.workers, log)
        if self.workers > 1:
            from eyes_devine.app.capture_workers import WorkerPool

            self.live: LivePipeline | WorkerPool = WorkerPool(
                settings, interfaces, bpf_filter(settings), settings.ports, self.stages, self.workers,
                flows=settings.all_traffic, active_flows=active_flows, account=account)
        else:
            self.live = LivePipeline(interfaces, bpf_filter(settings), settings.ports, self.stages,
                                     flows=settings.all_traffic, active_flows=active_flows,
                                     http_limits=http_limits(settings))
        listener = self.containers if inventory is None else Tee(self.containers, inventory)
        self.docker = DockerWatcher(settings.docker_environment, self._update, listener, log,
                                    on_change=self._follow_ports)
        self._log = log

    def _update(self, change: Callable[[], None]) -> None:
        with self._lock:
            change()

    def _follow_ports(self) -> None:
        if not self.settings.follow_docker_ports or self.settings.capture_filter:
            return
        with self._lock:
            followed = self.containers.follow_ports()
        wanted = tuple(sorted(set(self.settings.ports) | followed))
        if wanted != self._ports:
            self._ports = wanted
            if self.settings.all_traffic:  # every port is captured already; only HTTP parsing follows
                self.live.set_ports(wanted, None)
                self._log(f"HTTP ports now: {','.join(map(str, wanted))}")
            else:
                self.live.set_ports(wanted, port_filter(wanted))
                self._log(f"capture filter now: {port_filter(wanted)}")

    @property
    def bpf(self) -> str:
        """The capture filter in force now (grows as containers publish ports)."""
        return self.live.capture.bpf

    @property
    def ports(self) -> tuple[int, ...]:
        """The HTTP ports captured now: the configured ones plus those containers expose or publish."""
        return self._ports

    def snapshot(self) -> MonitorSnapshot:
        """The engine's latest snapshot with the sniffers' and Docker's state, for the log and the views."""
        docker = self.docker.status
        with self._lock:
            running = self.containers.current()
        return MonitorSnapshot(
            engine=self.live.snapshot,
            kernel_drops=self.live.capture.kernel_drops(),
            queue_drops=self.live.queue_drops,
            docker_reachable=docker.reachable,
            docker=f"{len(running)} containers" if docker.reachable else (docker.error or "not connected"),
            containers=len(running),
            services=MappingProxyType({info.short_id: (info.compose_service, info.image) for info in running}),
            ports=self._ports,
            bpf=self.bpf,
            sniffers=MappingProxyType({name: status.running for name, status in self.live.capture.status.items()}),
            running=tuple(running),
        )

    def describe(self, short_id: str) -> ContainerInfo | None:
        """A running or recently removed container by short id (for the exporters' labels and resources)."""
        with self._lock:
            return self.containers.describe(short_id)

    def start(self, after_open: Callable[[], None] | None = None) -> None:
        """Start capturing (raises CaptureError), then follow Docker in the background."""
        self.live.start(after_open)
        self.docker.start()

    def check(self) -> list[str]:
        return self.live.check()

    def stop(self) -> None:
        self.docker.stop()
        self.live.stop()
