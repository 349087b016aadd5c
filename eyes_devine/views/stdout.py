"""Printing to stdout as tcpdump does: our own buffer, and a reader that goes away (``| head``) ends it quietly."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from eyes_devine.records import Exchange, Flow
from eyes_devine.views.console import make_console
from eyes_devine.views.jsonl import flow_json_line, json_line


class ReaderGone(Exception):
    """stdout's reader went away; the command stops quietly with exit code 0."""


@contextmanager
def stdout_text(buffer: int = 1 << 16) -> Iterator[TextIO]:
    """A buffered text stream on stdout's descriptor (one write per line would dominate a large output, and
    PYTHONUNBUFFERED may be set); flushed at the end.  Raises ReaderGone when the reader went away."""
    out = open(sys.stdout.fileno(), "w", buffering=buffer, encoding="utf-8", errors="replace", closefd=False)
    try:
        yield out
        out.flush()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's own flush cannot fail
        raise ReaderGone from None


def print_records(found: Sequence[Exchange] | Sequence[Flow], as_json: bool,
                  table: Callable[[Any, float], Any], exchange_line: Callable[[Exchange], str] = json_line) -> None:
    """Records as JSON Lines (exchanges with ``exchange_line``, or flows, by their type), or as ``table`` on the
    terminal."""
    with stdout_text() as out:
        if as_json:
            for record in found:
                out.write((flow_json_line(record) if type(record) is Flow else exchange_line(record)) + "\n")  # type: ignore[arg-type]
        else:
            out.flush()
            make_console().print(table(found, time.time()))
