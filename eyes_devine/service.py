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

from eyes_devine.capture import CaptureError
from eyes_devine.config import Settings
from eyes_devine.logs import MemoryLog, ServiceLog
from eyes_devine.model import Exchange
from eyes_devine.output import json_line
from eyes_devine.pipeline import Monitor
from eyes_devine.privileges import Account, PrivilegeDropError, drop_privileges
from eyes_devine.security import Annotator
from eyes_devine.store import BatchWriter, RingBuffers, StoreError, open_store

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


async def serve(
    settings: Settings,
    options: ServiceOptions,
    log: ServiceLog | MemoryLog,
    out: TextIO | None = None,
    *,
    also: Callable[[Exchange], None] | None = None,
    on_running: Callable[[Monitor, BatchWriter], None] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code.

    ``also`` receives every exchange too, on the engine thread (the live view's
    board); ``on_running`` is told of the running monitor and writer, so a view
    can read their counters.
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
    )
    writer.start()
    monitor = Monitor(settings, options.interfaces, _sink(writer, rings, out, also), log.info,
                      annotate=options.annotator)
    account = options.account
    if account is not None:
        hand_over(store.path, account)
    try:
        await asyncio.to_thread(monitor.start, (lambda: drop_privileges(account)) if account else None)
    except (CaptureError, PrivilegeDropError) as error:
        log.error(str(error))
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
                log.info("counters", **_counters(monitor, writer))
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await asyncio.to_thread(monitor.stop)  # the engine's last exchanges reach the writer here
        if options.annotator is not None:
            options.annotator.close()
        await writer.close()
    log.info("stopped, everything captured is stored", **_counters(monitor, writer))
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


def _counters(monitor: Monitor, writer: BatchWriter) -> dict[str, object]:
    counters = monitor.live.engine.counters
    return {
        "packets": counters.packets,
        "exchanges": counters.exchanges,
        "kernel_drops": monitor.live.capture.kernel_drops(),
        "queue_drops": monitor.live.queue_drops,
        "gaps": counters.gaps,
        "non_http_streams": counters.non_http_streams,
        "tls_streams": counters.tls_streams,
        "stored": writer.written,
        "batches": writer.batches,
        "store_drops": writer.dropped,
        "containers": len(monitor.containers),
    }
