"""Exchanges as a streaming table: one aligned line each, printed as they complete.

A rich Table needs every row before it can draw; `read` on a large capture has
hundreds of thousands, so rows are formatted here directly, with colour only
on a terminal that wants it.  The method and the target are escaped as every
table escapes outside text (:mod:`eyes_devine.views.safe`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from typing import TextIO

from eyes_devine.records import Exchange
from eyes_devine.sinks import NO_LOSSES, Record, SinkCounters
from eyes_devine.views.cells import endpoint, latency
from eyes_devine.views.jsonl import json_line
from eyes_devine.views.safe import safe

STATUS_COLOURS = {2: "\x1b[32m", 3: "\x1b[36m", 4: "\x1b[33m", 5: "\x1b[31m"}
RESET = "\x1b[0m"
FIXED = "{:<12} {:<21} {:<21} {:<7} {:>3} {:>9} {:>9}  "
HEADER = ("time", "client", "server", "method", "st", "latency", "bytes")


class ExchangeTable:
    def __init__(self, out: TextIO, width: int, colour: bool) -> None:
        self.out = out
        self.colour = colour
        self.target_width = max(16, width - len(FIXED.format(*HEADER)))

    def header(self) -> None:
        self.out.write(FIXED.format(*HEADER) + "target [flags] (alerts first: !rule)\n")

    def line(self, exchange: Exchange) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(exchange.ts)) + f".{int(exchange.ts * 1000) % 1000:03d}"
        status = str(exchange.status) if exchange.status is not None else "-"
        line = FIXED.format(
            clock,
            endpoint(exchange.client_ip, exchange.client_port),
            endpoint(exchange.server_ip, exchange.server_port),
            safe(exchange.method)[:7],
            status,
            latency(exchange.latency_ms),
            exchange.response_bytes,
        )
        target = safe(exchange.target)
        if exchange.flags:
            target = f"{target} [{','.join(exchange.flags)}]"
        alerts = f"!{',!'.join(exchange.alerts)} " if exchange.alerts else ""  # first, so no cut can hide them
        if len(alerts) + len(target) > self.target_width:
            target = target[: max(0, self.target_width - len(alerts) - 1)] + "…"
        if alerts and self.colour:
            alerts = f"{STATUS_COLOURS[5]}{alerts}{RESET}"
        if self.colour and exchange.status is not None:
            colour = STATUS_COLOURS.get(exchange.status // 100)
            if colour:
                line = line.replace(f" {status} ", f" {colour}{status}{RESET} ", 1)
        return line + alerts + target


class ExchangeLines:
    """The output of `read`: each exchange as it completes, as JSON Lines or a line of the streaming table.

    A sink that writes straight to ``out`` (a buffered stdout): `read` has no
    live capture to protect, and its output is the point.
    """

    name = "stdout"

    def __init__(self, out: TextIO, as_json: bool, colour: bool = False, header: bool = True) -> None:
        """``header``: the table's header line first (a worker's lines go under the parent's header)."""
        self._write = out.write
        self._out = out
        self._accepted = 0
        if as_json:
            self._line = json_line
        else:
            table = ExchangeTable(out, shutil.get_terminal_size((120, 24)).columns, colour=colour)
            if header:
                table.header()
            self._line = table.line

    def accept(self, record: Record) -> None:
        if type(record) is Exchange:
            self._accepted += 1
            self._write(self._line(record) + "\n")

    def flush(self, timeout: float) -> bool:
        self._out.flush()
        return True

    def close(self, timeout: float) -> None:
        self._out.flush()

    def counters(self) -> SinkCounters:
        return SinkCounters(self._accepted, self._accepted, 0)

    def losses(self) -> Mapping[str, int]:
        return NO_LOSSES
