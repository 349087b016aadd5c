"""Message heads: where one ends, how big it may grow, and what a head llhttp rejects still says.

Each direction feeds llhttp whole messages' parts: a head once its blank line
has arrived, then the body by its framing (:mod:`.request`, :mod:`.response`).
Heads are collected here until then, so llhttp never sees a header line in
pieces (httptools joins pieces by concatenation: a header sent in many
segments would cost quadratic time), and the collection stops at
``max_header_bytes``, as servers stop (the message is then ``oversized``).

A head llhttp rejects (a byte it does not allow in the target, a bare LF, an
odd header name, an unknown version) is read here leniently instead, as
servers read it: the request line's method, target and version, the status
line's code and reason, and the few header fields an exchange keeps.  Only the
framing then goes back to llhttp, in a clean head of its own, so the body is
still delimited by llhttp and parsing goes on with the next message.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from eyes_devine.core.http.headers import request_fields, response_fields
from eyes_devine.core.signatures import HeaderRules
from eyes_devine.core.tls.keylog import TlsKeys

DEFAULT_MAX_HEADER_BYTES = 65536
"""Most bytes of one message head (request or status line and headers), as nginx, Node and Go allow by default."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The bounds of one connection's HTTP parsing, and what is judged while it parses."""

    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    header_rules: HeaderRules | None = None
    """Attack signatures judged in request heads (their values are not kept); None: none."""
    tls_keys: TlsKeys | None = None
    """The key log TLS connections are decrypted with; None: TLS is named by its SNI only."""

    def __post_init__(self) -> None:
        if self.max_header_bytes < 64:
            raise ValueError(f"max_header_bytes must be at least 64, not {self.max_header_bytes}")


def head_end(buf: bytes | bytearray, start: int) -> int:
    """The position just past the blank line ending a head that begins before ``start`` (or at it), else -1.

    A CRLF blank line is the rule; a bare LF one (as nginx accepts) is looked for only when there is none.
    """
    end = buf.find(b"\r\n\r\n", start)
    if end >= 0:
        return end + 4
    end = buf.find(b"\n\n", start)
    return end + 2 if end >= 0 else -1


def _percent(error: UnicodeDecodeError) -> tuple[str, int]:
    """Bytes that are not UTF-8, written as a URL carries them: %XX."""
    return "".join(f"%{byte:02X}" for byte in error.object[error.start:error.end]), error.end  # type: ignore[union-attr]


codecs.register_error("eyes-devine-percent", _percent)


def target_text(raw: bytes) -> str:
    """A request target as text: UTF-8 kept as it is (control characters included), other bytes as %XX."""
    return raw.decode("utf-8", "eyes-devine-percent")


_METHOD_START = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}[ \t]")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VERSION = re.compile(rb"HTTP/(\d)\.(\d)")
_BLANKS = b" \t"


def looks_like_request(start: bytes | bytearray) -> bool:
    """Whether the first bytes of a message can begin a request line: a method token and a space."""
    return _METHOD_START.match(start) is not None


def looks_like_response(start: bytes | bytearray) -> bool:
    return start[:5] == b"HTTP/"


@dataclass(slots=True)
class LenientHead:
    """What a rejected head says, read as a server would."""

    method: bytes = b""
    target: bytes = b""
    version: str = ""
    status: int = 0
    reason: bytes = b""
    host: bytes | None = None
    user_agent: bytes | None = None
    content_type: bytes | None = None
    content_length: bytes | None = None
    transfer_encoding: bytes | None = None
    framing: bytes = b""
    """The header lines llhttp needs to delimit the body (Content-Length, Transfer-Encoding), cleaned."""


def read_request_head(head: bytes) -> LenientHead | None:
    """The request line and kept fields of a head llhttp rejected; None when its first line is no request line.

    Read by hand, not by a regular expression: an attacker chooses these bytes, and the cost must stay linear.
    """
    first, _, rest = head.partition(b"\n")
    first = first.rstrip(b"\r")
    method, blank, after = first.partition(b" ")
    if not blank:
        method, blank, after = first.partition(b"\t")
    if not blank or not _TOKEN.fullmatch(method) or len(method) > 32:
        return None
    after = after.strip(_BLANKS)
    version = ""
    last_blank = max(after.rfind(b" "), after.rfind(b"\t"))
    if last_blank >= 0:
        match = _VERSION.fullmatch(after, last_blank + 1)
        if match is not None:
            version = f"{match[1].decode()}.{match[2].decode()}"
            after = after[:last_blank].rstrip(_BLANKS)
    host, user_agent, content_type, content_length, transfer_encoding = request_fields(b"\n" + rest)
    read = LenientHead(method=method, target=after, version=version, host=host, user_agent=user_agent,
                       content_type=content_type, content_length=content_length,
                       transfer_encoding=transfer_encoding)
    read.framing = _framing(read)
    return read


def read_response_head(head: bytes) -> LenientHead | None:
    """The status line and kept fields of a head llhttp rejected; None when its first line is no status line."""
    first, _, rest = head.partition(b"\n")
    first = first.rstrip(b"\r")
    match = _VERSION.match(first)
    if match is None:
        return None
    after = first[match.end():].lstrip(_BLANKS)
    status = after[:3]
    if len(status) < 3 or not status.isdigit() or after[3:4] not in (b"", b" ", b"\t"):
        return None
    content_type, content_length, transfer_encoding = response_fields(b"\n" + rest)
    read = LenientHead(version=f"{match[1].decode()}.{match[2].decode()}", status=int(status),
                       reason=after[3:].strip(_BLANKS), content_type=content_type, content_length=content_length,
                       transfer_encoding=transfer_encoding)
    read.framing = _framing(read)
    return read


def _framing(read: LenientHead) -> bytes:
    """Clean header lines for the framing fields, for llhttp to delimit the body by."""
    lines = []
    if read.content_length is not None:
        lines.append(b"Content-Length: " + read.content_length + b"\r\n")
    if read.transfer_encoding is not None:
        lines.append(b"Transfer-Encoding: " + read.transfer_encoding + b"\r\n")
    return b"".join(line for line in lines if b"\r" not in line[:-2] and b"\0" not in line)
