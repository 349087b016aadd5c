"""Finding where the next HTTP/1.x message starts, after lost or unreadable bytes.

Message starts are not anchored to line starts: bodies seldom end in a newline.
A whole line is required, and a match holds no LF before its end, so a match
spanning segments always starts after the last LF of the earlier one: those
bytes are carried to the next segment, with the timestamps of the segments they
came from, so a message found there gets the time its first byte was seen.
"""

from __future__ import annotations

import re

METHOD_NAMES = (
    "GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH PROPFIND PROPPATCH MKCOL COPY MOVE LOCK "
    "UNLOCK SEARCH REPORT MKCALENDAR MKACTIVITY CHECKOUT MERGE ACL BIND UNBIND REBIND LINK UNLINK "
    "PURGE NOTIFY SUBSCRIBE UNSUBSCRIBE QUERY SOURCE"
).split()
METHODS = {name.encode(): name for name in METHOD_NAMES}
"""The methods llhttp knows, as bytes -> one shared str each."""
REQUEST_LINE = re.compile(rb"(?<![A-Z])(?:" + b"|".join(METHODS) + rb") [^\s]+ HTTP/1\.[01]\r\n")
STATUS_LINE = re.compile(rb"HTTP/1\.[01] [1-5][0-9][0-9](?: [^\r\n]*)?\r\n")

MAX_CARRY = 8192
"""Longest partial line carried between segments while resynchronising."""
_MAX_CARRY_PARTS = 32  # segment timestamps kept for a carried line


class Scanner:
    """Finds the next message start matching ``pattern``, across segment boundaries."""

    __slots__ = ("_pattern", "_carry", "_parts")

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self._pattern = pattern
        self._carry = b""
        self._parts: list[tuple[int, float]] = []  # (offset in carry, ts of the bytes from there)

    def reset(self) -> None:
        self._carry = b""
        self._parts = []

    def scan(self, payload: bytes, ts: float) -> tuple[bytes | None, float, int, bool]:
        """(bytes from the message start on or None, ts of its first byte, bytes skipped,
        whether skipped bytes of the same segment came right before the message)."""
        carry = self._carry
        parts = self._parts
        parts.append((len(carry), ts))
        buf = carry + payload if carry else payload
        # Both kinds of line hold "HTTP/1.": bytes.find runs at memory speed, the pattern at a few bytes per
        # step, so garbage on an HTTP port (or a body after a gap) costs little to skip.
        match = self._pattern.search(buf) if b"HTTP/1." in buf else None
        if match is not None:
            start = match.start()
            self.reset()
            segment_start = max(offset for offset, _ in parts if offset <= start)
            return buf[start:], _ts_at(parts, start), start, segment_start < start
        cut = buf.rfind(b"\n") + 1
        if len(buf) - cut > MAX_CARRY:
            cut = len(buf)
        self._carry = buf[cut:]
        if self._carry:
            later = [(offset - cut, when) for offset, when in parts if offset > cut]
            self._parts = [(0, _ts_at(parts, cut)), *later[-_MAX_CARRY_PARTS:]]
        else:
            self._parts = []
        return None, ts, cut, False


def _ts_at(parts: list[tuple[int, float]], position: int) -> float:
    ts = parts[0][1]
    for offset, when in parts:
        if offset > position:
            break
        ts = when
    return ts
