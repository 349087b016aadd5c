"""`eyes-devine run`: the headless service that captures, attributes and stores, until told to stop.

Threads: one sniffer per interface and the engine thread (capture → exchanges,
attributed on the engine thread), the Docker watcher, and the asyncio loop
here, which owns the SQLite writer and the health and counter logs.  Exchanges
cross to the writer through its bounded queue; nothing on the capture path
waits for the disk.  SIGTERM and SIGINT stop capture, drain the engine, write
everything still queued, and return 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from eyes_devine.adapters.capture import CaptureError
from eyes_devine.adapters.host import Account, PrivilegeDropError, drop_privileges
from eyes_devine.adapters.store.sqlite import (
    BatchWriter,
    ExchangeStore,
    FlowWrites,
    RingBuffers,
    StoreError,
    open_store,
)
from eyes_devine.app.logs import MemoryLog, ServiceLog
from eyes_devine.app.pipeline import Monitor
from eyes_devine.config import Settings
from eyes_devine.enrich.annotator import Annotator
from eyes_devine.records import Exchange, Flow
from eyes_devine.views.jsonl import json_line

EXIT_OK = 0
EXIT_FAILURE = 1


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    interfaces: tuple[str, ...]
    stats_interval: float = 30.0
    """Seconds between counter lines."""
    health_interval: float = 1.0
    """Seconds between sniffer health checks (a vanished interface is picked up again)."""
    account: Account | None = None
    """Become this user once the capture sockets are open (``--user``)."""
    annotator: Annotator | None = None
    """Security rules, GeoIP and reputation, applied to each exchange after attribution."""
    log_alerts: bool = True
    """A warning line per exchange that matched a suspicious-request rule, and a count per batch stored
    (`run`; `watch` shows alerts on its screen instead)."""


async def serve(
    settings: Settings,
    options: ServiceOptions,
    log: ServiceLog | MemoryLog,
    out: TextIO | None = None,
    *,
    also: Callable[[Exchange], None] | None = None,
    on_running: Callable[[Monitor, BatchWriter], None] | None = None,
    also_flow: Callable[[Flow], None] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code.

    ``also`` receives every exchange too, on the engine thread (the live view's
    board), and ``also_flow`` every flow summary (with --all-traffic);
    ``on_running`` is told of the running monitor and writer, so a view can
    read their counters.
    """
    try:
        store = await open_store(settings.db_path, settings.keep)
    except StoreError as error:
        log.error(str(error))
        return EXIT_FAILURE
    rings = RingBuffers(settings.keep)
    for exchanges in (await store.recent(settings.keep)).values():
        rings.add_many(exchanges)
    log.info("store opened", db=settings.db_path, reloaded=rings.total, keep=settings.keep)

    writer = BatchWriter(
        store, batch_size=settings.batch_size,
        on_batch=lambda rows, seconds: log.info("batch stored", rows=rows, ms=round(seconds * 1000, 1)),
        on_error=lambda error: log.warning(f"could not store a batch: {error}"),
        on_alerts=(lambda count: log.warning(f"Found {count} malicious requests", count=count))
        if options.log_alerts else None,
    )
    writer.start()
    flow_writer = _flow_writer(settings, store, log)
    sink = _sink(writer, rings, out, also)
    monitor = Monitor(settings, options.interfaces, _log_alerts(sink, log) if options.log_alerts else sink, log.info,
                      annotate=options.annotator,
                      annotate_flow=options.annotator.annotate_flow if options.annotator is not None else None,
                      emit_flow=_flow_sink(flow_writer, also_flow) if flow_writer is not None else None)
    account = options.account
    if account is not None:
        hand_over(store.path, account)
    try:
        await asyncio.to_thread(monitor.start, (lambda: drop_privileges(account)) if account else None)
    except (CaptureError, PrivilegeDropError) as error:
        log.error(str(error))
        if flow_writer is not None:
            await flow_writer.close()
        await writer.close()
        return EXIT_FAILURE
    if account is not None:
        log.info("privileges dropped", user=account.name, uid=account.uid, gid=account.gid)
    log.info("capturing", interfaces=",".join(options.interfaces), filter=monitor.bpf)
    if on_running is not None:
        on_running(monitor, writer)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    next_stats = time.monotonic() + options.stats_interval
    try:
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), options.health_interval)
            except TimeoutError:
                pass
            for event in await asyncio.to_thread(monitor.check):
                log.warning(event)
            if time.monotonic() >= next_stats:
                next_stats += options.stats_interval
                log.info("counters", **_counters(monitor, writer), **_flow_counters(monitor, flow_writer))
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await asyncio.to_thread(monitor.stop)  # the engine's last exchanges reach the writer here
        if options.annotator is not None:
            options.annotator.close()
        if flow_writer is not None:
            await flow_writer.close()  # before the exchanges' writer, which closes the store
        await writer.close()
    log.info("stopped, everything captured is stored", **_counters(monitor, writer),
             **_flow_counters(monitor, flow_writer))
    return EXIT_OK


def hand_over(db: Path, account: Account) -> None:
    """Give the database to the user we are about to become, so it can go on writing and checkpointing.

    The directory goes too when it holds nothing but the database (the data
    directory eyes-devine made); a shared directory is left as it is.
    """
    files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
    for path in files:
        if path.exists():
            os.chown(path, account.uid, account.gid)
    names = {path.name for path in files}
    if all(entry.name in names for entry in db.parent.iterdir()):
        os.chown(db.parent, account.uid, account.gid)


def _sink(writer: BatchWriter, rings: RingBuffers, out: TextIO | None,
          also: Callable[[Exchange], None] | None) -> Callable[[Exchange], None]:
    """What the engine thread does with each attributed exchange."""
    submit, remember = writer.submit, rings.add
    if also is not None:
        def sink(exchange: Exchange) -> None:
            submit(exchange)
            remember(exchange)
            also(exchange)
    elif out is None:
        def sink(exchange: Exchange) -> None:
            submit(exchange)
            remember(exchange)
    else:
        write = out.write

        def sink(exchange: Exchange) -> None:
            submit(exchange)
            remember(exchange)
            try:
                write(json_line(exchange) + "\n")
            except (BrokenPipeError, ValueError):
                pass  # the reader of stdout went away; storing goes on
    return sink


def _flow_writer(settings: Settings, store: ExchangeStore, log: ServiceLog | MemoryLog) -> BatchWriter | None:
    """With --all-traffic, a second writer for flow summaries: the same bounded queue, drops counted."""
    if not settings.all_traffic:
        return None
    flow_writer = BatchWriter(
        FlowWrites(store), batch_size=settings.batch_size,  # type: ignore[arg-type]
        on_batch=lambda rows, seconds: log.info("flows stored", rows=rows, ms=round(seconds * 1000, 1)),
        on_error=lambda error: log.warning(f"could not store a batch of flows: {error}"),
    )
    flow_writer.start()
    return flow_writer


def _flow_sink(writer: BatchWriter, also: Callable[[Flow], None] | None) -> Callable[[Flow], None]:
    """What the engine thread does with each attributed flow summary."""
    if also is None:
        return writer.submit  # type: ignore[return-value]
    submit = writer.submit

    def sink(flow: Flow) -> None:
        submit(flow)  # type: ignore[arg-type]
        also(flow)
    return sink


def _flow_counters(monitor: Monitor, writer: BatchWriter | None) -> dict[str, object]:
    tracker = monitor.live.engine.tracker
    if writer is None or tracker is None:
        return {}
    return {"flow_summaries": tracker.emitted, "flows_open": len(tracker), "flow_evictions": tracker.evicted,
            "flows_stored": writer.written, "flow_store_drops": writer.dropped}


ALERT_LINES_PER_SECOND = 20
"""A scanner sends thousands of alerting requests a second; past this many lines a second the rest are
counted and the count logged, and `eyes-devine alerts` still has every one."""


def _log_alerts(sink: Callable[[Exchange], None], log: ServiceLog | MemoryLog) -> Callable[[Exchange], None]:
    """``sink``, plus a warning line for each exchange that matched a rule (on the engine thread)."""
    window = [0.0, 0, 0]  # second, lines logged in it, alerts not logged since the last line

    def logged(exchange: Exchange) -> None:
        sink(exchange)
        if not exchange.alerts:
            return
        second = int(time.monotonic())
        if second != window[0]:
            window[0], window[1] = second, 0
        if window[1] >= ALERT_LINES_PER_SECOND:
            window[2] += 1
            return
        window[1] += 1
        extra = {"not_logged": window[2]} if window[2] else {}
        window[2] = 0
        log.warning("alert", rules=",".join(exchange.alerts), client=exchange.client_ip,
                    container=exchange.attribution.container or exchange.attribution.client_container,
                    method=exchange.method,
                    target=exchange.target, **extra)
    return logged


def _counters(monitor: Monitor, writer: BatchWriter) -> dict[str, object]:
    counters = monitor.live.engine.counters
    return {
        "packets": counters.packets,
        "exchanges": counters.exchanges,
        "kernel_drops": monitor.live.capture.kernel_drops(),
        "queue_drops": monitor.live.queue_drops,
        "gaps": counters.gaps,
        "flows": counters.flows,
        "flows_evicted": counters.flows_evicted,
        "non_http_streams": counters.non_http_streams,
        "tls_streams": counters.tls_streams,
        "stored": writer.written,
        "batches": writer.batches,
        "store_drops": writer.dropped,
        "containers": len(monitor.containers),
    }
