"""`eyes-devine watch`: feed the per-container board, and hand the screen one immutable frame at a time.

Two sources. Standalone, it is `run` with a screen: the same service (capture,
attribution, SQLite), with the board as one more sink.  With ``--attach`` it
needs no privileges: it polls a running `run`'s database read-only and follows
Docker (when reachable) only for images and compose services.  Either way the
loop here makes a :class:`~eyes_devine.snapshots.WatchFrame` every half second
and the screen's refresh thread draws the latest one.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from eyes_devine.adapters.host import Account, ProcessUsage
from eyes_devine.adapters.store.errors import StoreError
from eyes_devine.adapters.store.opener import display, open_database
from eyes_devine.adapters.store.query import FlowQuery
from eyes_devine.app.board import Board
from eyes_devine.app.logs import MemoryLog
from eyes_devine.config import Settings
from eyes_devine.enrich.annotator import Annotator
from eyes_devine.enrich.attribution import ContainerMap
from eyes_devine.records import Exchange, Flow
from eyes_devine.snapshots import MonitorSnapshot, Status, WatchFrame

EXIT_OK = 0
EXIT_FAILURE = 1
FRAME_SECONDS = 0.5
POLL_SECONDS = 0.5
FLOWS_SHOWN = 200
"""Recent flow summaries kept for `watch --flows` (the screen shows as many as fit)."""


@dataclass(frozen=True, slots=True)
class WatchFilter:
    """What the user narrowed the view to; empty means everything."""

    container: str | None = None
    ports: tuple[int, ...] = ()
    interfaces: tuple[str, ...] = ()
    observer: str | None = None
    """Attached to a database many hosts write: only what this one captured."""

    def accepts(self, x: Exchange | Flow) -> bool:
        if self.observer is not None and x.observer != self.observer:
            return False
        if self.container:
            wanted = self.container.lower()
            attribution = x.attribution
            names = (attribution.container, attribution.client_container)
            ids = (attribution.container_id, attribution.client_container_id)
            if self.container not in names and not any(i and i.startswith(wanted[:12]) for i in ids):
                return False
        if self.ports and x.server_port not in self.ports:
            return False
        return not self.interfaces or x.interface in self.interfaces


def _frame(source: str, board: Board, usage: ProcessUsage, log: MemoryLog, flows: bool,
           monitor: MonitorSnapshot | None = None, services: Mapping[str, tuple[str | None, str | None]] | None = None,
           docker: tuple[bool, str] = (False, "connecting"), view_filter: WatchFilter | None = None) -> WatchFrame:
    """One frame: the board now, the header's status, and (for --flows) recent and open flows by last packet."""
    cpu, rss = usage.sample()
    if monitor is not None:
        services, docker = monitor.services, (monitor.docker_reachable, monitor.docker)
        packets: int | None = monitor.engine.counters.get("packets", 0)  # type: ignore[assignment]
        kernel_drops: int | None = monitor.kernel_drops
    else:
        packets = kernel_drops = None
    status = Status(source, packets, kernel_drops, docker[1], docker[0], cpu, rss, tuple(log.problems))
    snapshot = board.snapshot(time.time(), services)
    recent = None
    if flows:
        active = monitor.engine.active_flows if monitor is not None else ()
        if view_filter is not None:
            active = tuple(flow for flow in active if view_filter.accepts(flow))
        recent = tuple(sorted([*snapshot.flows, *active], key=lambda flow: flow.ts_last)[-FLOWS_SHOWN:])
    return WatchFrame(status, snapshot, recent)


def _stop_on_signals(stopping: asyncio.Event) -> Callable[[], None]:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    def restore() -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return restore


async def watch_capturing(settings: Settings, interfaces: tuple[str, ...], view_filter: WatchFilter,
                          show: Callable[[WatchFrame], object], account: Account | None = None,
                          annotator: Annotator | None = None, flows: bool = False) -> tuple[int, str | None]:
    """Capture like `run` and show it; returns the exit code and the line to print once the screen is closed:
    the error, or what `run`'s final line says (what was stored, what was lost).

    ``flows`` shows recent flow summaries instead of the latest exchanges (``settings.all_traffic`` must be on).
    """
    from eyes_devine.app.service import ServiceOptions, serve

    log = MemoryLog()
    usage = ProcessUsage()
    board = Board(wanted=view_filter.accepts, flows=FLOWS_SHOWN if flows else 0)
    source = f"capturing on {', '.join(interfaces)}"
    latest: list[MonitorSnapshot] = []

    async def refresh() -> None:
        while True:
            show(_frame(source, board, usage, log, flows, latest[-1] if latest else None, view_filter=view_filter))
            await asyncio.sleep(FRAME_SECONDS)

    def on_tick(snapshot: MonitorSnapshot) -> None:
        latest[:] = [snapshot]

    endings: list[str] = []

    refresher = asyncio.get_running_loop().create_task(refresh())
    try:
        options = ServiceOptions(interfaces=interfaces, account=account, annotator=annotator, log_alerts=False,
                                 active_flows=FLOWS_SHOWN if flows else 0)
        code = await serve(settings, options, log, sinks=[board], on_tick=on_tick, on_end=endings.append)
    finally:
        refresher.cancel()
    return code, endings[-1] if endings else log.last_error


async def watch_attached(settings: Settings, view_filter: WatchFilter,
                         show: Callable[[WatchFrame], object], flows: bool = False) -> tuple[int, str | None]:
    """Follow what a running `run` stores, without privileges (with ``flows``, its flow summaries too)."""
    from eyes_devine.adapters.docker import DockerWatcher

    try:
        store = await open_database(settings.db_path, settings.keep, readonly=True)
    except StoreError as error:
        return EXIT_FAILURE, str(error)
    containers = ContainerMap()
    log = MemoryLog()
    usage = ProcessUsage()
    lock = threading.Lock()  # the watcher's thread changes the map; this loop reads it

    def update(change: Callable[[], None]) -> None:
        with lock:
            change()

    docker = DockerWatcher(settings.docker_environment, update, containers, lambda line: None)
    docker.start()
    board = Board(wanted=view_filter.accepts, flows=FLOWS_SHOWN if flows else 0)
    source = f"attached to {display(settings.db_path)}"
    stopping = asyncio.Event()
    restore = _stop_on_signals(stopping)
    try:
        for exchanges in (await store.recent(settings.keep)).values():
            for exchange in exchanges:
                board.add(exchange)
        last_id = await store.last_id()
        while not stopping.is_set():
            try:
                last_id, fresh = await store.after(last_id)
            except StoreError as error:
                log.warning(str(error))
                fresh = []
            for exchange in fresh:
                board.add(exchange)
            if flows:
                try:
                    board.replace_flows(reversed(await store.query_flows(FlowQuery(limit=FLOWS_SHOWN))))
                except StoreError as error:
                    log.warning(str(error))
            with lock:
                running = containers.current()
            services = MappingProxyType({info.short_id: (info.compose_service, info.image) for info in running})
            status = docker.status
            known = (status.reachable, f"{len(running)} containers" if status.reachable else (status.error or ""))
            show(_frame(source, board, usage, log, flows, services=services, docker=known))
            try:
                await asyncio.wait_for(stopping.wait(), POLL_SECONDS)
            except TimeoutError:
                pass
    finally:
        restore()
        await asyncio.to_thread(docker.stop)
        await store.close()
    return EXIT_OK, None
