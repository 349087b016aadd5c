"""Recognise a TLS ClientHello and read its SNI, so HTTPS on HTTP ports is named, not parsed.

Only the first handshake record is looked at.  Every length is bounds-checked
against the bytes actually present, so truncated or hostile input yields
``None`` rather than an exception.
"""

from __future__ import annotations

import re

_RECORD_HEADER = 5
_HANDSHAKE_HEADER = 4
_HOSTNAME = re.compile(rb"[A-Za-z0-9_*-][A-Za-z0-9._*-]{0,252}")


def looks_like_tls(data: bytes) -> bool:
    """Whether ``data`` starts with a TLS handshake record holding a ClientHello (needs 6 bytes)."""
    return len(data) >= 6 and data[0] == 0x16 and data[1] == 0x03 and data[2] <= 0x04 and data[5] == 0x01


def record_length(data: bytes) -> int:
    """Total size of the first TLS record (header included), from its 5-byte header."""
    return _RECORD_HEADER + int.from_bytes(data[3:5], "big")


def parse_client_hello_sni(data: bytes) -> str | None:
    """The host_name from the server_name extension of a ClientHello, lower-cased; else None.

    Works on a truncated record too: whatever extensions are present are read.
    """
    if not looks_like_tls(data):
        return None
    record_end = min(len(data), record_length(data))
    body = _RECORD_HEADER + _HANDSHAKE_HEADER
    end = min(record_end, body + int.from_bytes(data[6:9], "big"))
    pos = body + 2 + 32  # legacy_version, random
    if pos >= end:
        return None
    pos += 1 + data[pos]  # legacy_session_id
    if pos + 2 > end:
        return None
    pos += 2 + int.from_bytes(data[pos : pos + 2], "big")  # cipher_suites
    if pos >= end:
        return None
    pos += 1 + data[pos]  # legacy_compression_methods
    if pos + 2 > end:
        return None
    extensions_end = min(end, pos + 2 + int.from_bytes(data[pos : pos + 2], "big"))
    pos += 2
    while pos + 4 <= extensions_end:
        kind = int.from_bytes(data[pos : pos + 2], "big")
        size = int.from_bytes(data[pos + 2 : pos + 4], "big")
        pos += 4
        if kind == 0:  # server_name
            return _host_name(data[pos : min(pos + size, extensions_end)])
        pos += size
    return None


def _host_name(extension: bytes) -> str | None:
    end = min(len(extension), 2 + int.from_bytes(extension[0:2], "big"))
    pos = 2
    while pos + 3 <= end:
        kind = extension[pos]
        size = int.from_bytes(extension[pos + 1 : pos + 3], "big")
        pos += 3
        name = extension[pos : pos + size]
        if kind == 0:  # host_name
            if len(name) == size and _HOSTNAME.fullmatch(name):
                return bytes(name).decode("ascii").lower()
            return None
        pos += size
    return None


MAX_TLS_RECORD = 5 + 16384 + 2048
"""Most ClientHello bytes collected to read the SNI."""


class HelloCollector:
    """Gathers a client stream's first TLS record across segments until its ClientHello is whole."""

    __slots__ = ("pending", "is_tls")

    def __init__(self) -> None:
        self.pending = b""
        self.is_tls = False
        """The first record's header was seen to be a TLS handshake with a ClientHello."""

    def add(self, payload: bytes) -> bool | None:
        """True once the ClientHello is whole (or as long as we collect), False while more is wanted, None when
        the stream is not TLS after all."""
        buf = self.pending + payload
        self.pending = buf
        if len(buf) < 6:
            return False
        if not looks_like_tls(buf):
            return None
        self.is_tls = True
        return len(buf) >= min(record_length(buf), MAX_TLS_RECORD)

    def server_name(self) -> str | None:
        """The SNI of what was collected, which is then let go."""
        name = parse_client_hello_sni(self.pending)
        self.pending = b""
        return name
