"""The client's byte stream: requests parsed with llhttp (httptools), queued for pairing as they begin.

The side is in one :class:`Mode` at a time.  It starts in ``FIRST``: a stream
starting with a TLS ClientHello is collected (``TLS``) until its SNI is read,
anything else is parsed (``PARSE``).  After lost or unreadable bytes it skips to
the next complete request line (``RESYNC``).  After an Upgrade or CONNECT
request, what follows depends on the response, so the bytes are held
(``HOLD``) until the connection says to go on.  ``OFF`` ignores everything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

from eyes_devine.core.http.headers import (
    CONTENT_LENGTH,
    CONTENT_TYPE,
    HEADER_CODES,
    HOST,
    MAX_VALUE,
    TRANSFER_ENCODING,
    USER_AGENT,
    other_spelling,
)
from eyes_devine.core.http.pairing import MAX_QUEUED, Request, flag
from eyes_devine.core.http.parsers import Mode, new_request_parser
from eyes_devine.core.http.request_recovery import VERSIONS, RequestRecovery
from eyes_devine.core.http.resync import METHODS, REQUEST_LINE, Scanner
from eyes_devine.core.http2 import is_preface
from eyes_devine.core.redact import redact_host, redact_target, redact_user_agent
from eyes_devine.core.tls import HelloCollector

if TYPE_CHECKING:
    from eyes_devine.core.http.connection import HttpConnection

MAX_HELD = 65536
"""Client bytes held while an Upgrade/CONNECT request waits for its verdict."""
MAX_SERVER_NAMES = 100
"""Length bound of ``EngineCounters.tls_server_names``."""
_FIRST, _PARSE, _RESYNC, _HOLD, _TLS, _OFF = Mode  # module names: the hot path compares by identity


class RequestSide(RequestRecovery):
    """Requests from one connection's client; llhttp calls the ``on_*`` methods while parsing."""

    __slots__ = ("_conn", "_pairing", "_counters", "mode", "_parser", "_ts", "current", "last", "_url", "_host",
                 "_user_agent", "_content_type", "_content_length", "_transfer_encoding", "seen", "_false_starts",
                 "_feeds", "_ended_in", "_scanner", "_held", "_held_ts", "hold_request", "_hello", "special",
                 "_replaying", "_overlap_next", "_head_bytes", "_header_rules")

    def __init__(self, conn: HttpConnection) -> None:
        self._init_stream(conn.limits.max_header_bytes)
        self._header_rules = conn.limits.header_rules
        self._conn = conn
        self._pairing = conn.pairing
        self._counters = conn.counters
        self.mode = _FIRST
        self._parser: HttpRequestParser | None = None
        self._overlap_next = False
        """Differing copies were seen of the bytes the next request begins with."""
        self._ts = 0.0  # of the bytes being parsed, read by the callbacks
        self.current: Request | None = None
        """The request being parsed."""
        self.last: Request | None = None
        self._url = b""
        self._host: bytes | None = None
        self._head_bytes: bytes | memoryview | None = None
        """The whole head being parsed, when it came whole: its headers are checked for attack signatures."""
        self._user_agent: bytes | None = None
        self._content_type: bytes | None = None
        self._content_length: bytes | None = None
        self._transfer_encoding: bytes | None = None
        self.seen = False  # a request's headers were parsed: this is HTTP
        self._false_starts = 0
        self._feeds = 0
        self._ended_in = -1  # the segment in which the last request ended
        self._scanner = Scanner(REQUEST_LINE)
        self._held: bytearray | None = None
        self._held_ts = 0.0
        self.hold_request: Request | None = None
        """The Upgrade or CONNECT request whose response decides what the held bytes are."""
        self._hello = HelloCollector()
        self.special = 0
        """Requests not yet answered whose response llhttp cannot frame alone (HEAD, CONNECT, Upgrade)."""
        self._replaying: Request | None = None
        """The request whose framing a clean head is telling llhttp, after a lenient reading."""

    # -- what the connection calls --------------------------------------------------------

    def data(self, payload: bytes, ts: float) -> None:
        mode = self.mode
        if mode is _PARSE:
            self.feed(payload, ts)
        elif mode is _OFF or not payload:
            return
        elif mode is _FIRST:
            if payload[0] == 0x16:  # never the start of an HTTP request; TLS handshake record?
                self.mode = _TLS
                self._collect_tls(payload, ts)
                return
            if payload[0] == 0x50 and is_preface(payload):  # "PRI * HTTP/2.0": h2c with prior knowledge
                self._conn.to_http2(payload, ts)
                return
            self.mode = _PARSE
            self._parser = new_request_parser(self)
            self.feed(payload, ts)
        elif mode is _RESYNC:
            self._resync(payload, ts)
        elif mode is _HOLD:
            self._keep(payload)
        else:
            self._collect_tls(payload, ts)

    def overlap(self) -> None:
        """The next bytes are the receiver's copy of bytes sent twice, differently: flag the request holding them."""
        if self.current is not None:
            flag(self.current, "overlap_conflict")
        else:
            self._overlap_next = True

    def gap(self, missing: int, ts: float) -> None:
        mode = self.mode
        pairing = self._pairing
        if mode is _FIRST:
            self.mode = _RESYNC
            pairing.requests_lost(missing, pairing.sure_lost_request(ts))  # a first byte starts a request
            return
        if mode is _HOLD:
            self._held = None
            return
        if mode is _RESYNC:
            self._scanner.reset()
            pairing.requests_lost(missing)
            return
        if mode is not _PARSE:
            return
        req = self.current
        if req is not None:
            flag(req, "gap")
            remaining = self._body_remaining(req)
            if remaining > 0:
                fill = min(missing, remaining)
                self._conn.feed_zeros(self.feed, fill, ts)
                missing -= fill
                if not missing:
                    return
            self._cut()
            pairing.requests_lost(missing, in_request=True)
        else:
            # Between requests a client sends nothing else: the hole began a request.
            pairing.requests_lost(missing, pairing.sure_lost_request(ts))
        if self.mode is _PARSE:
            self._start_resync()

    def finish_tls(self) -> bool:
        """The connection ended: a ClientHello still being collected is judged.  False when there was none."""
        if self.mode is not _TLS:
            return False
        self._finish_tls()
        return True

    def cut_unfinished(self) -> None:
        """The connection ended: a request still being parsed is reported as it stands."""
        if self.current is not None:
            flag(self.current, "truncated")
            self._cut()

    def finish_early(self, req: Request) -> None:
        """``req`` is answered before its headers were all seen: fill in what its request line said."""
        if req is not self.current:
            return
        if self._head_buffer:
            self._read_partial_head(req)
        elif self._url:
            self._finish_request(req)

    def resume(self) -> None:
        """The held-for request was answered without switching protocols: parse what the client sent after it."""
        self.hold_request = None
        if self.mode is not _HOLD:
            return
        held = self._held
        self._held = None
        self.mode = _RESYNC
        self._scanner.reset()
        if held is None:  # overflowed or hit by a gap
            self._pairing.requests_lost(0)
        elif held:
            self._resync(bytes(held), self._held_ts)

    def hand_over(self) -> tuple[bytes | None, float]:
        """What the client sent after an h2c Upgrade request, for the HTTP/2 decoder (None: some of it was lost)."""
        if self.mode is not _HOLD:
            return b"", self._ts
        held = self._held
        return (None if held is None else bytes(held)), self._held_ts

    def forget(self) -> None:
        """The stream is not HTTP after all: the bytes that looked like a request start were not one."""
        self.current = self.last = None
        self._held = None

    def stop(self) -> None:
        self.mode = _OFF
        self._held = None

    def release(self) -> None:
        """Parsers point back at this side: break the cycle when the connection ends."""
        self._parser = None
        self.last = None

    # -- llhttp's callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        if self._replaying is not None:  # a clean head for a request already queued (its fields read leniently)
            self.current = self._replaying
            return
        self._host = self._user_agent = self._content_type = self._content_length = self._transfer_encoding = None
        last = self.last
        if last is not None and not last.done:
            req = Request(self._ts, last)
            if self._ended_in == self._feeds:
                # Two requests in one segment: no response can have come in between.
                self._pairing.pipelining = True
        else:
            req = Request(self._ts, None)
        self.last = self.current = req
        if self._overlap_next:
            self._overlap_next = False
            flag(req, "overlap_conflict")
        pairing = self._pairing
        pairing.request_messages += 1
        queue = pairing.queue
        queue.append(req)  # Pairing.enqueue, inlined: once per request
        if len(queue) > MAX_QUEUED:
            pairing.evict()

    def on_url(self, url: bytes) -> None:
        if len(self._url) <= MAX_VALUE:
            self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        code = HEADER_CODES.get(name)
        if code is None:
            code = other_spelling(name)
        if not code:
            return
        if code == HOST:
            self._host = value
        elif code == USER_AGENT:
            self._user_agent = value
        elif code == CONTENT_TYPE:
            self._content_type = value
        elif code == CONTENT_LENGTH:
            self._content_length = value
        elif code == TRANSFER_ENCODING:
            self._transfer_encoding = value

    def on_headers_complete(self) -> None:
        req = self.current
        assert req is not None
        self._finish_request(req)
        head = self._head_bytes
        if head is not None:  # the attack signatures of its headers (core.signatures): their values are not kept
            self._head_bytes = None
            rules = self._header_rules
            if rules is not None:
                if type(head) is not bytes:
                    head = bytes(head)
                if head.translate(rules.marks) is not head and rules.suspect(head):
                    req.alerts = rules.judge(head)
        if self._transfer_encoding is not None and self._content_length is not None:
            flag(req, "smuggling_suspect")
        self.seen = True
        self._in_head = False

    def on_body(self, body: bytes) -> None:
        self.current.body += len(body)  # type: ignore[union-attr]

    def on_message_complete(self) -> None:
        self.current = None
        self._ended_in = self._feeds
        self._in_head = True

    # -- parsing --------------------------------------------------------------------------

    def feed(self, chunk: bytes | memoryview, ts: float) -> None:
        """Parse in-order bytes (in ``PARSE`` mode)."""
        self._ts = ts
        pairing = self._pairing
        pairing.request_bytes += len(chunk)
        self._feeds += 1
        pairing.orphans = 0
        if (self._in_head and not self._head_buffer and chunk.find(b"\r\n\r\n") + 4 == len(chunk)
                and len(chunk) <= self._max_head):
            # The usual segment, one whole head and nothing else: MessageStream._give, inlined.  What llhttp
            # refuses in it is in that head.
            self._head_bytes = chunk
            try:
                self._parser.feed_data(chunk)  # type: ignore[union-attr]
            except HttpParserUpgrade as upgrade:
                self._on_upgrade(chunk[upgrade.args[0]:])
            except HttpParserError as error:
                self._on_failure(error, bytes(chunk), True, chunk, 0, len(chunk))
            return
        self._cut_stream(chunk)

    def _give(self, data: bytes | memoryview, whole_head: bytes | memoryview | None) -> None:
        self._head_bytes = whole_head  # None for a piece of a head arriving in parts, or for a body
        super()._give(data, whole_head)

    def _finish_request(self, req: Request) -> None:
        """Fill the request record from what was parsed (request line known)."""
        parser = self._parser
        assert parser is not None
        method = parser.get_method()
        req.method = METHODS.get(method) or method.decode("latin-1")
        version = parser.get_http_version()
        req.version = version if version in VERSIONS else ""
        url = self._url
        if len(url) > MAX_VALUE:
            url = url[:MAX_VALUE]
            flag(req, "truncated")
        req.target = redact_target(url.decode("utf-8", "eyes-devine-percent"))  # framing.target_text, inlined
        if self._host is not None:
            req.host = redact_host(self._host[:MAX_VALUE].decode("utf-8", "replace"))
        if self._user_agent is not None:
            req.user_agent = redact_user_agent(self._user_agent[:MAX_VALUE].decode("utf-8", "replace"))
        if self._content_type is not None:
            req.content_type = self._content_type[:MAX_VALUE].decode("utf-8", "replace")
        if req.method == "HEAD":
            self._mark_special(req)

    def _body_remaining(self, req: Request) -> int:
        """Body bytes still due for a Content-Length request whose headers are parsed, else 0."""
        if not req.method or self._transfer_encoding is not None or self._content_length is None:
            return 0
        try:
            return int(self._content_length) - req.body
        except ValueError:
            return 0

    def _cut(self) -> None:
        """The request being parsed will not be seen whole."""
        req = self.current
        if req is None:
            return
        self.current = None
        if req.done:
            return
        if not req.method and self._head_buffer:
            self._read_partial_head(req)
        if req.method or self._url:
            if not req.method:
                self._finish_request(req)
            flag(req, "truncated")
            return
        # Not even its request line: it cannot be reported, but its response may come.
        queue = self._pairing.queue
        if queue and queue[-1] is req:
            queue.pop()
            req.lost = req.done = True
            self._pairing.requests_lost(0, req.ts)

    def _mark_special(self, req: Request) -> None:
        """HEAD, CONNECT and Upgrade requests: their responses need the response side's care."""
        if not req.special:
            req.special = True
            self.special += 1

    def _body_seen(self) -> int:
        return self.current.body if self.current is not None else 0

    def _messages_begun(self) -> int:
        return self._pairing.request_messages

    def _on_upgrade(self, rest: bytes | memoryview) -> None:
        self._hold(bytes(rest), self._ts)

    def _rest(self, rest: bytes | memoryview) -> None:
        if self.mode is _HOLD:
            self._keep(bytes(rest))
        elif self.mode is _RESYNC:
            self._resync(bytes(rest), self._ts)

    def _start_resync(self) -> None:
        self.mode = _RESYNC
        self._scanner.reset()
        self._reset_head()

    def _resync(self, payload: bytes, ts: float) -> None:
        rest, start_ts, skipped, after_other = self._scanner.scan(payload, ts)
        self._pairing.skipped_request_bytes(skipped)
        if rest is not None:
            if after_other:
                # The tail of one request and the start of the next in one segment.
                self._pairing.pipelining = True
            self.mode = _PARSE
            self._parser = new_request_parser(self)
            self._reset_head()
            self.feed(rest, start_ts)

    def _keep(self, payload: bytes) -> None:
        """Bytes after an Upgrade/CONNECT request, until the response says what they are (bounded)."""
        held = self._held
        if held is not None:
            if len(held) + len(payload) > MAX_HELD:
                self._held = None
            else:
                held += payload

    def _hold(self, rest: bytes, ts: float) -> None:
        """An Upgrade/CONNECT request was parsed: what follows depends on the response."""
        self.mode = _HOLD
        self._held = bytearray(rest)
        self._held_ts = ts
        req = self.hold_request = self.last
        if req is None or req.done:
            self.resume()
        else:
            self._mark_special(req)

    # -- TLS and non-HTTP -----------------------------------------------------------------

    def _collect_tls(self, payload: bytes, ts: float) -> None:
        hello = self._hello
        counted = hello.is_tls
        whole = hello.add(payload)
        if whole is None:
            self._conn.not_http()
            return
        if hello.is_tls and not counted:
            self._counters.tls_streams += 1
        if whole:
            self._finish_tls(ts)

    def _finish_tls(self, ts: float | None = None) -> None:
        """The ClientHello is whole (``ts``: its last bytes' time), or the connection ended (None)."""
        hello = self._hello
        if not hello.is_tls:
            if hello.pending:
                self._conn.not_http()
            return
        keys = self._conn.limits.tls_keys
        collected = hello.pending
        name = hello.server_name()
        if keys is not None and ts is not None:
            self._conn.to_tls(keys, collected, ts)
        else:
            self._conn.go_off()
        names = self._counters.tls_server_names
        if name is not None and len(names) < MAX_SERVER_NAMES and name not in names:
            names.append(name)

