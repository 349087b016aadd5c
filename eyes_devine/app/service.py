"""`eyes-devine run`: the headless service that captures, attributes and stores, until told to stop.

Threads: one sniffer per interface and the engine thread (capture → records,
attributed and annotated on the engine thread, then handed to the sinks), the
Docker watcher, one thread per sink that can block (the store, stdout, alert
lines), and the asyncio loop here, which checks the sniffers' health and logs
counters.  Nothing on the capture path waits for a disk or a reader.  SIGTERM
and SIGINT stop capture, drain the engine, write everything still queued (a
second signal does not cut that short), and end with one line of what was
stored and what was lost: exit 0, or 3 when any record was lost (see
:mod:`~eyes_devine.app.ending`).
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eyes_devine import __version__
from eyes_devine.adapters.capture import CaptureError
from eyes_devine.adapters.host import Account, PrivilegeDropError, drop_privileges
from eyes_devine.adapters.metrics import MetricsServerError
from eyes_devine.adapters.otlp import OtlpError
from eyes_devine.adapters.store.errors import StoreError
from eyes_devine.adapters.store.memory import RingBuffers
from eyes_devine.adapters.store.opener import display, open_database
from eyes_devine.adapters.store.writer import StoreWriter
from eyes_devine.app.ending import ending
from eyes_devine.app.exports import open_exports
from eyes_devine.app.logs import MemoryLog, ServiceLog
from eyes_devine.app.outputs import AlertLogSink, JsonLinesSink
from eyes_devine.app.pipeline import Monitor
from eyes_devine.config import Settings
from eyes_devine.enrich.annotator import Annotator
from eyes_devine.enrich.inventory import InventoryRecorder
from eyes_devine.records import ContainerTenure, MonitorStatus
from eyes_devine.sinks import Sink
from eyes_devine.snapshots import MonitorSnapshot

EXIT_FAILURE = 1
OUTPUT_CLOSE_SECONDS = 3.0
"""How long stdout and the log may stay blocked at stop before what they hold counts as dropped."""
CLOSE_SECONDS = {"store": 30.0, "otlp": 10.0}
"""Sinks given longer than OUTPUT_CLOSE_SECONDS at stop: the store (it is the record), the OTLP exporter (one
export request may take its timeout)."""


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
    """Security rules, GeoIP and reputation, applied to each record after attribution."""
    log_alerts: bool = True
    """A warning line per exchange that matched a suspicious-request rule, and a count per batch stored
    (`run`; `watch` shows alerts on its screen instead)."""
    json_fd: int | None = None
    """Print every exchange as JSON Lines on this file descriptor (`run --json`: stdout)."""
    active_flows: int = 0
    """Open flows each snapshot carries, for `watch --flows`."""


async def serve(
    settings: Settings,
    options: ServiceOptions,
    log: ServiceLog | MemoryLog,
    sinks: Sequence[Sink] = (),
    on_tick: Callable[[MonitorSnapshot], None] | None = None,
    on_end: Callable[[str], None] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code.

    ``sinks`` receive every record too (the live view's board); ``on_tick`` is
    given a fresh snapshot of the monitor every health interval, ``on_end`` the
    final line once every sink has delivered what it could.
    """
    writer = StoreWriter(
        settings.db_path, settings.keep, retain=settings.retain, batch_size=settings.batch_size,
        on_batch=lambda exchanges, flows, seconds: _log_batch(log, exchanges, flows, seconds),
        on_error=lambda kind: log.warning(f"could not store a batch: {kind}; further failures like it are counted, "
                                          "not logged"),
        on_recovered=lambda batches, records: log.info("storing again", failed_batches=batches,
                                                       not_stored=records),
        on_alerts=(lambda count: log.warning(f"Found {count} malicious requests", count=count))
        if options.log_alerts else None,
        observer=settings.observer, spool=settings.spool,
        on_unreachable=lambda kind: log.warning(
            f"database unreachable: {kind}; batches wait in the spool (memory"
            f"{f', then {settings.spool}' if settings.spool else ''}) and are sent when it answers"),
        on_reachable=lambda: log.info("database reachable again; sending what waited"),
    )
    try:
        await asyncio.to_thread(writer.start)
        rings, adopted = await _reloaded(settings)
    except StoreError as error:
        log.error(str(error))
        return EXIT_FAILURE
    log.info("store opened", db=display(settings.db_path), observer=settings.observer, reloaded=rings.total,
             keep=settings.keep,
             **({"retain_s": settings.retain} if settings.retain is not None else {}))
    gc.freeze()  # start-up's objects (scapy's layers, the modules, the reloaded rings) stay: no GC pass walks them
    outputs: list[Sink] = [writer, rings]
    if options.json_fd is not None:
        outputs.append(JsonLinesSink(options.json_fd))
    if options.log_alerts:
        outputs.append(AlertLogSink(log))
    outputs.extend(sinks)
    latest: list[MonitorSnapshot] = []
    try:  # before capture starts (and privileges drop): a metrics port below 1024 is bound as root
        exports = open_exports(settings, log, lambda: latest[-1] if latest else None, lambda: outputs, time.time)
    except (MetricsServerError, OtlpError) as error:
        log.error(str(error))
        await _close(outputs, options.annotator)
        return EXIT_FAILURE
    outputs.extend(exports.sinks)
    if settings.metrics is not None:
        log.info("serving metrics", url=settings.metrics.url)
    if settings.otlp is not None:
        log.info("exporting spans", otlp=settings.otlp.endpoint, protocol=settings.otlp.protocol,
                 sample=settings.otlp.sample)
    monitor = Monitor(settings, options.interfaces, outputs, log.info, options.annotator,
                      active_flows=options.active_flows,
                      inventory=InventoryRecorder(writer.accept_tenure, settings.observer, adopted),
                      account=options.account)
    exports.directory.describe = monitor.describe
    account = options.account
    try:
        await asyncio.to_thread(monitor.start, (lambda: drop_privileges(account)) if account else None)
    except (CaptureError, PrivilegeDropError) as error:
        log.error(str(error))
        await _close(outputs, options.annotator)
        return EXIT_FAILURE
    if account is not None:
        log.info("privileges dropped", user=account.name, uid=account.uid, gid=account.gid)
    log.info("capturing", interfaces=",".join(options.interfaces), filter=monitor.bpf)

    status = StatusReport(writer, settings.interfaces or ())
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    next_stats = time.monotonic() + options.stats_interval
    try:
        status.publish(await asyncio.to_thread(monitor.snapshot))  # `health` can answer from the first second
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), options.health_interval)
            except TimeoutError:
                pass
            for event in await asyncio.to_thread(monitor.check):
                log.warning(event)
            snapshot = await asyncio.to_thread(monitor.snapshot)
            latest[:] = [snapshot]
            status.publish(snapshot)
            for line in exports.tick(snapshot):
                log.info(line)
            if on_tick is not None:
                on_tick(snapshot)
            if time.monotonic() >= next_stats:
                next_stats += options.stats_interval
                log.info("counters", **counters(snapshot, outputs, settings.all_traffic))
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):  # a second Ctrl-C must not cut the writing short
            loop.add_signal_handler(signum, log.info, "stopping: writing what is still queued first")
        await asyncio.to_thread(monitor.stop)  # the engine's last records reach the sinks here
        status.publish(None)
        await _close(outputs, options.annotator)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    final = await asyncio.to_thread(monitor.snapshot)
    if on_tick is not None:
        on_tick(final)
    end = ending(writer, outputs, final, settings.all_traffic)
    (log.warning if end.lost else log.info)(end.message, lost=end.lost,
                                            **counters(final, outputs, settings.all_traffic))
    if on_end is not None:
        on_end(end.message)
    return end.code


STATUS_SECONDS = 5.0
"""Seconds between status rows while nothing changes (`eyes-devine health` allows 30 by default)."""


class StatusReport:
    """The status `run` keeps in its database for `eyes-devine health`: the sniffers, and a fresh time."""

    def __init__(self, writer: StoreWriter, asked: tuple[str, ...]) -> None:
        """``asked``: the interfaces the user named (-i, NETWORK_INTERFACES); the others were discovered."""
        self._writer = writer
        self._asked = frozenset(asked)
        self._started = time.time()
        self._host = socket.gethostname()
        self._sent: tuple[float, tuple[tuple[str, str], ...]] | None = None
        """When (monotonic) and what was last reported."""

    def publish(self, snapshot: MonitorSnapshot | None) -> None:
        """Report the sniffers of ``snapshot`` (None: the run is ending) when they changed or it is time."""
        now = time.monotonic()
        sniffers = tuple(sorted((name, self._state(name, running)) for name, running in snapshot.sniffers.items())) \
            if snapshot is not None else ()
        if snapshot is not None and self._sent is not None and self._sent[1] == sniffers \
                and now - self._sent[0] < STATUS_SECONDS:
            return
        self._sent = (now, sniffers)
        self._writer.report(MonitorStatus(time.time(), self._started, os.getpid(), self._host, __version__,
                                          sniffers, stopped=snapshot is None))

    def _state(self, name: str, running: bool) -> str:
        if running:
            return "up"
        if name in self._asked:
            return "down"
        try:  # a discovered bridge that vanished went with its Docker network: nothing is broken
            socket.if_nametoindex(name)
        except OSError:
            return "gone"
        return "down"


async def _reloaded(settings: Settings) -> tuple[RingBuffers, list[ContainerTenure]]:
    """The rings as the database holds them, and the container tenures this observer's last run left open, to
    carry on (read on a connection of their own; the writer has its own)."""
    rings = RingBuffers(settings.keep)
    store = await open_database(settings.db_path, settings.keep, readonly=True, observer=settings.observer)
    try:
        for exchanges in (await store.recent(settings.keep)).values():
            rings.add_many(exchanges)
        adopted = await store.inventory(settings.observer, open_only=True)
    finally:
        await store.close()
    return rings, adopted


async def _close(sinks: Sequence[Sink], annotator: Annotator | None) -> None:
    """Stop the background stages, then let every sink deliver what it holds (the store last: it is the record)."""
    if annotator is not None:
        annotator.close()
    for sink in sorted(sinks, key=lambda sink: isinstance(sink, StoreWriter)):
        await asyncio.to_thread(sink.close, CLOSE_SECONDS.get(sink.name, OUTPUT_CLOSE_SECONDS))


def _log_batch(log: ServiceLog | MemoryLog, exchanges: int, flows: int, seconds: float) -> None:
    if exchanges:
        log.info("batch stored", rows=exchanges, ms=round(seconds * 1000, 1))
    if flows:
        log.info("flows stored", rows=flows, ms=round(seconds * 1000, 1))


def counters(snapshot: MonitorSnapshot, sinks: Sequence[Sink], flows: bool) -> dict[str, object]:
    """The fields of the counter lines: what the engine saw, and what each sink did with it (``flows``: the flow
    summaries' too, with --all-traffic)."""
    engine = snapshot.engine.counters
    fields: dict[str, object] = {
        "packets": engine.get("packets", 0),
        "exchanges": engine.get("exchanges", 0),
        "kernel_drops": snapshot.kernel_drops,
        "queue_drops": snapshot.queue_drops,
        "gaps": engine.get("gaps", 0),
        "flows": engine.get("flows", 0),
        "flows_evicted": engine.get("flows_evicted", 0),
        "non_http_streams": engine.get("non_http_streams", 0),
        "tls_streams": engine.get("tls_streams", 0),
        "containers": snapshot.containers,
    }
    if snapshot.engine.worker_packets:
        fields["worker_packets"] = list(snapshot.engine.worker_packets)
    for sink in sinks:
        if isinstance(sink, StoreWriter):
            fields.update(stored=sink.written, batches=sink.batches, failed_batches=sink.failed_batches,
                          store_drops=sink.dropped)
            if flows:
                fields.update(flow_summaries=snapshot.engine.flow_summaries, flows_open=snapshot.engine.flows_open,
                              flow_evictions=snapshot.engine.flow_evictions, flows_stored=sink.flows_written,
                              flow_store_drops=sink.flows_dropped)
        elif sink.name in ("stdout", "alerts", "otlp"):
            accepted, written, dropped = sink.counters()
            fields.update({f"{sink.name}_written": written, f"{sink.name}_drops": dropped})
    return fields
