"""One TCP connection as HTTP/1.x: the facade the TCP layer drives, over a request side, a response side and
the pairing between them.

:class:`HttpConnection` is sans-I/O: the TCP layer calls ``data``, ``gap`` and
``closed`` (a :class:`~eyes_devine.core.tcp.StreamHandler`) and it hands
finished :class:`~eyes_devine.records.Exchange` records to ``emit``, always in
request order.  Framing is httptools' (llhttp); the sides add what a passive
observer needs: pairing (:mod:`.pairing`), gaps and resynchronisation
(:mod:`.resync`), HEAD, upgrades and bounded memory.

Gaps (``gap(direction, missing, ts)``)
    * Inside a body of known remaining length (Content-Length, or a response
      read until close) the hole is filled with ``missing`` zero bytes (or just
      counted): the parser stays in sync and the exchange is flagged ``gap``.
    * Otherwise the message in progress is cut.  A request keeps its place in
      the queue (``gap``, ``truncated``); one whose request line was lost
      becomes a lost-requests marker.  A response whose final status was seen is
      emitted (``gap``, ``truncated``); a paired request whose final response had
      not started goes back to the head of the queue.  The direction then
      resynchronises at the next complete request or status line, and a fresh
      parser starts there.  How the next response then pairs is the pairing's
      business.
    Parse errors after valid HTTP are counted in ``http_parse_errors``, flag the
    message in progress ``parse_error`` and resynchronise the same way (the rest
    of the failing segment is skipped, since llhttp does not report where it
    stopped).

Pipelined
    A request is ``pipelined`` when it was sent while the previous request's
    response had not finished (a predecessor later found to have lost its
    response in a gap does not count).

Not HTTP
    A client stream starting with a TLS ClientHello is counted in
    ``tls_streams`` (its SNI kept in ``tls_server_names``); with a key log
    (``HttpLimits.tls_keys``) it is handed to
    :class:`~eyes_devine.core.tls.session.TlsConnection`, which decodes the
    plaintext as a connection of its own.  A client stream
    whose first request line does not parse as HTTP/1.x, and holds no request
    line later in that segment (a connection picked up mid-message), is counted
    in ``non_http_streams``; so is one where only the server spoke, and never
    HTTP.  Either way the connection is then ignored, as is everything after a
    ``101`` or a ``2xx`` answer to ``CONNECT`` (flags ``upgrade``/``tunnel``).
    An Upgrade or CONNECT request that is refused leaves the connection HTTP.
"""

from __future__ import annotations

from collections.abc import Callable

from eyes_devine.core.http.framing import HttpLimits
from eyes_devine.core.http.headers import MAX_VALUE
from eyes_devine.core.http.pairing import Pairing, Request, flag
from eyes_devine.core.http.parsers import Mode
from eyes_devine.core.http.request import RequestSide
from eyes_devine.core.http.response import ResponseSide
from eyes_devine.core.http2 import PREFACE, Http2Connection
from eyes_devine.core.tcp import Endpoints, StreamHandler
from eyes_devine.core.tls.keylog import TlsKeys
from eyes_devine.core.tls.session import TlsConnection
from eyes_devine.records import NO_ATTRIBUTION, NO_PEER, EngineCounters, Exchange

_ZEROS = memoryview(bytes(65536))
DEFAULT_LIMITS = HttpLimits()
_new = tuple.__new__
_PARSE = Mode.PARSE
"""Builds an Exchange from all its fields without the named tuple's Python-level constructor (once per request)."""


class HttpConnection:
    """Turns one TCP connection's byte streams into :class:`Exchange` records (a ``StreamHandler``)."""

    def __init__(self, endpoints: Endpoints, emit: Callable[[Exchange], None], counters: EngineCounters,
                 limits: HttpLimits = DEFAULT_LIMITS) -> None:
        self._endpoints = endpoints
        self.limits = limits
        self._emit = emit
        self.counters = counters
        self.off = False
        """Not HTTP, or HTTP no more (TLS, a tunnel): every byte is ignored."""
        self._closed = False
        self._resume = False
        """The request the client's held bytes waited on was answered: parse them before the next response."""
        self.pairing = Pairing(counters, self._unanswered)
        self.inner: StreamHandler | None = None
        """The decoder the connection was handed to (HTTP/2, or TLS with a key log); the HTTP/1 sides are then off."""
        self.requests = RequestSide(self)
        self.responses = ResponseSide(self)

    @property
    def unpaired_responses(self) -> int:
        """Responses dropped because no seen request could have caused them."""
        return self.pairing.unpaired_responses

    # -- StreamHandler --------------------------------------------------------------------

    def data(self, from_client: bool, payload: bytes, ts: float) -> None:
        # Straight to the parsers in the usual case: this runs once per segment.
        if from_client:
            requests = self.requests
            if requests.mode is _PARSE:
                requests.feed(payload, ts)
            elif self.inner is not None:
                self.inner.data(True, payload, ts)
            else:
                requests.data(payload, ts)
        else:
            responses = self.responses
            if responses.mode is _PARSE:
                responses.feed(payload, ts)
            elif self.inner is not None:
                self.inner.data(False, payload, ts)
            else:
                responses.data(payload, ts)
            if self._resume:
                self.between_pieces()

    def to_http2(self, payload: bytes, ts: float) -> None:
        """The client spoke the HTTP/2 preface: the connection is HTTP/2's from its first byte."""
        h2 = self._hand_to_http2(None)
        if payload:
            h2.data(True, payload, ts)

    def to_tls(self, keys: TlsKeys, hello: bytes, ts: float) -> None:
        """The client opened TLS and there is a key log: decrypt, and decode the plaintext as a connection of its
        own (``hello``: the client's bytes so far, its ClientHello first)."""
        self.go_off()
        endpoints, counters, limits = self._endpoints, self.counters, self.limits
        self.inner = TlsConnection(keys, counters, lambda emit: HttpConnection(endpoints, emit, counters, limits),
                                   self._emit)
        self.inner.data(True, hello, ts)

    def upgrade_to_http2(self, req: Request, ts: float) -> None:
        """The server switched to h2c: ``req`` is stream 1, answered in HTTP/2, and every byte from here is HTTP/2's
        (the client's starting with the preface)."""
        held, held_ts = self.requests.hand_over()
        if held:  # the client sends its preface after the 101: what it sent before is the request's body
            at = held.find(PREFACE)
            req.body += len(held) if at < 0 else at
            held = b"" if at < 0 else held[at:]
        req.done = True
        if req.special:
            self.requests.special -= 1
        h2 = self._hand_to_http2(req)
        if held is None:
            h2.gap(True, 0, held_ts)
        elif held:
            h2.data(True, held, held_ts)

    def _hand_to_http2(self, upgraded: Request | None) -> Http2Connection:
        """The HTTP/1 sides go off and an HTTP/2 decoder takes every later byte (``upgraded``: its stream 1)."""
        self.go_off()
        h2 = Http2Connection(self._endpoints, self._emit, self.counters, self.limits.max_header_bytes,
                             upgraded=upgraded, header_rules=self.limits.header_rules)
        self.inner = h2
        return h2

    def gap(self, from_client: bool, missing: int, ts: float) -> None:
        if self.inner is not None:
            self.inner.gap(from_client, missing, ts)
            return
        if self.off or self._closed:
            return
        if from_client:
            self.requests.gap(missing, ts)
        else:
            self.responses.gap(missing, ts)
            self.between_pieces()

    def overlap(self, from_client: bool, ts: float) -> None:
        if self.inner is not None:
            self.inner.overlap(from_client, ts)
            return
        if self.off or self._closed:
            return
        if from_client:
            self.requests.overlap()
        else:
            self.responses.overlap()

    def closed(self, ts: float) -> None:
        if self._closed:
            return
        self._closed = True
        if self.inner is not None:
            self.inner.closed(ts)
            self.requests.release()
            self.responses.release()
            return
        self.responses.ts = ts
        requests, responses = self.requests, self.responses
        if not requests.finish_tls() and responses.garbage and not responses.seen and not requests.seen:
            self.not_http()
        responses.close()
        requests.cut_unfinished()
        queue = self.pairing.queue
        while queue:
            entry = queue.popleft()
            if type(entry) is Request:
                flag(entry, "no_response")
                self.emit(entry, None, None, None, None, 0)
                self.between_pieces()
        # Parsers point back at the sides: break the cycles now.
        self.go_off()
        requests.release()
        responses.release()

    # -- what the sides call --------------------------------------------------------------

    def between_pieces(self) -> None:
        """A response piece was fed: if a held-for request was answered, the client's held bytes come first."""
        if self._resume:
            self._resume = False
            self.requests.resume()

    def feed_zeros(self, feed: Callable[[memoryview, float], None], count: int, ts: float) -> None:
        """Stand in for lost body bytes so the parser's framing stays in step."""
        while count > 0:
            size = min(count, len(_ZEROS))
            feed(_ZEROS[:size], ts)
            count -= size

    def not_http(self) -> None:
        if not self.off:
            self.counters.non_http_streams += 1
            self.go_off()
            # The bytes that looked like a request start were not one.
            self.pairing.clear()
            self.requests.forget()

    def go_off(self) -> None:
        self.off = True
        self.requests.stop()
        self.responses.stop()

    def emit(self, req: Request, status: int | None, reason: bytes | None, resp_ts: float | None,
             resp_ctype: bytes | None, resp_body: int) -> None:
        requests = self.requests
        if not req.method:
            requests.finish_early(req)
        req.done = True
        if req.special:
            requests.special -= 1
        flags = req.flags
        prev = req.prev
        if prev is not None:
            while prev is not None and prev.lost:
                prev = prev.prev
            if prev is not None and (prev.resp_end is None or prev.resp_end >= req.ts):
                if not flags:
                    self.pairing.pipelining = True
                flags = ["pipelined", *flags] if flags else ["pipelined"]
            if not req.lost:
                req.prev = None
        duration = None
        if status is not None:
            req.resp_end = self.responses.ts
            duration = max(0.0, (self.responses.ts - req.ts) * 1000.0)
        ep = self._endpoints
        self.counters.exchanges += 1
        self._emit(
            _new(Exchange, (
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
                duration,
                req.body,
                resp_body,
                req.user_agent,
                req.content_type if resp_ctype is None else resp_ctype[:MAX_VALUE].decode("utf-8", "replace"),
                tuple(flags) if flags else (),
                NO_ATTRIBUTION,
                req.alerts,
                NO_PEER,
                None,  # observer: the app names the capturing host
                None, None, None, None,  # gRPC's: HTTP/2 only
            ))
        )
        if req is requests.hold_request:
            self._resume = self.responses._between = True

    def _unanswered(self, req: Request) -> None:
        """The pairing gave ``req`` up: it is reported without a response."""
        self.emit(req, None, None, None, None, 0)
