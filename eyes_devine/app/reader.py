"""`eyes-devine read`: a capture file through the same stages as live capture, printed as it is read."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from eyes_devine.adapters.pcapfile import CaptureFile
from eyes_devine.app.pipeline import FileResult, Stages, read_capture
from eyes_devine.app.read_workers import read_shared
from eyes_devine.core.http.framing import HttpLimits
from eyes_devine.enrich.annotator import Annotator
from eyes_devine.enrich.attribution import ContainerMap
from eyes_devine.records import Flow
from eyes_devine.sinks import NO_LOSSES, Record, SinkCounters
from eyes_devine.views.console import make_console
from eyes_devine.views.exchanges import ExchangeLines
from eyes_devine.views.flows_table import flows_table
from eyes_devine.views.progress import file_progress
from eyes_devine.views.stdout import print_records, stdout_text


@dataclass
class _Flows:
    """Flow summaries collected while reading, printed in order of their start at the end."""

    found: list[Flow]
    name: str = "flows"

    def accept(self, record: Record) -> None:
        if type(record) is Flow:
            self.found.append(record)

    def flush(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float) -> None:
        """Nothing to deliver until the end of the file."""

    def counters(self) -> SinkCounters:
        return SinkCounters(len(self.found), len(self.found), 0)

    def losses(self) -> Mapping[str, int]:
        return NO_LOSSES


def read_file(path: str, ports: tuple[int, ...], annotator: Callable[[], Annotator], as_json: bool, flows: bool,
              progress: bool, colour: bool, http_limits: HttpLimits | None = None,
              containers: ContainerMap | None = None, workers: int = 1) -> FileResult:
    """Print the file's exchanges (or, with ``flows``, its flows) on stdout as they complete, attributed to
    ``containers`` as they were at each one's time (see :mod:`~eyes_devine.app.naming`); ``workers`` processes
    share the connections (:mod:`~eyes_devine.app.read_workers`).

    Raises CaptureFileError, UnsupportedLinkType, or ReaderGone when stdout's reader went away.
    """
    # What start-up made (scapy's layers, the modules) stays for good: the cyclic collector need not walk it
    # again in every full collection while hundreds of thousands of records go by.
    gc.freeze()
    CaptureFile(path).close()  # a file that cannot be opened is said once, before any worker starts
    stderr = make_console(stderr=True)
    bar = (lambda: file_progress(stderr, os.path.basename(path))) if progress and stderr.is_terminal else None
    if workers > 1:
        found: list[Flow] = []
        with stdout_text() as out:
            if not as_json and not flows:
                ExchangeLines(out, as_json, colour)  # the header; the workers write the lines under it
            out.flush()
            result, found = read_shared(
                path, ports, workers, out.buffer.write,  # the workers' UTF-8 as it came: no decoding again
                (lambda chunks: _Flows([])) if flows else (lambda chunks: ExchangeLines(chunks, as_json, colour,
                                                                                       header=False)),
                flows, annotator, containers, http_limits, bar)
    else:
        with stdout_text() as out:
            collected = _Flows([])
            stages = Stages([collected] if flows else [ExchangeLines(out, as_json, colour)], annotator(), containers)
            if bar is not None:
                with bar() as advance:
                    result = read_capture(path, ports, stages, advance, flows=flows, http_limits=http_limits)
            else:
                result = read_capture(path, ports, stages, flows=flows, http_limits=http_limits)
        found = collected.found
    if flows:
        print_records(sorted(found, key=lambda flow: flow.ts_first), as_json, flows_table)
    return result
