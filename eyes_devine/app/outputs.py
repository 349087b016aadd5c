"""The service's text outputs as sinks: exchanges as JSON Lines on stdout, and a log line per alerting exchange.

Both write to pipes a person or a log shipper reads, which can stall; each
gets its own bounded queue and thread (:class:`~eyes_devine.sinks.QueuedSink`),
so a reader that stops reading costs dropped lines, counted, never capture.
"""

from __future__ import annotations

import os
import time

from eyes_devine.app.logs import MemoryLog, ServiceLog
from eyes_devine.records import ANSWERED, Exchange, outcome
from eyes_devine.sinks import QueuedSink, Record
from eyes_devine.views.jsonl import json_line

STDOUT_QUEUE = 10_000
"""Exchanges waiting for a slow stdout reader before they are dropped."""


def _is_exchange(record: Record) -> bool:
    return type(record) is Exchange


class JsonLinesSink(QueuedSink):
    """Exchanges as JSON Lines on a file descriptor (stdout for `run --json`).

    Written with ``os.write`` on the descriptor itself, in one write per batch:
    no Python buffer whose lock a blocked write would hold at exit.  A reader
    that went away (EPIPE) ends the output; the rest is counted as dropped, with
    the error as the reason.
    """

    def __init__(self, fd: int, max_queued: int = STDOUT_QUEUE) -> None:
        self._fd = fd
        self._broken = False
        super().__init__("stdout", self._write, wants=_is_exchange, max_queued=max_queued)

    def _write(self, batch: list[Record]) -> int:
        if self._broken:
            return 0
        data = "".join(json_line(x) + "\n" for x in batch).encode("utf-8", "backslashreplace")  # type: ignore[arg-type]
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as error:  # EPIPE, EBADF: nobody reads any more; storing goes on
            self._broken = True
            self.undelivered = f"write failed: {error.strerror or error}"
            return 0
        return len(batch)


ANSWERED_IS_BENIGN = frozenset({"scanner-user-agent", "burst-4xx"})
"""Rules whose exchange being answered says nothing of a break-in (a scanner fetching an ordinary page); an
answered sensitive path, traversal or injection is logged as an error: the file or the query may have gone out."""

ALERT_LINES_PER_SECOND = 20
"""A scanner sends thousands of alerting requests a second; past this many lines a second the rest are
counted and the count logged, and `eyes-devine alerts` still has every one."""


class AlertLogSink(QueuedSink):
    """A warning line per exchange that matched a suspicious-request rule, at most 20 a second; an error line
    ("alert answered") when the server answered an attack that may have worked.

    The engine thread decides which exchanges get a line and how many went
    without one since; the sink's thread only writes.
    """

    def __init__(self, log: ServiceLog | MemoryLog) -> None:
        self._log = log
        self._second = 0
        self._in_second = 0
        self._not_logged = 0
        super().__init__("alerts", self._write)

    def accept(self, record: Record) -> None:
        if type(record) is not Exchange or not record.alerts:
            return
        second = int(time.monotonic())
        if second != self._second:
            self._second, self._in_second = second, 0
        if self._in_second >= ALERT_LINES_PER_SECOND:
            self._not_logged += 1
            return
        self._in_second += 1
        self._enqueue((record, self._not_logged))
        self._not_logged = 0

    def _write(self, batch: list[tuple[Exchange, int]]) -> int:
        for x, not_logged in batch:
            extra = {"not_logged": not_logged} if not_logged else {}
            attribution = x.attribution
            result = outcome(x)
            worked = result == ANSWERED and not ANSWERED_IS_BENIGN.issuperset(x.alerts)
            (self._log.error if worked else self._log.warning)(
                "alert answered" if worked else "alert", rules=",".join(x.alerts), outcome=result,
                status=x.status, client=x.client_ip, container=attribution.container or attribution.client_container,
                method=x.method, target=x.target, **extra)
        return len(batch)
