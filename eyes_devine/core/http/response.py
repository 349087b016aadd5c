"""The server's byte stream: responses parsed with llhttp (httptools), each paired with a request at its status line.

1xx responses (except 101) keep the pairing and wait for the final one.  An
exchange is emitted when its final response completes (responses delimited by
the connection closing, when it closes).  llhttp cannot be told that a response
answers HEAD, nor that a 2xx answers CONNECT: a HEAD response's exchange is
emitted when its head is done and a fresh parser takes the next byte, and a
tunnel turns the connection off.  Both happen between two parts of the stream
(:mod:`.stream`), as does parsing the client's held bytes after a refused
Upgrade, so the next response pairs with the requests they hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from eyes_devine.core.http.framing import LenientHead, looks_like_response, read_response_head
from eyes_devine.core.http.headers import (
    CONTENT_LENGTH,
    CONTENT_TYPE,
    HEADER_CODES,
    TRANSFER_ENCODING,
    UPGRADE,
    other_spelling,
)
from eyes_devine.core.http.pairing import Request, flag
from eyes_devine.core.http.parsers import Mode, new_response_parser
from eyes_devine.core.http.resync import STATUS_LINE, Scanner
from eyes_devine.core.http.stream import MessageStream

if TYPE_CHECKING:
    from eyes_devine.core.http.connection import HttpConnection

_FIRST, _PARSE, _RESYNC, _OFF = Mode.FIRST, Mode.PARSE, Mode.RESYNC, Mode.OFF


class ResponseSide(MessageStream):
    """Responses from one connection's server; llhttp calls the ``on_*`` methods while parsing."""

    __slots__ = ("_conn", "_requests", "_pairing", "_counters", "mode", "_parser", "ts", "answering", "_orphan",
                 "active", "_started", "_status", "_reason", "_content_type", "_content_length", "_transfer_encoding",
                 "_body", "_head_complete", "_informational", "seen", "garbage", "_restart", "_replaying", "_scanner",
                 "_overlap_next", "_upgrade")

    def __init__(self, conn: HttpConnection) -> None:
        self._init_stream(conn.limits.max_header_bytes)
        self._conn = conn
        self._requests = conn.requests
        self._pairing = conn.pairing
        self._counters = conn.counters
        self.mode = _FIRST
        self._parser: HttpResponseParser | None = None
        self._overlap_next = False
        """Differing copies were seen of the bytes the next response begins with."""
        self.ts = 0.0
        """Timestamp of the bytes being parsed, read by the callbacks."""
        self.answering: Request | None = None
        """The request the response in progress answers."""
        self._orphan = False
        """The response in progress answers nothing we saw."""
        self.active = False
        """A response message is in progress."""
        self._started = 0.0
        self._status = 0
        self._reason = b""
        self._content_type: bytes | None = None
        self._content_length: bytes | None = None
        self._transfer_encoding: bytes | None = None
        self._upgrade: bytes | None = None
        """The Upgrade header of the response in progress (a 101's protocol)."""
        self._body = 0
        self._head_complete = False
        self._informational = False
        """The message in progress is a 1xx."""
        self.seen = False
        self.garbage = False
        """The server's first bytes were not HTTP."""
        self._restart = False
        """A HEAD response's head is done: a fresh parser takes the next byte."""
        self._replaying: LenientHead | None = None
        """The leniently read head whose status and framing a clean head is telling llhttp."""
        self._scanner = Scanner(STATUS_LINE)

    # -- what the connection calls --------------------------------------------------------

    def data(self, payload: bytes, ts: float) -> None:
        mode = self.mode
        if mode is _PARSE:
            self.feed(payload, ts)
        elif mode is _OFF or not payload:
            return
        elif mode is _FIRST:
            self.mode = _PARSE
            self._parser = new_response_parser(self)
            self.feed(payload, ts)
        else:
            self._resync(payload, ts)

    def gap(self, missing: int, ts: float) -> None:
        mode = self.mode
        if mode is _FIRST or mode is _RESYNC:
            self._start_resync(missing, mode is _FIRST)  # a first byte starts a response
            return
        if mode is not _PARSE:
            return
        req = self.answering
        if req is not None:
            flag(req, "gap")
        if self.active and self._head_complete and not self._informational:
            if self._body_until_close():
                self._body += missing
                return
            remaining = self._body_remaining()
            if remaining > 0:
                fill = min(missing, remaining)
                self._conn.feed_zeros(self.feed, fill, ts)
                missing -= fill
                if not missing:
                    return
        # Between responses a server sends nothing else: a hole there began a response;
        # so did one that cut a response before its status line.
        began = not self.active or not self._status
        self.cut()
        self._start_resync(missing, began)

    def close(self) -> None:
        """The connection ended: a response delimited by the close is complete, any other is cut."""
        if (self.active and self.mode is _PARSE and self._head_complete and not self._informational
                and self._body_until_close()):
            self.on_message_complete()
        else:
            self.cut()

    def cut(self) -> None:
        """The response in progress will not be seen whole: report what is known."""
        req = self.answering
        active = self.active
        self.active = self._orphan = False
        if req is None:
            return
        self.answering = None
        status = self._status
        if active and (status >= 200 or status == 101):
            flag(req, "truncated")
            req.lost = True  # when its response really ended is unknown
            self._conn.emit(req, status, self._reason, self._started, self._content_type, self._body)
        else:
            # Its final response has not started: let the next pairing decide.
            self._pairing.queue.appendleft(req)

    def stop(self) -> None:
        self.mode = _OFF

    def release(self) -> None:
        self._parser = None

    # -- llhttp's callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._status = 0
        self._content_type = self._content_length = self._transfer_encoding = self._upgrade = None
        self._body = 0
        self._head_complete = self._informational = False
        if self._replaying is not None:
            return  # a clean head for the response already begun: its start and reason stand
        self._started = self.ts
        self._reason = b""
        self.active = True
        self._pairing.response_messages += 1

    def on_status(self, reason: bytes) -> None:
        if not self._status:
            self._status_line()
        if self._replaying is None:
            self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        code = HEADER_CODES.get(name)
        if code is None:
            code = other_spelling(name)
        if code == CONTENT_TYPE:
            self._content_type = value
        elif code == CONTENT_LENGTH:
            self._content_length = value
        elif code == TRANSFER_ENCODING:
            self._transfer_encoding = value
        elif code == UPGRADE:
            self._upgrade = value

    def on_headers_complete(self) -> None:
        if self._conn.off:
            return  # a tunnel's bytes, parsed on past the response that opened it
        if not self._status:
            self._status_line()
        replaying = self._replaying
        if replaying is not None:
            self._content_type = replaying.content_type
        self._head_complete = self.seen = True
        self._in_head = False
        status = self._status
        if status < 200 and status != 101:
            self._informational = True
            return
        req = self.answering
        if status == 101 and req is not None and (self._upgrade or b"").strip().lower() == b"h2c":
            self.answering = None  # RFC 9113 3.2 (RFC 7540 3.2): its response comes on HTTP/2's stream 1
            self._conn.upgrade_to_http2(req, self.ts)
            return
        if status == 101 or (req is not None and req.method == "CONNECT" and status < 300):
            self._conn.go_off()
            if req is not None:
                self.answering = None
                flag(req, "upgrade" if status == 101 else "tunnel")
                self._conn.emit(req, status, self._reason, self._started, self._content_type, 0)
            return
        if req is not None and req.method == "HEAD":
            self.answering = None
            self.active = False
            self._conn.emit(req, status, self._reason, self._started, self._content_type, 0)
            self._restart = self._between = True

    def on_body(self, body: bytes) -> None:
        self._body += len(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        if not self.active:
            return  # a HEAD response, emitted when its head was done
        self.active = False
        if self._informational:
            return
        req = self.answering
        if req is None:
            self._orphan = False
            return
        self.answering = None
        self._conn.emit(req, self._status, self._reason, self._started, self._content_type, self._body)

    # -- parsing --------------------------------------------------------------------------

    def feed(self, chunk: bytes | memoryview, ts: float) -> None:
        """Parse in-order bytes (in ``PARSE`` mode)."""
        self.ts = ts
        pairing = self._pairing
        pairing.response_bytes += len(chunk)
        if self._in_head and not self._head_buffer:
            # The usual segment: one whole response, given at once when no request awaits an answer llhttp
            # cannot frame alone (HEAD, CONNECT, Upgrade) and nothing after the head can begin another response.
            end = chunk.find(b"\r\n\r\n") + 4
            if 3 < end <= self._max_head and (
                    (not self._requests.special and chunk.count(b"HTTP/1.") == 1) or end == len(chunk)):
                messages = pairing.response_messages
                try:
                    self._parser.feed_data(chunk)  # type: ignore[union-attr]
                except HttpParserUpgrade as upgrade:
                    self._on_upgrade(chunk[upgrade.args[0]:])
                except HttpParserError as error:
                    self._whole_refused(error, chunk, end, messages)
                    return
                if self._between:
                    self._between = False
                    self._between_parts()
                return
        self._cut_stream(chunk)

    def _between_parts(self) -> None:
        if self._restart:
            self._restart = False
            self._parser = new_response_parser(self)
            self._reset_head()
        self._conn.between_pieces()

    def _status_line(self) -> None:
        """The status line is parsed: this is when a response is paired."""
        self._status = self._parser.get_status_code()  # type: ignore[union-attr]
        if self.answering is None and not self._orphan and not self._conn.off:
            self.answering = self._pairing.pair(self._started)
            self._orphan = self.answering is None
        if self._replaying is not None and self.answering is not None:
            flag(self.answering, "parse_error")
        if self._overlap_next and self.answering is not None:
            self._overlap_next = False
            flag(self.answering, "overlap_conflict")

    def overlap(self) -> None:
        """The next bytes are the receiver's copy of bytes sent twice, differently: flag the exchange holding them."""
        if self.active and self.answering is not None:
            flag(self.answering, "overlap_conflict")
        else:
            self._overlap_next = True

    def _on_failure(self, error: HttpParserError, head: bytes | None, whole: bool, chunk: bytes | memoryview,
                    begin: int, end: int) -> int:
        conn = self._conn
        if conn.off:
            return len(chunk)
        if head is not None and (self.seen or conn.requests.seen):
            if whole:
                read = read_response_head(head)
                if read is not None:
                    self._read_leniently(read)
                    return end
            elif looks_like_response(head):
                self._wait_for_head()
                return end
        if self.seen or conn.requests.seen:
            self._counters.http_parse_errors += 1
            req = self.answering or self._pairing.head_request()
            if req is not None:
                flag(req, "parse_error")
        else:
            # A connection picked up mid-response looks like this too: let the client decide.
            self.garbage = True
        began = not self.active or not self._status  # the bad bytes started a response
        self.cut()
        self._start_resync(0, began)
        return len(chunk)

    def _on_rejected_head(self, head: bytes) -> None:
        read = read_response_head(head)
        if read is not None:
            self._read_leniently(read)
        else:
            self._on_failure(HttpParserError("not a status line"), None, False, head, 0, len(head))

    def _read_leniently(self, read: LenientHead) -> None:
        """A head llhttp refused, read as a client reads it: its status pairs and its exchange is flagged
        ``parse_error``; llhttp then gets a clean head with the same status and framing."""
        self._counters.http_parse_errors += 1
        if self.answering is not None:
            flag(self.answering, "parse_error")
        self._reason = read.reason
        clean = b"HTTP/1.1 %d X\r\n" % read.status + read.framing + b"\r\n"
        error = self._replay(new_response_parser(self), clean, read)
        if error is not None:  # framing llhttp refuses too
            self._on_failure(error, None, False, clean, 0, len(clean))

    def _oversized(self, head: bytes) -> None:
        """The head grew past the limit: its request is flagged ``oversized``; parsing resumes at the next
        status line."""
        self._counters.oversized_heads += 1
        line_end = head.find(b"\n") + 1
        if not self.active and line_end and looks_like_response(head):
            # The head never reached llhttp (it came whole): its status line does, so the response pairs.
            try:
                self._parser.feed_data(head[:line_end])  # type: ignore[union-attr]
            except HttpParserError:
                pass  # a status line llhttp refuses: the request is flagged below and waits for the next one
        req = self.answering or self._pairing.head_request()
        if req is not None:
            flag(req, "oversized")
        self.cut()
        self._start_resync(0, True)

    def _body_seen(self) -> int:
        return self._body

    def _messages_begun(self) -> int:
        return self._pairing.response_messages

    def _on_upgrade(self, rest: bytes | memoryview) -> None:
        self._conn.go_off()
        self._rest(rest)

    def _rest(self, rest: bytes | memoryview) -> None:
        if self.mode is _RESYNC:
            self._resync(bytes(rest), self.ts)
        elif self._conn.inner is not None and rest:  # the server's first HTTP/2 frames, in the 101's segment
            self._conn.inner.data(False, bytes(rest), self.ts)

    def _body_until_close(self) -> bool:
        te = self._transfer_encoding
        if te is None:
            return self._content_length is None
        return b"chunked" not in te.lower()

    def _body_remaining(self) -> int:
        if self._transfer_encoding is not None or self._content_length is None:
            return 0
        try:
            return int(self._content_length) - self._body
        except ValueError:
            return 0

    def _start_resync(self, missing: int, began: bool) -> None:
        self.mode = _RESYNC
        self._scanner.reset()
        self._reset_head()
        self._pairing.responses_lost(missing, began)

    def _resync(self, payload: bytes, ts: float) -> None:
        rest, start_ts, skipped, _ = self._scanner.scan(payload, ts)
        self._pairing.lost_bytes += skipped
        if rest is not None:
            self.mode = _PARSE
            self._parser = new_response_parser(self)
            self._reset_head()
            self.feed(rest, start_ts)
