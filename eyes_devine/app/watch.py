"""`eyes-devine watch`: feed the per-container board and keep the header's status current.

Two sources. Standalone, it is `run` with a screen: the same service (capture,
attribution, SQLite), with every exchange also going to the board.  With
``--attach`` it needs no privileges: it polls a running `run`'s database
read-only and follows Docker (when reachable) only for images and compose
services.  Either way the loop here refreshes a :class:`Status` every half
second and the screen's refresh thread draws whatever is current.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from eyes_devine.adapters.host import Account, ProcessUsage
from eyes_devine.adapters.store.sqlite import FlowQuery, StoreError, open_store
from eyes_devine.app.board import Board
from eyes_devine.app.logs import MemoryLog
from eyes_devine.config import Settings
from eyes_devine.enrich.annotator import Annotator
from eyes_devine.enrich.attribution import ContainerMap
from eyes_devine.records import Exchange, Flow
from eyes_devine.views.screen import Status

EXIT_OK = 0
EXIT_FAILURE = 1
STATUS_SECONDS = 0.5
POLL_SECONDS = 0.5
FLOWS_SHOWN = 200
"""Recent flow summaries kept for `watch --flows` (the screen shows as many as fit)."""


@dataclass(frozen=True, slots=True)
class WatchFilter:
    """What the user narrowed the view to; empty means everything."""

    container: str | None = None
    ports: tuple[int, ...] = ()
    interfaces: tuple[str, ...] = ()

    def accepts(self, x: Exchange | Flow) -> bool:
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


class View:
    """The board plus the latest status; what the screen draws."""

    def __init__(self, board: Board, status: Status, flows: bool = False) -> None:
        self.board = board
        self.status = status
        self.flows: deque[Flow] | None = deque(maxlen=FLOWS_SHOWN) if flows else None
        """Recent flow summaries, newest last, when the lower table shows flows (`watch --flows`)."""
        self.active_flows: Callable[[int], list[Flow]] | None = None
        """Flows still in progress (capturing only), shown with the ended ones."""
        self._usage = ProcessUsage()

    def recent_flows(self) -> tuple[Flow, ...] | None:
        """A snapshot for the screen's thread, by last packet; None when the lower table shows exchanges."""
        if self.flows is None:
            return None
        active = self.active_flows(FLOWS_SHOWN) if self.active_flows is not None else []
        return tuple(sorted([*self.flows, *active], key=lambda flow: flow.ts_last)[-FLOWS_SHOWN:])

    def own_usage(self) -> tuple[float, int]:
        return self._usage.sample()


def _stop_on_signals(stopping: asyncio.Event) -> Callable[[], None]:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    def restore() -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return restore


async def watch_capturing(settings: Settings, interfaces: tuple[str, ...], view_filter: WatchFilter,
                          show: Callable[[View], object], account: Account | None = None,
                          annotator: Annotator | None = None, flows: bool = False) -> tuple[int, str | None]:
    """Capture like `run` and show it; returns the exit code and the error to print after the screen closes.

    ``flows`` shows recent flow summaries instead of the latest exchanges (``settings.all_traffic`` must be on).
    """
    from eyes_devine.app.service import ServiceOptions, serve

    log = MemoryLog()
    running: dict[str, object] = {}
    board = Board(describe=lambda key: running["monitor"].describe(key) if "monitor" in running else (None, None),
                  accept=view_filter.accepts)
    view = View(board, Status(f"capturing on {', '.join(interfaces)}", 0, 0, "connecting", False, 0.0, 0), flows)
    recent = view.flows

    def also_flow(flow: Flow) -> None:
        if recent is not None and view_filter.accepts(flow):
            recent.append(flow)

    def on_running(monitor: object, writer: object) -> None:
        running["monitor"], running["writer"] = monitor, writer
        if recent is not None:
            active = monitor.active_flows  # type: ignore[attr-defined]
            view.active_flows = lambda limit: [flow for flow in active(limit) if view_filter.accepts(flow)]

    async def refresh() -> None:
        while True:
            monitor = running.get("monitor")
            cpu, rss = view.own_usage()
            if monitor is not None:
                docker = monitor.docker.status  # type: ignore[attr-defined]
                counters = monitor.live.engine.counters  # type: ignore[attr-defined]
                view.status = Status(
                    source=f"capturing on {', '.join(interfaces)}",
                    packets=counters.packets,
                    kernel_drops=monitor.live.capture.kernel_drops(),  # type: ignore[attr-defined]
                    docker=f"{len(monitor.containers)} containers" if docker.reachable  # type: ignore[attr-defined]
                    else (docker.error or "not connected"),
                    docker_ok=docker.reachable, cpu_percent=cpu, rss_bytes=rss, problems=tuple(log.problems),
                )
            show(view)
            await asyncio.sleep(STATUS_SECONDS)

    refresher = asyncio.get_running_loop().create_task(refresh())
    try:
        options = ServiceOptions(interfaces=interfaces, account=account, annotator=annotator, log_alerts=False)
        code = await serve(settings, options, log, also=board.add, on_running=on_running,
                           also_flow=also_flow if recent is not None else None)
    finally:
        refresher.cancel()
    return code, log.last_error


async def watch_attached(settings: Settings, view_filter: WatchFilter,
                         show: Callable[[View], object], flows: bool = False) -> tuple[int, str | None]:
    """Follow what a running `run` stores, without privileges (with ``flows``, its flow summaries too)."""
    from eyes_devine.adapters.docker import DockerWatcher

    try:
        store = await open_store(settings.db_path, settings.keep, readonly=True)
    except StoreError as error:
        return EXIT_FAILURE, str(error)
    containers = ContainerMap()
    log = MemoryLog()
    lock = threading.Lock()  # the watcher's thread changes the map; the screen's thread reads it

    def update(change: Callable[[], None]) -> None:
        with lock:
            change()

    def describe(key: str) -> tuple[str | None, str | None]:
        with lock:
            for info in containers.current():
                if info.short_id == key:
                    return info.compose_service, info.image
        return None, None

    docker = DockerWatcher(settings.docker_environment, update, containers, lambda line: None)
    docker.start()
    board = Board(describe=describe, accept=view_filter.accepts)
    source = f"attached to {settings.db_path}"
    view = View(board, Status(source, None, None, "connecting", False, 0.0, 0), flows)
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
            if view.flows is not None:
                try:
                    latest = await store.query_flows(FlowQuery(limit=FLOWS_SHOWN))
                except StoreError as error:
                    log.warning(str(error))
                else:
                    view.flows = deque((flow for flow in reversed(latest) if view_filter.accepts(flow)),
                                       maxlen=FLOWS_SHOWN)
            cpu, rss = view.own_usage()
            status = docker.status
            view.status = Status(source, None, None,
                                 f"{len(containers)} containers" if status.reachable else (status.error or ""),
                                 status.reachable, cpu, rss, tuple(log.problems))
            show(view)
            try:
                await asyncio.wait_for(stopping.wait(), POLL_SECONDS)
            except TimeoutError:
                pass
    finally:
        restore()
        await asyncio.to_thread(docker.stop)
        await store.close()
    return EXIT_OK, None

