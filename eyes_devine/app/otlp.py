"""Exchanges exported as spans over OTLP, from a bounded queue on a thread of their own.

The engine thread only decides whether an exchange is exported (sampling; an
exchange that is an error or raised an alert always is) and queues it.  The
sink's thread builds the spans and sends them.  A collector that is down or
failing never reaches capture or storage: the batch in hand is retried with
backoff while the queue fills, what no longer fits is counted as dropped, and
the outage is logged once when it begins and once when it ends, with what it
cost.
"""

from __future__ import annotations

import random
import threading

from eyes_devine.adapters.otlp import Ends, Exporter, SpanBuilder, is_error
from eyes_devine.app.directory import ContainerDirectory
from eyes_devine.app.logs import MemoryLog, ServiceLog
from eyes_devine.core.routes import method_label, route_template
from eyes_devine.records import Exchange
from eyes_devine.sinks import QueuedSink, Record

OTLP_QUEUE = 20_000
"""Exchanges waiting for the collector before they are dropped: a few minutes of a busy service's errors."""
BATCH = 512
"""Exchanges per export request, as the SDK's batch processor sends spans."""
LINGER_SECONDS = 1.0
"""Longest an exchange waits for its batch to fill: few large export requests cost far less than many small ones
(the SDK's batch processor waits 5 s)."""
RETRY_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
"""Waits between attempts while the collector is unreachable; the last repeats."""


class OtlpSink(QueuedSink):
    """Every exchange (or a sampled share, plus every error and alert) as OTLP spans."""

    undelivered = "collector unreachable at stop"

    def __init__(self, exporter: Exporter, builder: SpanBuilder, directory: ContainerDirectory, endpoint: str,
                 log: ServiceLog | MemoryLog, sample: float = 1.0, max_queued: int = OTLP_QUEUE) -> None:
        self._exporter = exporter
        self._builder = builder
        self._directory = directory
        self._endpoint = endpoint
        self._log = log
        self._sample = sample
        self.sampled_out = 0
        """Exchanges left out by sampling (not a loss: the ratio asked for it)."""
        self._outage_drops_at: int | None = None
        """Drops counted when the current outage began; None while the collector takes spans."""
        self._stop = threading.Event()
        super().__init__("otlp", self._deliver, max_queued=max_queued, batch_size=BATCH, linger=LINGER_SECONDS)

    def accept(self, record: Record) -> None:
        if type(record) is not Exchange:
            return
        if self._sample < 1.0 and random.random() >= self._sample and not record.alerts and not is_error(record):
            self.sampled_out += 1
            return
        self._enqueue(record)

    def close(self, timeout: float) -> None:
        self._stop.set()  # no more waiting for the collector: what it has not taken by now counts as dropped
        if self._outage_drops_at is not None:  # it is away: also cut short the SDK's retries of the batch in hand
            self._exporter.interrupt()
        super().close(timeout)
        self._exporter.shutdown()

    def _deliver(self, batch: list[Exchange]) -> int:
        if self._stop.is_set() and self._outage_drops_at is not None:
            return 0
        spans = [span for x in batch for span in self._builder.spans(x, self._ends(x))]
        attempt = 0
        while True:
            problem = self._exporter.export(spans)
            if problem is None:
                self._recovered()
                return len(batch)
            if self._outage_drops_at is None:
                self._outage_drops_at = self.counters().dropped
                self._log.warning(f"OTLP export to {self._endpoint} failing: {problem}; spans wait in a queue of "
                          f"{self._max_queued:,} exchanges, and what does not fit is dropped and counted")
            if self._stop.wait(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]):
                return 0
            attempt += 1

    def _recovered(self) -> None:
        if self._outage_drops_at is None:
            return
        lost = self.counters().dropped - self._outage_drops_at
        self._outage_drops_at = None
        self._log.info(f"OTLP export to {self._endpoint} working again; {lost:,} exchanges dropped during the outage")

    def _ends(self, x: Exchange) -> Ends:
        attribution = x.attribution
        directory = self._directory
        return Ends(route_template(x.target), method_label(x.method),
                    directory.get(attribution.container_id, attribution.container),
                    directory.get(attribution.client_container_id, attribution.client_container))
