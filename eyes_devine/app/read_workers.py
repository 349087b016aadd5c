"""`read --workers N`: one capture file read by N processes, each following one share of its connections.

Every worker reads the whole file (reading and decoding a frame costs little
beside reassembly and HTTP) and gives its engine only the connections of its
share (:func:`~eyes_devine.core.engine.share_of`), so a connection is whole in
one worker.  Each worker also runs the stages after the core (attribution,
annotation) and formats its lines, and hands the parent finished text in
chunks of whole lines; the parent only writes them.  Each connection's
exchanges keep their order; the order across connections, which finishes
first, may differ from one worker count to another.

Workers are forked (Linux and macOS): they inherit the parent's container
map and build their own annotator (its reputation thread, if any, does not
survive a fork).  Nothing is written before they start, so no buffer is
copied into them.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from multiprocessing.connection import Connection, wait

from eyes_devine.app.pipeline import FileResult, Stages, read_capture
from eyes_devine.core.engine import SHARED_COUNTERS
from eyes_devine.core.http.framing import HttpLimits
from eyes_devine.core.http.request import MAX_SERVER_NAMES
from eyes_devine.enrich.annotator import Annotator
from eyes_devine.enrich.attribution import ContainerMap
from eyes_devine.records import EngineCounters, Flow
from eyes_devine.sinks import Sink

CHUNK = 1 << 16
"""Bytes of formatted lines a worker gathers before handing them over."""
_OUTPUT, _PROGRESS, _FLOWS, _RESULT, _ERROR = b"o", b"p", b"f", b"r", b"e"
_POSITION = struct.Struct("qq")


class WorkerLost(Exception):
    """A worker ended without finishing (killed, out of memory); the message is one line."""


def can_fork() -> bool:
    """Workers need fork (not on Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


class _Chunks:
    """A text stream for a worker's lines: whole lines go to the parent in chunks."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._parts: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        self._parts.append(text)
        self._size += len(text)
        if self._size >= CHUNK:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self._parts:
            self._conn.send_bytes(_OUTPUT + "".join(self._parts).encode("utf-8", "replace"))
            self._parts, self._size = [], 0


def _work(conn: Connection, path: str, ports: tuple[int, ...], index: int, count: int,
          output: Callable[[_Chunks], Sink], flows: bool, annotator: Callable[[], Annotator],
          containers: ContainerMap | None, http_limits: HttpLimits | None) -> None:
    """One worker: its share of the file through the engine and the stages, out through ``conn``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent ends the workers
    chunks = _Chunks(conn)
    try:
        sink = output(chunks)
        stages = Stages([sink], annotator(), containers)

        def progress(position: int, size: int) -> None:
            conn.send_bytes(_PROGRESS + _POSITION.pack(position, size))

        result = read_capture(path, ports, stages, progress if index == 0 else None, flows=flows,
                              http_limits=http_limits, shard=(index, count))
        chunks.flush()
        if flows:
            conn.send_bytes(_FLOWS + pickle.dumps(sink.found, pickle.HIGHEST_PROTOCOL))  # type: ignore[attr-defined]
        conn.send_bytes(_RESULT + pickle.dumps(result, pickle.HIGHEST_PROTOCOL))
    except BrokenPipeError:
        pass  # the parent went away (its reader did): nothing to tell
    except Exception as error:  # noqa: BLE001 - every failure goes to the parent, which says it in one line
        conn.send_bytes(_ERROR + pickle.dumps(error, pickle.HIGHEST_PROTOCOL))
    finally:
        conn.close()


def read_shared(path: str, ports: tuple[int, ...], workers: int, write: Callable[[bytes], object],
                output: Callable[[_Chunks], Sink], flows: bool, annotator: Callable[[], Annotator],
                containers: ContainerMap | None, http_limits: HttpLimits | None,
                progress: Callable[[], object] | None = None) -> tuple[FileResult, list[Flow]]:
    """Read ``path`` with ``workers`` processes; their lines go to ``write`` as they come, as UTF-8 bytes.

    ``output`` makes a worker's sink from its stream of text; with ``flows`` that sink collects flows (its
    ``found``), which come back at the end.  ``progress`` opens the progress bar, once the workers run.  Raises
    what a worker raised (CaptureFileError, UnsupportedLinkType), after stopping the others.
    """
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    sys.stdout.flush()
    sys.stderr.flush()
    processes, conns = [], []
    for index in range(workers):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_work, name=f"eyes-devine-read-{index}", daemon=True,
                                  args=(sender, path, ports, index, workers, output, flows, annotator,
                                        containers, http_limits))
        process.start()
        sender.close()
        processes.append(process)
        conns.append(receiver)
    results: list[FileResult] = []
    found: list[Flow] = []
    error: BaseException | None = None
    bar = progress() if progress is not None else None
    advance = bar.__enter__() if bar is not None else None  # type: ignore[attr-defined]
    try:
        pending = list(conns)
        while pending:
            for conn in wait(pending):
                try:
                    message = conn.recv_bytes()  # type: ignore[union-attr]
                except EOFError:
                    pending.remove(conn)
                    continue
                kind, body = message[:1], message[1:]
                if kind == _OUTPUT:
                    write(body)
                elif kind == _PROGRESS and advance is not None:
                    advance(*_POSITION.unpack(body))
                elif kind == _FLOWS:
                    found.extend(pickle.loads(body))
                elif kind == _RESULT:
                    results.append(pickle.loads(body))
                elif kind == _ERROR and error is None:
                    error = pickle.loads(body)
                    break
            if error is not None:
                break  # the others' output no longer matters: the finally ends them
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)  # type: ignore[attr-defined]
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
        for conn in conns:
            conn.close()
    if error is not None:
        raise error
    if len(results) != workers:
        dead = [process.exitcode for process in processes if process.exitcode]
        raise WorkerLost(f"a read worker ended without its result (exit {dead[0] if dead else '?'}): "
                         "the output is incomplete")
    return merge(results, time.perf_counter() - started), found


def merge(results: Sequence[FileResult], seconds: float) -> FileResult:
    """The workers' results as one: the decoder's counters from any one (each decoded the whole file), the
    others summed."""
    first = results[0]
    counters = EngineCounters()
    for field in fields(EngineCounters):
        name = field.name
        if name == "tls_server_names":
            names: list[str] = []
            for result in results:
                names.extend(name for name in result.counters.tls_server_names if name not in names)
            counters.tls_server_names = names[:MAX_SERVER_NAMES]
        elif name in SHARED_COUNTERS:
            setattr(counters, name, getattr(first.counters, name))
        else:
            setattr(counters, name, sum(getattr(result.counters, name) for result in results))
    summaries = None if first.flow_summaries is None else sum(result.flow_summaries or 0 for result in results)
    errors = [result.error for result in results if result.error is not None]
    return FileResult(counters, first.frames, seconds, errors[0] if errors else None, summaries)
