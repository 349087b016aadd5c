"""The only module that knows the order of the stages: source → Engine → sinks.

A capture file is read on the caller's thread.  Live capture runs one sniffer
thread per interface; they hand raw frames to a bounded queue drained by a
single engine thread, because the core keeps per-connection state that must
see each connection's packets in order and from one thread.  When the queue is
full the frame is dropped and counted rather than letting the sniffers block
(the kernel would then drop silently instead).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from eyes_devine.adapters.capture import LiveCapture
from eyes_devine.adapters.pcapfile import CaptureFile, CaptureFileError
from eyes_devine.config import Settings, bpf_filter, port_filter
from eyes_devine.core.engine import Engine
from eyes_devine.core.flows import FlowTracker
from eyes_devine.enrich.attribution import ContainerMap
from eyes_devine.records import Exchange, Flow

PROGRESS_EVERY = 8192
"""Frames between progress callbacks: often enough for a smooth bar, rare enough to cost nothing."""


@dataclass
class FileResult:
    engine: Engine
    frames: int
    seconds: float
    error: CaptureFileError | None
    """Set when the file was damaged; what came before was still processed."""


def read_capture(
    path: str,
    ports: tuple[int, ...],
    emit: Callable[[Exchange], None],
    progress: Callable[[int, int], None] | None = None,
    annotate: Callable[[Exchange], Exchange] | None = None,
    emit_flow: Callable[[Flow], None] | None = None,
) -> FileResult:
    """Run a capture file through the engine. Raises CaptureFileError if it cannot be opened at all,
    UnsupportedLinkType if its frames are of a kind we cannot decode.

    ``annotate`` (security rules, GeoIP, reputation) runs on each exchange before ``emit``; with
    ``emit_flow`` every TCP, UDP and ICMP flow is summarised to it too.
    """
    started = time.perf_counter()
    if annotate is not None:
        plain_emit = emit

        def emit(exchange: Exchange) -> None:
            plain_emit(annotate(exchange))

    engine = Engine(emit, ports, only_server_ports=True,
                    tracker=FlowTracker(emit_flow) if emit_flow is not None else None)
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
    return FileResult(engine, frames, time.perf_counter() - started, error)


QUEUE_FRAMES = 200_000
"""Frames held between the sniffers and the engine: about a second of a busy bridge."""


class LivePipeline:
    """Live capture on ``interfaces`` through one engine thread; exchanges go to ``emit`` on that thread."""

    def __init__(
        self,
        interfaces: tuple[str, ...],
        bpf: str,
        ports: tuple[int, ...],
        emit: Callable[[Exchange], None],
        tracker: FlowTracker | None = None,
    ) -> None:
        """With a flow ``tracker`` (whose BPF filter lets every port through), HTTP is parsed on ``ports`` only."""
        self.engine = Engine(emit, ports, tracker=tracker)
        # SimpleQueue is the cheapest thread hand-off in CPython; its bound is enforced by hand.
        self._frames: queue.SimpleQueue = queue.SimpleQueue()
        self.queue_drops = 0
        self.capture = LiveCapture(interfaces, bpf, self._enqueue)
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
        engine = self.engine
        while True:
            try:
                item = get(timeout=0.5)
            except queue.Empty:
                if self._stopping.is_set():
                    break
                engine.tick(time.time())
                continue
            if item is None:
                break
            engine.feed(*item)

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


class Monitor:
    """Live capture with Docker attribution: what `run` and `watch` drive.

    Exchanges leave the engine thread attributed to the containers at both ends,
    as the containers were at the time of the exchange.  The Docker watcher
    changes the container map on its own thread; one lock serialises those
    changes with lookups.  With port following on, every port a container
    exposes or publishes joins the capture filter as the container starts.
    """

    def __init__(
        self,
        settings: Settings,
        interfaces: tuple[str, ...],
        emit: Callable[[Exchange], None],
        log: Callable[[str], None],
        host_addresses: tuple[str, ...] | None = None,
        annotate: Callable[[Exchange], Exchange] | None = None,
        emit_flow: Callable[[Flow], None] | None = None,
        annotate_flow: Callable[[Flow], Flow] | None = None,
    ) -> None:
        """``annotate`` (security rules, GeoIP, reputation) runs on each exchange after attribution, and
        ``annotate_flow`` (GeoIP, reputation) on each flow summary.

        With ``settings.all_traffic``, flow summaries go to ``emit_flow``, attributed like exchanges.
        """
        self.settings = settings
        if host_addresses is None:
            from eyes_devine.adapters.host import read_host_interfaces

            host_addresses = tuple(a for interface in read_host_interfaces() for a in interface.addresses)
        self.containers = ContainerMap(host_addresses=host_addresses)
        self._lock = threading.Lock()
        self._ports = settings.ports
        attribute = self.containers.attribute
        lock = self._lock

        def attributed(exchange: Exchange) -> None:
            with lock:
                exchange = attribute(exchange)
            emit(annotate(exchange) if annotate is not None else exchange)

        from eyes_devine.adapters.docker import (
            DockerWatcher,  # the SDK costs `read` startup time; only live use needs it
        )

        tracker = None
        if settings.all_traffic:
            if emit_flow is None:
                raise ValueError("all_traffic needs emit_flow: its filter lets every port through")
            containers = self.containers
            flow_sink = emit_flow

            def attributed_flow(flow: Flow) -> None:
                with lock:
                    flow = containers.attribute(flow)
                flow_sink(annotate_flow(flow) if annotate_flow is not None else flow)

            tracker = FlowTracker(attributed_flow)
        self.live = LivePipeline(interfaces, bpf_filter(settings), settings.ports, attributed, tracker)
        self.docker = DockerWatcher(settings.docker_environment, self._update, self.containers, log,
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

    def describe(self, short_id: str) -> tuple[str | None, str | None]:
        """A running container's compose service and image, for the live view."""
        with self._lock:
            for info in self.containers.current():
                if info.short_id == short_id:
                    return info.compose_service, info.image
        return None, None

    def active_flows(self, limit: int) -> list[Flow]:
        """The most recently active flows still in progress, attributed, for a live view (none without
        --all-traffic)."""
        tracker = self.live.engine.tracker
        if tracker is None:
            return []
        flows = tracker.active(limit)
        with self._lock:
            return [self.containers.attribute(flow) for flow in flows]

    @property
    def ports(self) -> tuple[int, ...]:
        """The HTTP ports captured now: the configured ones plus those containers expose or publish."""
        return self._ports

    def start(self, after_open: Callable[[], None] | None = None) -> None:
        """Start capturing (raises CaptureError), then follow Docker in the background."""
        self.live.start(after_open)
        self.docker.start()

    def check(self) -> list[str]:
        return self.live.check()

    def stop(self) -> None:
        self.docker.stop()
        self.live.stop()
