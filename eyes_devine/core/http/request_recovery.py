"""The request side when llhttp refuses what it is given: still an exchange, and parsing goes on.

Split from :mod:`.request`, whose :class:`~.request.RequestSide` these methods
belong to.  A head llhttp refuses but that has a request line is read as a
server reads it (:mod:`.framing`), flagged ``parse_error``, and a clean head
with the same framing is replayed into a fresh parser, so the body is delimited
and the next message parses as usual.  A head past the limit is flagged
``oversized`` and skipped.  An error after valid HTTP, or framing that cannot
be trusted (``smuggling_suspect``), cuts the request and resynchronises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from httptools import HttpParserError, HttpRequestParser

from eyes_devine.core.http.framing import LenientHead, read_request_head, target_text
from eyes_devine.core.http.headers import MAX_VALUE, text
from eyes_devine.core.http.pairing import Pairing, Request, flag
from eyes_devine.core.http.parsers import new_request_parser
from eyes_devine.core.http.resync import METHODS, REQUEST_LINE
from eyes_devine.core.http.stream import MessageStream
from eyes_devine.core.redact import redact_host, redact_target, redact_user_agent
from eyes_devine.records import EngineCounters

if TYPE_CHECKING:
    from eyes_devine.core.http.connection import HttpConnection

MAX_FALSE_STARTS = 16
"""Request lines that may fail to parse before any request did, before a stream is judged not HTTP."""
VERSIONS = frozenset({"1.0", "1.1"})


class RequestRecovery(MessageStream):
    """What :class:`~.request.RequestSide` does with a head llhttp refused, one past the limit, or an error."""

    __slots__ = ()
    # Held by RequestSide (its __slots__), named here for readers and type checkers.
    _conn: HttpConnection
    _pairing: Pairing
    _counters: EngineCounters
    _parser: HttpRequestParser | None
    _ts: float
    current: Request | None
    seen: bool
    _url: bytes
    _false_starts: int
    _host: bytes | None
    _user_agent: bytes | None
    _content_type: bytes | None
    _content_length: bytes | None
    _transfer_encoding: bytes | None
    _replaying: Request | None

    def _on_failure(self, error: HttpParserError, head: bytes | None, whole: bool, chunk: bytes | memoryview,
                    begin: int, end: int) -> int:
        if head is not None and not _framing_error(error):
            if whole:
                read = read_request_head(head)
                if read is not None and (read.version in VERSIONS or read.method in METHODS):
                    self._read_leniently(read)
                    return end
            elif head.partition(b" ")[0] in METHODS:
                self._wait_for_head()  # a known method: most likely a request with a byte llhttp refuses
                return end
        if not self.seen and (not self._url or self._parser.get_http_version() not in VERSIONS):  # type: ignore[union-attr]
            # No request line parsed yet.  A connection picked up mid-message still shows one
            # later in the segment; anything else is not HTTP.  The search starts past the
            # first byte of the failed part: a request line right there is the one that just
            # failed, and retrying it would never end.
            match = REQUEST_LINE.search(chunk, begin + 1)  # type: ignore[call-overload]
            self._false_starts += 1
            if match is None or self._false_starts > MAX_FALSE_STARTS:
                self._conn.not_http()
                return len(chunk)
            self._cut()
            self._start_resync()
            self._resync(bytes(chunk[match.start():]), self._ts)
            return len(chunk)
        self._counters.http_parse_errors += 1
        self._abandon(error)
        return len(chunk)

    def _abandon(self, error: HttpParserError) -> None:
        """llhttp cannot go on after valid HTTP: the request so far is reported, and parsing resumes at the next
        request line (whatever followed the error in this segment is skipped and may hold requests)."""
        req = self.current
        if req is not None:
            flag(req, "parse_error")
            if _framing_error(error):
                flag(req, "smuggling_suspect")
            self._cut()
        self._pairing.requests_lost(0)
        self._start_resync()

    def _on_rejected_head(self, head: bytes) -> None:
        read = read_request_head(head)
        if read is None:
            self._on_failure(HttpParserError("not a request line"), None, False, head, 0, len(head))
        else:
            self._read_leniently(read)

    def _read_leniently(self, read: LenientHead) -> None:
        """A head llhttp refused, read as a server reads it: still an exchange, flagged ``parse_error``.

        llhttp then gets a clean head with the same framing, so the body is delimited as before
        and the next message parses as usual.
        """
        self._counters.http_parse_errors += 1
        req = self.current
        if req is None:
            self.on_message_begin()
            req = self.current
        assert req is not None
        method = read.method if read.method in METHODS and read.method != b"CONNECT" else b"GET"
        version = read.version if read.version in VERSIONS else "1.1"
        clean = method + b" / HTTP/" + version.encode() + b"\r\n" + read.framing + b"\r\n"
        self._host = self._user_agent = self._content_type = None  # _fill sets them from ``read``, once
        self._content_length, self._transfer_encoding = read.content_length, read.transfer_encoding
        error = self._replay(new_request_parser(self), clean, req)
        self._fill(req, read)
        if error is not None:  # framing llhttp refuses too (conflicting Content-Lengths)
            self._abandon(error)
        else:
            flag(req, "parse_error")

    def _read_partial_head(self, req: Request) -> None:
        """What the whole lines of a head cut short say (a line still arriving is not trusted)."""
        buffer = self._head_buffer
        lines = bytes(buffer[:buffer.rfind(b"\n") + 1])
        read = read_request_head(lines) if lines else None
        if read is not None:
            self._fill(req, read)

    def _fill(self, req: Request, read: LenientHead) -> None:
        """The request as its leniently read head says."""
        req.method = METHODS.get(read.method) or read.method.decode("latin-1")
        target = read.target
        if len(target) > MAX_VALUE:
            target = target[:MAX_VALUE]
            flag(req, "truncated")
        req.target = redact_target(target_text(target))
        req.version = read.version if read.version in VERSIONS else ""
        req.host = redact_host(text(read.host)) if read.host is not None else None
        req.user_agent = redact_user_agent(text(read.user_agent)) if read.user_agent is not None else None
        req.content_type = text(read.content_type) if read.content_type is not None else None

    def _oversized(self, head: bytes) -> None:
        """The head grew past the limit: reported as it began, flagged ``oversized``; parsing resumes at the
        next request line."""
        self._counters.oversized_heads += 1
        read = read_request_head(head)
        req = self.current
        if req is None:
            if read is None or (not self.seen and read.method not in METHODS):
                self._conn.not_http()
                return
            self.on_message_begin()  # llhttp was never given the head: the request begins here
            req = self.current
            assert req is not None
        if not req.method and read is not None:
            self._fill(req, read)
        flag(req, "oversized")
        self._cut()
        self._start_resync()

    # Provided by RequestSide.
    def on_message_begin(self) -> None:
        raise NotImplementedError

    def _cut(self) -> None:
        raise NotImplementedError

    def _start_resync(self) -> None:
        raise NotImplementedError

    def _resync(self, payload: bytes, ts: float) -> None:
        raise NotImplementedError


def _framing_error(error: HttpParserError) -> bool:
    """Whether llhttp refused how the body is delimited: servers disagree there, which is what smuggling uses, so
    such a head is not read leniently (a guess at the framing could hide the smuggled request)."""
    reason = str(error)
    return "Content-Length" in reason or "Transfer-Encoding" in reason
