"""HTTP/1.x exchanges from the two reassembled byte streams of one TCP connection.

:class:`HttpConnection` is sans-I/O: the TCP layer drives it through the
:class:`~eyes_devine.records.StreamHandler` calls and it hands finished
:class:`~eyes_devine.records.Exchange` records to ``emit``.  Framing is httptools'
(llhttp); this module adds what a passive observer needs on top of it: pairing,
gaps, HEAD, upgrades, and bounded memory.

Pairing
    Every request is queued when its first byte is parsed and the queue is
    answered in FIFO order, so pipelined requests pair correctly.  A response
    is paired when its status line is parsed; 1xx responses (except 101) keep
    the pairing and wait for the final one.  An exchange is emitted when its
    final response completes (responses delimited by the connection closing,
    at :meth:`HttpConnection.closed`), always in request order.  A request is
    ``pipelined`` when it was sent while the previous request's response had not
    finished (a predecessor later found to have lost its response in a gap does
    not count).

HEAD
    llhttp cannot be told that a response answers HEAD.  While a HEAD request is
    outstanding, response bytes are fed in pieces that end right after each
    ``CRLFCRLF``; when a HEAD response's headers complete the exchange is
    emitted and a fresh response parser takes over at the next byte, so nothing
    after it is lost and nothing is read as its body.

Gaps (``gap(direction, missing, ts)``)
    * Inside a body of known remaining length (Content-Length, or a response
      read until close) the hole is filled with ``missing`` zero bytes (or just
      counted): the parser stays in sync and the exchange is flagged ``gap``.
    * Otherwise the message in progress is cut.  A request keeps its place in
      the queue (``gap``, ``truncated``); one whose request line was lost
      becomes a lost-requests marker.  A response whose final status was seen is
      emitted (``gap``, ``truncated``); a paired request whose final response had
      not started goes back to the head of the queue.  The direction then
      resynchronises: bytes are skipped up to the next complete request line
      (known method, ``SP target SP HTTP/1.x CRLF``) or status line
      (``HTTP/1.x NNN ... CRLF``) - anywhere, as bodies seldom end in a newline -
      and a fresh parser starts there.
    * Client side: the hole may have swallowed whole requests, so a *marker* is
      queued in its place.  A hole that began between requests (or before the
      first byte) surely began one, unless a response already went unpaired
      since the client's last segment (the TCP layer may report the hole after
      that response).  A response reaching a marker is dropped as answering a
      lost request (counted in :attr:`HttpConnection.unpaired_responses`) when a
      request surely was lost and none was dropped yet, or when the next queued
      request was not sent before the response started; otherwise the marker is
      discarded and FIFO pairing resumes.
    * Server side: the first response after the hole, starting at time T, pairs
      with the *latest* queued request sent before T (a surely lost request
      counts, and then the response is dropped); earlier queued requests are
      emitted with ``gap``, ``no_response``.  This is exact for clients that wait
      for each response before sending the next request (nearly all of them),
      whatever the hole swallowed.
    * Pipelining clients (two requests seen in one segment, or a clean
      exchange found pipelined) make timing useless, so counts are estimated
      instead: a marker takes round(hole / mean request size) responses (less
      half a request if the hole began inside one), and after a server hole
      round(lost bytes / mean response size) responses are taken as lost - at
      least one if the hole began between responses or before a status line.
    * A response with no request sent before it is dropped as unpaired.
    Parse errors after valid HTTP are counted in ``http_parse_errors``, flag the
    message in progress ``parse_error`` and resynchronise the same way (the rest
    of the failing segment is skipped, since llhttp does not report where it
    stopped).

Not HTTP
    A client stream starting with a TLS ClientHello is counted in
    ``tls_streams`` (its SNI kept in ``tls_server_names``).  A client stream
    whose first request line does not parse as HTTP/1.x, and holds no request
    line later in that segment (a connection picked up mid-message), is counted
    in ``non_http_streams``; so is one where only the server spoke, and never
    HTTP.  Either way the connection is then ignored, as is everything after a
    ``101`` or a ``2xx`` answer to ``CONNECT`` (flags ``upgrade``/``tunnel``).
    An Upgrade or CONNECT request that is refused leaves the connection HTTP.

Only Host, User-Agent, Content-Type, Content-Length and Transfer-Encoding
values are looked at; credential headers are never stored.  Text is decoded as
UTF-8 (invalid bytes replaced) and cut to :data:`MAX_VALUE` characters.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from types import SimpleNamespace

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser, HttpResponseParser

from eyes_devine.core.redact import redact_target
from eyes_devine.core.tcp import Endpoints
from eyes_devine.core.tls import looks_like_tls, parse_client_hello_sni, record_length
from eyes_devine.records import EngineCounters, Exchange

MAX_QUEUED = 1000
"""Requests waiting for a response per connection; older ones are given up as ``no_response``."""
MAX_VALUE = 1024
"""Longest target/header value kept (characters of the raw bytes)."""
MAX_HELD = 65536
"""Client bytes held while an Upgrade/CONNECT request waits for its verdict."""
MAX_CARRY = 8192
"""Longest partial line carried between segments while resynchronising."""
MAX_FALSE_STARTS = 16
"""Request lines that may fail to parse before any request did, before a stream is judged not HTTP."""
_MAX_CARRY_PARTS = 32  # segment timestamps kept for a carried line
MAX_TLS_RECORD = 5 + 16384 + 2048
"""Most ClientHello bytes collected to read the SNI."""
MAX_SERVER_NAMES = 100
"""Length bound of ``EngineCounters.tls_server_names``."""

# Per-direction modes.
_FIRST = 0  # nothing seen yet
_PARSE = 1
_RESYNC = 2  # skipping to the next message start
_HOLD = 3  # client only: bytes after an Upgrade/CONNECT request, held until the response says
_TLS = 4  # client only: collecting a ClientHello
_OFF = 5

# Why a response callback stopped llhttp.
_RESTART = 1  # a HEAD response's headers are done: a fresh parser takes the next byte
_TUNNEL = 2

_VERSIONS = frozenset({"1.0", "1.1"})
_ZEROS = memoryview(bytes(65536))

_HOST, _USER_AGENT, _CONTENT_TYPE, _CONTENT_LENGTH, _TRANSFER_ENCODING = 1, 2, 3, 4, 5


def _header_codes() -> dict[bytes, int]:
    """Header name -> code, for the usual spellings; other spellings go through lower()."""
    codes: dict[bytes, int] = {}
    for name, code in (
        (b"host", _HOST),
        (b"user-agent", _USER_AGENT),
        (b"content-type", _CONTENT_TYPE),
        (b"content-length", _CONTENT_LENGTH),
        (b"transfer-encoding", _TRANSFER_ENCODING),
        # Frequent names of the same lengths, so they skip the lower() fallback.
        (b"date", 0),
        (b"vary", 0),
        (b"etag", 0),
        (b"connection", 0),
        (b"keep-alive", 0),
        (b"set-cookie", 0),
        (b"x-request-id", 0),
    ):
        for variant in (name, name.title(), name.capitalize(), name.upper()):
            codes[variant] = code
    return codes


_HEADER_CODES = _header_codes()
_HEADER_LENGTHS = frozenset(len(name) for name, code in _HEADER_CODES.items() if code)

_METHOD_NAMES = (
    "GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE PATCH PROPFIND PROPPATCH MKCOL COPY MOVE LOCK "
    "UNLOCK SEARCH REPORT MKCALENDAR MKACTIVITY CHECKOUT MERGE ACL BIND UNBIND REBIND LINK UNLINK "
    "PURGE NOTIFY SUBSCRIBE UNSUBSCRIBE QUERY SOURCE"
).split()
_METHODS = {name.encode(): name for name in _METHOD_NAMES}
# Message starts for resynchronisation.  Not anchored to line starts: bodies seldom end in a
# newline.  A whole line is required, and a match holds no LF before its end, so a match
# spanning segments always starts after the last LF of the earlier one (see the carry).
_REQUEST_LINE = re.compile(rb"(?<![A-Z])(?:" + b"|".join(_METHODS) + rb") [^\s]+ HTTP/1\.[01]\r\n")
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] [1-5][0-9][0-9](?: [^\r\n]*)?\r\n")


class _Scanner:
    """Finds the next message start after lost bytes, across segment boundaries.

    Bytes after the last LF are carried to the next segment (a match holds no LF before
    its end), with the timestamps of the segments they came from, so a message found
    there gets the time its first byte was seen.
    """

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
        match = self._pattern.search(buf)
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


class _Halt(Exception):
    """Raised inside a response callback to stop llhttp exactly where it is."""


class _Req:
    """One request, from its first byte until its exchange is emitted."""

    __slots__ = (
        "ts",
        "prev",
        "method",
        "target",
        "host",
        "version",
        "user_agent",
        "content_type",
        "body",
        "flags",
        "lost",
        "done",
        "resp_end",
    )

    def __init__(self, ts: float, prev: _Req | None) -> None:
        self.ts = ts
        self.prev = prev  # the previous request, if still unanswered when this one began
        self.method = ""  # set once the request line is parsed
        self.target = ""
        self.host: str | None = None
        self.version = ""
        self.user_agent: str | None = None
        self.content_type: str | None = None
        self.body = 0
        self.flags: list[str] | None = None
        self.lost = False  # its response was lost or cut: when it ended is unknown
        self.done = False  # emitted
        self.resp_end: float | None = None


class _Lost:
    """Queue marker for requests lost in a client-side hole.

    ``count`` is how many responses it takes in all (None: not decided yet) and ``dropped``
    how many it took so far; ``ts`` is set when at least one request surely was lost, sent
    no later than ``ts``; ``missing`` is the size of the hole, for estimating the count, and
    ``in_request`` whether the hole began inside a request (so part of it only finished that one).
    """

    __slots__ = ("count", "dropped", "ts", "missing", "in_request")

    def __init__(self, count: int | None, ts: float | None, missing: int, in_request: bool = False) -> None:
        self.count = count
        self.dropped = 0
        self.ts = ts
        self.missing = missing
        self.in_request = in_request


def _flag(req: _Req, flag: str) -> None:
    flags = req.flags
    if flags is None:
        req.flags = [flag]
    elif flag not in flags:
        flags.append(flag)


class HttpConnection:
    """Turns one TCP connection's byte streams into :class:`Exchange` records (a ``StreamHandler``)."""

    def __init__(self, endpoints: Endpoints, emit: Callable[[Exchange], None], counters: EngineCounters) -> None:
        self._endpoints = endpoints
        self._emit_cb = emit
        self._counters = counters
        self.unpaired_responses = 0
        """Responses dropped because no seen request could have caused them."""

        self._ts = 0.0  # timestamp of the bytes being parsed, read by the callbacks
        self._off = False
        self._closed = False
        self._q: deque[_Req | _Lost] = deque()
        self._last_req: _Req | None = None
        self._heads = 0  # HEAD requests not yet emitted: response bytes go in pieces
        self._pipelining = False  # the client was seen pipelining (clean evidence only)

        # Client direction.
        self._c_mode = _FIRST
        self._reqp: HttpRequestParser | None = None
        self._req_callbacks = SimpleNamespace(
            on_message_begin=self._q_begin,
            on_url=self._q_url,
            on_header=self._q_header,
            on_headers_complete=self._q_headers_complete,
            on_body=self._q_body,
            on_message_complete=self._q_message_complete,
        )
        self._creq: _Req | None = None  # request being parsed
        self._c_url = b""
        self._c_host: bytes | None = None
        self._c_ua: bytes | None = None
        self._c_ctype: bytes | None = None
        self._c_cl: bytes | None = None
        self._c_te: bytes | None = None
        self._c_seen = False  # a request's headers parsed: this is HTTP
        self._c_false_starts = 0  # request lines that failed before any request parsed
        self._c_bytes = 0
        self._c_msgs = 0
        self._c_feeds = 0  # client segments parsed
        self._c_orphans = 0  # responses left unpaired since the last client segment
        self._c_ended_in = -1  # the segment in which the last request ended
        self._c_scan = _Scanner(_REQUEST_LINE)
        self._held: bytearray | None = None
        self._held_ts = 0.0
        self._hold_req: _Req | None = None
        self._tls_buf = b""
        self._tls_counted = False

        # Server direction.
        self._s_mode = _FIRST
        self._resp: HttpResponseParser | None = None
        self._resp_callbacks = SimpleNamespace(
            on_message_begin=self._s_begin,
            on_status=self._s_on_status,
            on_header=self._s_header,
            on_headers_complete=self._s_headers_complete,
            on_body=self._s_body_cb,
            on_message_complete=self._s_message_complete,
        )
        self._cur: _Req | None = None  # request the response in progress answers
        self._s_orphan = False  # the response in progress answers nothing we saw
        self._s_active = False  # a response message is in progress
        self._s_ts = 0.0
        self._s_status = 0
        self._s_reason = b""
        self._s_ctype: bytes | None = None
        self._s_cl: bytes | None = None
        self._s_te: bytes | None = None
        self._s_body = 0
        self._s_hdone = False
        self._s_info = False  # the message in progress is a 1xx
        self._s_seen = False
        self._s_garbage = False  # the server's first bytes were not HTTP
        self._s_halt = 0
        self._s_tail = b""  # last bytes fed while splitting for HEAD
        self._s_bytes = 0
        self._s_msgs = 0
        self._s_uncertain = False  # response bytes were lost since the last pairing
        self._s_lost = 0  # ... how many
        self._s_sure = 0  # ... and how many responses surely began in them
        self._s_scan = _Scanner(_STATUS_LINE)

    # ------------------------------------------------------------------ StreamHandler

    def data(self, from_client: bool, payload: bytes, ts: float) -> None:
        if from_client:
            if self._c_mode == _PARSE:
                self._feed_client(payload, ts)
            else:
                self._client_other(payload, ts)
        elif self._s_mode == _PARSE:
            self._feed_server(payload, ts)
        else:
            self._server_other(payload, ts)

    def gap(self, from_client: bool, missing: int, ts: float) -> None:
        if self._off or self._closed:
            return
        if from_client:
            self._client_gap(missing, ts)
        else:
            self._server_gap(missing, ts)

    def closed(self, ts: float) -> None:
        if self._closed:
            return
        self._closed = True
        self._ts = ts
        if self._c_mode == _TLS:
            self._finish_tls(self._tls_buf)
        elif self._s_garbage and not self._s_seen and not self._c_seen:
            self._non_http()
        if (
            self._s_active
            and self._s_mode == _PARSE
            and self._s_hdone
            and not self._s_info
            and self._body_until_close()
        ):
            self._s_message_complete()
        else:
            self._cut_response()
        if self._creq is not None:
            _flag(self._creq, "truncated")
            self._cut_request()
        q = self._q
        while q:
            entry = q.popleft()
            if type(entry) is _Req:
                _flag(entry, "no_response")
                self._emit(entry, None, None, None, None, 0)
        # Parsers and callback tables point back at self: break the cycles now.
        self._go_off()
        self._reqp = self._resp = self._req_callbacks = self._resp_callbacks = None
        self._last_req = None

    # ------------------------------------------------------------------ client direction

    def _feed_client(self, chunk: bytes | memoryview, ts: float) -> None:
        self._ts = ts
        self._c_bytes += len(chunk)
        self._c_feeds += 1
        self._c_orphans = 0
        try:
            self._reqp.feed_data(chunk)
        except HttpParserUpgrade as exc:
            self._hold(bytes(chunk[exc.args[0] :]), ts)
        except HttpParserError as exc:
            self._client_failed(exc, chunk, ts)

    def _client_other(self, payload: bytes, ts: float) -> None:
        mode = self._c_mode
        if mode == _OFF or not payload:
            return
        if mode == _FIRST:
            if payload[0] == 0x16:  # never the start of an HTTP request; TLS handshake record?
                self._c_mode = _TLS
                self._tls(payload)
                return
            self._c_mode = _PARSE
            self._reqp = self._new_request_parser()
            self._feed_client(payload, ts)
        elif mode == _RESYNC:
            self._client_resync(payload, ts)
        elif mode == _HOLD:
            held = self._held
            if held is not None:
                if len(held) + len(payload) > MAX_HELD:
                    self._held = None
                else:
                    held += payload
        else:
            self._tls(payload)

    def _new_request_parser(self) -> HttpRequestParser:
        parser = HttpRequestParser(self._req_callbacks)
        # A monitor must follow what servers accept, not enforce the RFC: CL+TE is
        # flagged as smuggling instead of stopping the parse.
        parser.set_dangerous_leniencies(lenient_headers=True, lenient_chunked_length=True, lenient_keep_alive=True)
        return parser

    def _q_begin(self) -> None:
        last = self._last_req
        if last is not None and not last.done:
            req = _Req(self._ts, last)
            if self._c_ended_in == self._c_feeds:
                # Two requests in one segment: no response can have come in between.
                self._pipelining = True
        else:
            req = _Req(self._ts, None)
        self._last_req = self._creq = req
        self._c_url = b""
        self._c_host = self._c_ua = self._c_ctype = self._c_cl = self._c_te = None
        self._c_msgs += 1
        q = self._q
        q.append(req)
        if len(q) > MAX_QUEUED:
            self._evict()

    def _q_url(self, url: bytes) -> None:
        if len(self._c_url) <= MAX_VALUE:
            self._c_url += url

    def _q_header(self, name: bytes, value: bytes) -> None:
        code = _HEADER_CODES.get(name)
        if code is None:
            if len(name) not in _HEADER_LENGTHS:
                return
            code = _HEADER_CODES.get(name.lower())
        if not code:
            return
        if code == _HOST:
            self._c_host = value
        elif code == _USER_AGENT:
            self._c_ua = value
        elif code == _CONTENT_TYPE:
            self._c_ctype = value
        elif code == _CONTENT_LENGTH:
            self._c_cl = value
        else:
            self._c_te = value

    def _q_headers_complete(self) -> None:
        req = self._creq
        self._finish_request(req)
        if self._c_te is not None and self._c_cl is not None:
            _flag(req, "smuggling_suspect")
        self._c_seen = True

    def _q_body(self, body: bytes) -> None:
        self._creq.body += len(body)

    def _q_message_complete(self) -> None:
        self._creq = None
        self._c_ended_in = self._c_feeds

    def _finish_request(self, req: _Req) -> None:
        """Fill the request record from what was parsed (request line known)."""
        parser = self._reqp
        method = parser.get_method()
        req.method = _METHODS.get(method) or method.decode("latin-1")
        version = parser.get_http_version()
        req.version = version if version in _VERSIONS else ""
        url = self._c_url
        if len(url) > MAX_VALUE:
            url = url[:MAX_VALUE]
            _flag(req, "truncated")
        req.target = redact_target(url.decode("utf-8", "replace"))
        if self._c_host is not None:
            req.host = self._c_host[:MAX_VALUE].decode("utf-8", "replace")
        if self._c_ua is not None:
            req.user_agent = self._c_ua[:MAX_VALUE].decode("utf-8", "replace")
        if self._c_ctype is not None:
            req.content_type = self._c_ctype[:MAX_VALUE].decode("utf-8", "replace")
        if req.method == "HEAD":
            self._heads += 1

    def _cut_request(self) -> None:
        """The request being parsed will not be seen whole."""
        req = self._creq
        if req is None:
            return
        self._creq = None
        if req.done:
            return
        if self._c_url:
            if not req.method:
                self._finish_request(req)
            _flag(req, "truncated")
            return
        # Not even its request line: it cannot be reported, but its response may come.
        q = self._q
        if q and q[-1] is req:
            q.pop()
            req.lost = req.done = True
            self._add_marker(0, req.ts)

    def _client_failed(self, exc: HttpParserError, chunk: bytes | memoryview, ts: float) -> None:
        if not self._c_seen and (not self._c_url or self._reqp.get_http_version() not in _VERSIONS):
            # No request line parsed yet.  A connection picked up mid-message still shows one
            # later in the segment; anything else is not HTTP.  The search starts past the
            # first byte: a request line right there is the one that just failed, and
            # retrying it would never end.
            match = _REQUEST_LINE.search(chunk, 1)
            self._c_false_starts += 1
            if match is None or self._c_false_starts > MAX_FALSE_STARTS:
                self._non_http()
                return
            self._cut_request()
            self._c_mode = _RESYNC
            self._c_scan.reset()
            self._client_resync(bytes(chunk[match.start() :]), ts)
            return
        self._counters.http_parse_errors += 1
        req = self._creq
        if req is not None:
            _flag(req, "parse_error")
            reason = str(exc)
            if "Content-Length" in reason or "Transfer-Encoding" in reason:
                _flag(req, "smuggling_suspect")
            self._cut_request()
        # Whatever followed the error in this segment is skipped and may hold requests.
        self._add_marker(0)
        self._c_mode = _RESYNC
        self._c_scan.reset()

    def _client_gap(self, missing: int, ts: float) -> None:
        mode = self._c_mode
        if mode == _FIRST:
            self._c_mode = _RESYNC
            self._add_marker(missing, self._sure_lost_request(ts))  # a first byte starts a request
            return
        if mode == _HOLD:
            self._held = None
            return
        if mode == _RESYNC:
            self._c_scan.reset()
            self._add_marker(missing)
            return
        if mode != _PARSE:
            return
        req = self._creq
        if req is not None:
            _flag(req, "gap")
            remaining = self._request_body_remaining(req)
            if remaining > 0:
                fill = min(missing, remaining)
                self._feed_zeros(True, fill, ts)
                missing -= fill
                if not missing:
                    return
            self._cut_request()
            self._add_marker(missing, in_request=True)
        else:
            # Between requests a client sends nothing else: the hole began a request.
            self._add_marker(missing, self._sure_lost_request(ts))
        if self._c_mode == _PARSE:
            self._c_mode = _RESYNC
            self._c_scan.reset()

    def _sure_lost_request(self, ts: float) -> float | None:
        """``ts`` for a marker of a surely lost request, unless its answer already went unpaired.

        The TCP layer may report a client hole only after the response that acknowledged it.
        """
        return None if self._c_orphans else ts

    def _request_body_remaining(self, req: _Req) -> int:
        """Body bytes still due for a Content-Length request whose headers are parsed, else 0."""
        if not req.method or self._c_te is not None or self._c_cl is None:
            return 0
        try:
            return int(self._c_cl) - req.body
        except ValueError:
            return 0

    def _client_resync(self, payload: bytes, ts: float) -> None:
        rest, start_ts, skipped, after_other = self._c_scan.scan(payload, ts)
        q = self._q
        if q and type(q[-1]) is _Lost:
            q[-1].missing += skipped
        if rest is not None:
            if after_other:
                # The tail of one request and the start of the next in one segment.
                self._pipelining = True
            self._c_mode = _PARSE
            self._reqp = self._new_request_parser()
            self._feed_client(rest, start_ts)

    def _hold(self, rest: bytes, ts: float) -> None:
        """An Upgrade/CONNECT request was parsed: what follows depends on the response."""
        self._c_mode = _HOLD
        self._held = bytearray(rest)
        self._held_ts = ts
        req = self._hold_req = self._last_req
        if req is None or req.done:
            self._resume_client()

    def _resume_client(self) -> None:
        """The held-for request was answered without switching protocols: parse on.

        Runs as soon as that exchange is emitted (possibly inside a response callback), so
        requests sent after it are queued before the next response is paired.
        """
        self._hold_req = None
        if self._c_mode != _HOLD:
            return
        held = self._held
        self._held = None
        self._c_mode = _RESYNC
        self._c_scan.reset()
        if held is None:  # overflowed or hit by a gap
            self._add_marker(0)
        elif held:
            ts = self._ts
            self._client_resync(bytes(held), self._held_ts)
            self._ts = ts

    def _add_marker(self, missing: int, sure: float | None = None, in_request: bool = False) -> None:
        """Queue a lost-requests marker (``sure``: a request surely was lost, by that time)."""
        q = self._q
        if q and type(q[-1]) is _Lost:
            last = q[-1]
            last.count = None
            last.missing += missing
            if last.ts is None:
                last.ts = sure
        else:
            q.append(_Lost(None, sure, missing, in_request))

    def _evict(self) -> None:
        """Too many requests unanswered: give up the oldest, and drop its response if it comes."""
        q = self._q
        oldest = q.popleft()
        marker = _Lost(0, None, 0)
        if type(oldest) is _Lost:  # markers are never adjacent: a request follows
            marker, oldest = oldest, q.popleft()
        _flag(oldest, "no_response")
        _flag(oldest, "overflow")
        self._emit(oldest, None, None, None, None, 0)
        if marker.count is not None:
            marker.count += 1
        q.appendleft(marker)

    # ------------------------------------------------------------------ TLS and non-HTTP

    def _tls(self, payload: bytes) -> None:
        buf = self._tls_buf + payload
        if len(buf) < 6:
            self._tls_buf = buf
            return
        if not looks_like_tls(buf):
            self._non_http()
            return
        if not self._tls_counted:
            self._tls_counted = True
            self._counters.tls_streams += 1
        if len(buf) < min(record_length(buf), MAX_TLS_RECORD):
            self._tls_buf = buf
            return
        self._finish_tls(buf)

    def _finish_tls(self, buf: bytes) -> None:
        self._tls_buf = b""
        if not self._tls_counted:
            if buf:
                self._non_http()
            return
        self._go_off()
        name = parse_client_hello_sni(buf)
        names = self._counters.tls_server_names
        if name is not None and len(names) < MAX_SERVER_NAMES and name not in names:
            names.append(name)

    def _non_http(self) -> None:
        if not self._off:
            self._counters.non_http_streams += 1
            self._go_off()
            # The bytes that looked like a request start were not one.
            self._q.clear()
            self._creq = self._last_req = None
            self._heads = 0

    def _go_off(self) -> None:
        self._off = True
        self._c_mode = self._s_mode = _OFF
        self._held = None

    # ------------------------------------------------------------------ server direction

    def _feed_server(self, chunk: bytes | memoryview, ts: float) -> None:
        self._ts = ts
        if self._heads:
            self._feed_server_pieces(chunk)
        else:
            self._s_bytes += len(chunk)
            try:
                self._resp.feed_data(chunk)
            except (HttpParserError, HttpParserUpgrade) as exc:
                self._server_failed(exc)

    def _feed_server_pieces(self, chunk: bytes | memoryview) -> None:
        """Feed so every piece ends right after a CRLFCRLF: a HEAD response's header block
        then always ends a piece, and a fresh parser can take over at the next byte."""
        tail = self._s_tail
        buf = tail + bytes(chunk)
        shift = len(tail)
        size = len(buf) - shift
        view = memoryview(buf)[shift:]
        start = 0
        pos = buf.find(b"\r\n\r\n")
        while start < size and self._s_mode == _PARSE:
            end = size if pos < 0 else pos + 4 - shift
            self._s_bytes += end - start
            try:
                self._resp.feed_data(view[start:end])
            except (HttpParserError, HttpParserUpgrade) as exc:
                if not self._server_failed(exc):
                    break
            start = end
            if pos >= 0:
                pos = buf.find(b"\r\n\r\n", pos + 1)
        self._s_tail = buf[-3:]

    def _server_other(self, payload: bytes, ts: float) -> None:
        mode = self._s_mode
        if mode == _OFF or not payload:
            return
        if mode == _FIRST:
            self._s_mode = _PARSE
            self._resp = self._new_response_parser()
            self._feed_server(payload, ts)
        else:
            self._server_resync(payload, ts)

    def _new_response_parser(self) -> HttpResponseParser:
        parser = HttpResponseParser(self._resp_callbacks)
        parser.set_dangerous_leniencies(lenient_headers=True, lenient_chunked_length=True, lenient_keep_alive=True)
        return parser

    def _s_begin(self) -> None:
        self._s_ts = self._ts
        self._s_status = 0
        self._s_reason = b""
        self._s_ctype = self._s_cl = self._s_te = None
        self._s_body = 0
        self._s_hdone = self._s_info = False
        self._s_active = True
        self._s_msgs += 1

    def _s_on_status(self, reason: bytes) -> None:
        if not self._s_status:
            self._s_status_line()
        self._s_reason += reason

    def _s_status_line(self) -> None:
        """The status line is parsed: this is when a response is paired."""
        self._s_status = self._resp.get_status_code()
        if self._cur is None and not self._s_orphan:
            self._cur = self._pair(self._s_ts)
            self._s_orphan = self._cur is None

    def _s_header(self, name: bytes, value: bytes) -> None:
        code = _HEADER_CODES.get(name)
        if code is None:
            if len(name) not in _HEADER_LENGTHS:
                return
            code = _HEADER_CODES.get(name.lower())
        if code == _CONTENT_TYPE:
            self._s_ctype = value
        elif code == _CONTENT_LENGTH:
            self._s_cl = value
        elif code == _TRANSFER_ENCODING:
            self._s_te = value

    def _s_headers_complete(self) -> None:
        if not self._s_status:
            self._s_status_line()
        self._s_hdone = self._s_seen = True
        status = self._s_status
        if status < 200 and status != 101:
            self._s_info = True
            return
        req = self._cur
        if status == 101 or (req is not None and req.method == "CONNECT" and status < 300):
            self._go_off()
            if req is not None:
                self._cur = None
                _flag(req, "upgrade" if status == 101 else "tunnel")
                self._emit(req, status, self._s_reason, self._s_ts, self._s_ctype, 0)
            self._s_halt = _TUNNEL
            raise _Halt
        if req is not None and req.method == "HEAD":
            self._cur = None
            self._s_active = False
            self._emit(req, status, self._s_reason, self._s_ts, self._s_ctype, 0)
            self._s_halt = _RESTART
            raise _Halt

    def _s_body_cb(self, body: bytes) -> None:
        self._s_body += len(body)

    def _s_message_complete(self) -> None:
        self._s_active = False
        if self._s_info:
            return
        req = self._cur
        if req is None:
            self._s_orphan = False
            return
        self._cur = None
        self._emit(req, self._s_status, self._s_reason, self._s_ts, self._s_ctype, self._s_body)

    def _server_failed(self, exc: Exception) -> bool:
        """Handle llhttp stopping; True when feeding can go on with the current parser."""
        halt = self._s_halt
        if halt:
            self._s_halt = 0
            if halt == _RESTART:
                self._resp = self._new_response_parser()
                return True
            return False
        if self._off:
            return False
        if isinstance(exc, HttpParserUpgrade):
            self._go_off()
            return False
        if self._s_seen or self._c_seen:
            self._counters.http_parse_errors += 1
            req = self._cur
            if req is None and self._q and type(self._q[0]) is _Req:
                req = self._q[0]
            if req is not None:
                _flag(req, "parse_error")
        else:
            # A connection picked up mid-response looks like this too: let the client decide.
            self._s_garbage = True
        began = not self._s_active or not self._s_status  # the bad bytes started a response
        self._cut_response()
        self._start_server_resync(0, began)
        return False

    def _server_gap(self, missing: int, ts: float) -> None:
        mode = self._s_mode
        if mode == _FIRST or mode == _RESYNC:
            self._start_server_resync(missing, mode == _FIRST)  # a first byte starts a response
            return
        if mode != _PARSE:
            return
        req = self._cur
        if req is not None:
            _flag(req, "gap")
        if self._s_active and self._s_hdone and not self._s_info:
            if self._body_until_close():
                self._s_body += missing
                return
            remaining = self._response_body_remaining()
            if remaining > 0:
                fill = min(missing, remaining)
                self._feed_zeros(False, fill, ts)
                missing -= fill
                if not missing:
                    return
        # Between responses a server sends nothing else: a hole there began a response;
        # so did one that cut a response before its status line.
        began = not self._s_active or not self._s_status
        self._cut_response()
        self._start_server_resync(missing, began)

    def _body_until_close(self) -> bool:
        te = self._s_te
        if te is None:
            return self._s_cl is None
        return b"chunked" not in te.lower()

    def _response_body_remaining(self) -> int:
        if self._s_te is not None or self._s_cl is None:
            return 0
        try:
            return int(self._s_cl) - self._s_body
        except ValueError:
            return 0

    def _start_server_resync(self, missing: int, began: bool) -> None:
        self._s_mode = _RESYNC
        self._s_scan.reset()
        self._s_tail = b""
        if not self._s_uncertain:
            self._s_uncertain = True
            self._s_lost = self._s_sure = 0
        self._s_lost += missing
        self._s_sure += began

    def _server_resync(self, payload: bytes, ts: float) -> None:
        rest, start_ts, skipped, _ = self._s_scan.scan(payload, ts)
        self._s_lost += skipped
        if rest is not None:
            self._s_mode = _PARSE
            self._resp = self._new_response_parser()
            self._feed_server(rest, start_ts)

    def _cut_response(self) -> None:
        """The response in progress will not be seen whole: report what is known."""
        req = self._cur
        active = self._s_active
        self._s_active = self._s_orphan = False
        if req is None:
            return
        self._cur = None
        status = self._s_status
        if active and (status >= 200 or status == 101):
            _flag(req, "truncated")
            req.lost = True  # when its response really ended is unknown
            self._emit(req, status, self._s_reason, self._s_ts, self._s_ctype, self._s_body)
        else:
            # Its final response has not started: let the next pairing decide.
            self._q.appendleft(req)

    def _pair(self, t: float) -> _Req | None:
        """The queued request a response starting at ``t`` answers (None: unpaired)."""
        q = self._q
        if self._s_uncertain:
            return self._pair_after_loss(t)
        while q:
            head = q[0]
            if type(head) is _Req:
                return q.popleft()
            if head.count is None and self._pipelining and self._c_msgs:
                # A pipelining client may have lost several requests: estimate from the hole
                # size, less half a request when the hole began by finishing one.
                lost = head.missing * self._c_msgs / self._c_bytes - 0.5 * head.in_request
                head.count = max(round(lost), head.ts is not None)
            if head.count is not None:
                take = head.dropped < head.count
            elif head.ts is not None and not head.dropped:
                take = True  # a request surely was lost: this is its response
            else:
                # Does the next request we saw come after this response?  Then it answers a lost one.
                take = len(q) < 2 or q[1].ts >= t
            if take:
                head.dropped += 1
                break
            q.popleft()
        self._unpaired()
        return None

    def _unpaired(self) -> None:
        self.unpaired_responses += 1
        self._counters.unpaired_responses += 1
        self._c_orphans += 1

    def _pair_after_loss(self, t: float) -> _Req | None:
        """Pairing for the first response after response bytes were lost (see the module doc)."""
        candidates = []  # queue positions of requests (and sure losses) sent before t
        for index, entry in enumerate(self._q):
            if type(entry) is _Req:
                if entry.ts >= t:
                    break
                candidates.append(index)
            elif entry.ts is not None and entry.ts < t:
                candidates.append(index)
        if not candidates:
            self._unpaired()
            return None
        self._s_uncertain = False
        if self._pipelining:
            # Responses wholly lost, estimated from the mean response size (none if unknown).
            seen = self._s_msgs - 1
            skipped = round(self._s_lost * seen / self._s_bytes) if seen and self._s_bytes else 0
            chosen = candidates[min(max(skipped, self._s_sure), len(candidates) - 1)]
        else:
            chosen = candidates[-1]
        q = self._q
        for _ in range(chosen):
            entry = q.popleft()
            if type(entry) is _Req:
                entry.lost = True
                _flag(entry, "gap")
                _flag(entry, "no_response")
                self._emit(entry, None, None, None, None, 0)
        if type(q[0]) is _Req:
            return q.popleft()
        # It answers a request we never saw; the marker stays for any others.
        q[0].dropped += 1
        self._unpaired()
        return None

    # ------------------------------------------------------------------ shared

    def _feed_zeros(self, from_client: bool, count: int, ts: float) -> None:
        """Stand in for lost body bytes so the parser's framing stays in step."""
        feed = self._feed_client if from_client else self._feed_server
        while count > 0:
            size = min(count, len(_ZEROS))
            feed(_ZEROS[:size], ts)
            count -= size

    def _emit(
        self,
        req: _Req,
        status: int | None,
        reason: bytes | None,
        resp_ts: float | None,
        resp_ctype: bytes | None,
        resp_body: int,
    ) -> None:
        if not req.method and req is self._creq and self._c_url:
            self._finish_request(req)  # answered before its headers were all seen
        req.done = True
        if req.method == "HEAD":
            self._heads -= 1
            if not self._heads:
                self._s_tail = b""
        flags = req.flags
        prev = req.prev
        if prev is not None:
            while prev is not None and prev.lost:
                prev = prev.prev
            if prev is not None and (prev.resp_end is None or prev.resp_end >= req.ts):
                if not flags:
                    self._pipelining = True
                flags = ["pipelined", *flags] if flags else ["pipelined"]
            if not req.lost:
                req.prev = None
        if status is not None:
            req.resp_end = self._ts
        ep = self._endpoints
        self._counters.exchanges += 1
        self._emit_cb(
            Exchange(
                req.ts,
                ep.interface,
                ep.client_ip,
                ep.client_port,
                ep.server_ip,
                ep.server_port,
                req.method,
                req.target,
                req.host,
                req.version,
                status,
                None if reason is None else reason[:MAX_VALUE].decode("utf-8", "replace"),
                None if resp_ts is None else max(0.0, (resp_ts - req.ts) * 1000.0),
                req.body,
                resp_body,
                req.user_agent,
                req.content_type if resp_ctype is None else resp_ctype[:MAX_VALUE].decode("utf-8", "replace"),
                tuple(flags) if flags else (),
            )
        )
        if req is self._hold_req:
            self._resume_client()
