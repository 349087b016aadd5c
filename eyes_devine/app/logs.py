"""Service log lines for `eyes-devine run`: human text or JSON for log shippers, one line per event.

Lines come from several threads (capture, Docker watcher, writer), so writes
are serialised; every line is flushed at once so `journalctl -f` and
`docker logs -f` show it as it happens.

Messages and fields carry text from outside (Docker's errors, container
names, targets), and the log is read on terminals: in text lines the message
is escaped as the tables escape it (``\x1b``, ``\u202e``) and a field value is
JSON-quoted when it holds anything unusual; JSON lines escape every non-ASCII
character (``ensure_ascii``), so both stay exact and inert.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import TextIO

from eyes_devine.views.safe import safe

LOG_FORMATS = ("text", "json")


class ServiceLog:
    """``info``/``warning``/``error`` with a message and optional fields (counters, names)."""

    def __init__(self, stream: TextIO, log_format: str = "text") -> None:
        if log_format not in LOG_FORMATS:
            raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}")
        self._stream = stream
        self._json = log_format == "json"
        self._lock = threading.Lock()

    def info(self, message: str, **fields: object) -> None:
        self._write("info", message, fields)

    def warning(self, message: str, **fields: object) -> None:
        self._write("warning", message, fields)

    def error(self, message: str, **fields: object) -> None:
        self._write("error", message, fields)

    def _write(self, level: str, message: str, fields: dict[str, object]) -> None:
        now = time.time()
        if self._json:
            line = json.dumps({"ts": round(now, 3), "level": level, "msg": message, **fields}, default=str)
        else:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
            extra = "".join(f" {key}={_text(value)}" for key, value in fields.items())
            marker = "" if level == "info" else f"{level.upper()}: "
            line = f"{stamp} {marker}{safe(message)}{extra}"
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (BrokenPipeError, ValueError):
                pass  # the log reader went away; the service keeps running


def _text(value: object) -> str:
    """A field value on one line: quoted (JSON escapes) when it has spaces, quotes, = or control characters,
    so a URL an attacker chose can neither split the line nor fake another field."""
    text = str(value)
    if not text or any(c in text for c in ' "=\\') or not text.isprintable():
        return json.dumps(text)
    return text


class MemoryLog:
    """The same calls as ServiceLog, kept for a full-screen view to show instead of printing over it."""

    def __init__(self, keep: int = 3) -> None:
        self.problems: deque[str] = deque(maxlen=keep)
        """Latest warnings and errors, newest last."""
        self.last_error: str | None = None

    def info(self, message: str, **fields: object) -> None:
        pass  # the view shows counters itself

    def warning(self, message: str, **fields: object) -> None:
        self.problems.append(message)

    def error(self, message: str, **fields: object) -> None:
        self.problems.append(message)
        self.last_error = message
