"""The few header fields an exchange keeps: Host, User-Agent, Content-Type, the two that frame a body, and a
101's Upgrade.

llhttp hands each header to the sides' ``on_header`` callbacks, which find the
name without lower-casing every one (:data:`HEADER_CODES`).  A head llhttp
rejects is read with :func:`request_fields` and :func:`response_fields` instead.
Credential headers are never stored.  Text is decoded as UTF-8 (invalid bytes
replaced) and cut to :data:`MAX_VALUE` characters.
"""

from __future__ import annotations

HOST, USER_AGENT, CONTENT_TYPE, CONTENT_LENGTH, TRANSFER_ENCODING, UPGRADE = 1, 2, 3, 4, 5, 6
MAX_VALUE = 1024
"""Longest header value kept (characters of the raw bytes)."""


def _header_codes() -> dict[bytes, int]:
    """Header name -> code, for the usual spellings; other spellings go through lower()."""
    codes: dict[bytes, int] = {}
    for name, code in (
        (b"host", HOST),
        (b"user-agent", USER_AGENT),
        (b"content-type", CONTENT_TYPE),
        (b"content-length", CONTENT_LENGTH),
        (b"transfer-encoding", TRANSFER_ENCODING),
        (b"upgrade", UPGRADE),  # a 101's: h2c hands the connection to the HTTP/2 decoder
        # Frequent names of the same lengths, so they skip the lower() fallback.
        (b"date", 0),
        (b"vary", 0),
        (b"etag", 0),
        (b"connection", 0),
        (b"keep-alive", 0),
        (b"set-cookie", 0),
        (b"x-request-id", 0),
        (b"expires", 0),
        (b"referer", 0),
    ):
        for variant in (name, name.title(), name.capitalize(), name.upper()):
            codes[variant] = code
    return codes


HEADER_CODES = _header_codes()
"""Usual spellings -> code; the callbacks look here first (a call per header costs too much on the hot path)."""
_HEADER_LENGTHS = frozenset(len(name) for name, code in HEADER_CODES.items() if code)


def other_spelling(name: bytes) -> int:
    """The code of a header name not in :data:`HEADER_CODES` as spelled, else 0."""
    if len(name) not in _HEADER_LENGTHS:
        return 0
    return HEADER_CODES.get(name.lower(), 0)


_BLANKS = b" \t\r"  # around a value read from a rejected head


def _field(lower: bytes, head: bytes, needle: bytes) -> bytes | None:
    at = lower.find(needle)
    if at < 0:
        return None
    start = at + len(needle)
    stop = lower.find(b"\n", start)
    return head[start:stop if stop >= 0 else len(head)].strip(_BLANKS)


def request_fields(head: bytes) -> tuple[bytes | None, bytes | None, bytes | None, bytes | None, bytes | None]:
    """(Host, User-Agent, Content-Type, Content-Length, Transfer-Encoding) of a whole request head."""
    lower = head.lower()
    return (_field(lower, head, b"\nhost:"), _field(lower, head, b"\nuser-agent:"),
            _field(lower, head, b"\ncontent-type:"), _field(lower, head, b"\ncontent-length:"),
            _field(lower, head, b"\ntransfer-encoding:"))


def response_fields(head: bytes) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(Content-Type, Content-Length, Transfer-Encoding) of a whole response head."""
    lower = head.lower()
    return (_field(lower, head, b"\ncontent-type:"), _field(lower, head, b"\ncontent-length:"),
            _field(lower, head, b"\ntransfer-encoding:"))


def text(value: bytes) -> str:
    return value[:MAX_VALUE].decode("utf-8", "replace")
