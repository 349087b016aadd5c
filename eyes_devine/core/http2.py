"""HTTP/2 over cleartext (h2c), decoded passively: each stream becomes one Exchange.

A connection whose client starts with the HTTP/2 preface (prior knowledge), or
whose server answered ``Upgrade: h2c`` with ``101``, is handed here by
:class:`~eyes_devine.core.http.connection.HttpConnection`.  After an upgrade,
the HTTP/1.1 request that asked for it is stream 1 (RFC 9113 3.2): its response
comes in HTTP/2 frames, and the client's preface follows the 101.  Each direction is a
run of frames (hyperframe parses them) whose header blocks are decoded with
that direction's own HPACK decoder (hpack), so the dynamic tables are followed
across the connection both ways.  Streams pair by id, so interleaved and
multiplexed streams pair correctly.  There is no endpoint state machine: what
a peer would refuse is still read as far as it can be.

Each request's decoded header fields are judged by the same attack
signatures as an HTTP/1.x head (:mod:`~eyes_devine.core.signatures`).

A gRPC call (``content-type: application/grpc``) is one exchange whatever it
streams: ``grpc_status`` and ``grpc_message`` come from its trailers (or a
trailers-only response), and its length-prefixed messages are counted each
way.

A gap in a direction loses its frame boundaries and its HPACK state: that
direction is read no further, and the streams it leaves unfinished are
flagged ``gap``.  A frame that cannot be parsed ends the direction the same
way (flagged ``parse_error``), never with an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote

from hpack import Decoder
from hpack.exceptions import HPACKError
from hyperframe.exceptions import HyperframeError
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    HeadersFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
)

from eyes_devine.core.http.framing import target_text
from eyes_devine.core.http.headers import MAX_VALUE
from eyes_devine.core.redact import redact_host, redact_target, redact_user_agent
from eyes_devine.core.signatures import HeaderRules
from eyes_devine.core.tcp import Endpoints
from eyes_devine.records import NO_ATTRIBUTION, NO_PEER, EngineCounters, Exchange

if TYPE_CHECKING:
    from eyes_devine.core.http.pairing import Request

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""What an HTTP/2 client sends first (RFC 9113 3.4)."""
_HEADER = 9
_MAX_FRAME = 1 << 24
UPGRADE_TABLE_SIZE = 65536
"""The server's HPACK table allowed after an h2c upgrade until the client's SETTINGS say (its HTTP2-Settings
header may have raised hpack's 4,096)."""
_MAX_OPEN_STREAMS = 10_000
"""Streams followed at once per connection; past it the oldest are reported as they are."""
_new = tuple.__new__


def is_preface(payload: bytes) -> bool:
    """Whether the client's first bytes are (the start of) the HTTP/2 preface."""
    start = payload[: len(PREFACE)]
    return len(start) >= 3 and PREFACE.startswith(start)


class _Messages:
    """gRPC's length-prefixed messages in one direction of a stream, counted as DATA frames carry them."""

    __slots__ = ("count", "left", "prefix")

    def __init__(self) -> None:
        self.count = 0
        self.left = 0
        """Bytes of the current message still to come."""
        self.prefix = b""
        """The next message's 5-byte prefix (compressed flag, length), as far as it has come."""

    def feed(self, data: bytes) -> None:
        at, size = 0, len(data)
        while at < size:
            if self.left:
                taken = min(self.left, size - at)
                self.left -= taken
                at += taken
                continue
            need = 5 - len(self.prefix)
            self.prefix += data[at:at + need]
            at += need
            if len(self.prefix) == 5:
                self.count += 1
                self.left = int.from_bytes(self.prefix[1:5], "big")
                self.prefix = b""


class _Stream:
    __slots__ = ("ts", "method", "path", "authority", "user_agent", "request_type", "request_bytes", "response_ts",
                 "status", "response_type", "response_bytes", "end_ts", "flags", "ended", "sent", "received",
                 "grpc_status", "grpc_message", "alerts")

    def __init__(self, ts: float) -> None:
        self.ts = ts
        self.method = self.path = ""
        self.authority = self.user_agent = self.request_type = self.response_type = None
        self.request_bytes = self.response_bytes = 0
        self.response_ts: float | None = None
        self.status: int | None = None
        self.end_ts: float | None = None
        self.flags: list[str] = []
        self.ended = False
        """The server ended the stream (END_STREAM) or either side reset it."""
        self.sent: _Messages | None = None
        self.received: _Messages | None = None
        """gRPC's messages each way (a call whose content-type is application/grpc), else None."""
        self.grpc_status: int | None = None
        self.grpc_message: str | None = None
        self.alerts: tuple[str, ...] = ()
        """Attack signatures its head matched (an upgraded HTTP/1.1 request's)."""


class _Direction:
    """One direction's bytes, cut into frames, and its header blocks decoded."""

    __slots__ = ("buffer", "decoder", "lost", "block", "block_stream", "block_ts", "block_end", "preface", "seek")

    def __init__(self, preface: int, max_header_bytes: int) -> None:
        self.buffer = bytearray()
        self.decoder = Decoder(max_header_list_size=max_header_bytes)
        self.lost = False
        self.block = bytearray()
        """A header block waiting for its CONTINUATION frames."""
        self.block_stream = 0
        self.block_ts = 0.0
        self.block_end = False
        self.preface = preface
        """Preface bytes still to skip (the client's 24)."""
        self.seek = False
        """After an upgrade: the upgrading request's body comes first; the preface is looked for after it."""


class Http2Connection:
    """One h2c connection's two directions, as a ``StreamHandler``: exchanges out through ``emit``."""

    def __init__(self, endpoints: Endpoints, emit: Callable[[Exchange], None], counters: EngineCounters,
                 max_header_bytes: int = 65536, upgraded: Request | None = None,
                 header_rules: HeaderRules | None = None) -> None:
        self._endpoints = endpoints
        self._header_rules = header_rules
        self._emit = emit
        self._counters = counters
        self._client = _Direction(len(PREFACE), max_header_bytes)
        self._server = _Direction(0, max_header_bytes)
        self._streams: dict[int, _Stream] = {}
        self._closed = False
        if upgraded is not None:
            self._streams[1] = _upgraded_stream(upgraded)
            self._client.seek = True
            # The client's HTTP2-Settings header (not read) may have let the server's encoder use a larger table
            # before the client's SETTINGS frame says exactly.
            self._server.decoder.max_allowed_table_size = UPGRADE_TABLE_SIZE

    # -- StreamHandler ----------------------------------------------------------------------

    def data(self, from_client: bool, payload: bytes, ts: float) -> None:
        side = self._client if from_client else self._server
        if side.lost or self._closed:
            return
        buffer = side.buffer
        buffer += payload
        if side.seek and not self._seek_preface(buffer):
            return
        if side.preface:
            skipped = min(side.preface, len(buffer))
            if bytes(buffer[:skipped]) != PREFACE[len(PREFACE) - side.preface:][:skipped]:
                self._lose(side, "parse_error", ts)
                return
            del buffer[:skipped]
            side.preface -= skipped
        while len(buffer) >= _HEADER:
            try:
                frame, length = Frame.parse_frame_header(memoryview(buffer)[:_HEADER])
            except HyperframeError:
                self._lose(side, "parse_error", ts)
                return
            if length >= _MAX_FRAME:
                self._lose(side, "parse_error", ts)
                return
            if len(buffer) < _HEADER + length:
                return
            body = bytes(buffer[_HEADER:_HEADER + length])
            del buffer[:_HEADER + length]
            try:
                frame.parse_body(memoryview(body))
            except HyperframeError:
                self._lose(side, "parse_error", ts)
                return
            self._frame(side, from_client, frame, ts)
            if side.lost:
                return

    def _seek_preface(self, buffer: bytearray) -> bool:
        """Whether the client's preface has come; the bytes before it are the upgrading request's body."""
        at = buffer.find(PREFACE)
        body = at if at >= 0 else len(buffer) - (len(PREFACE) - 1)  # the preface may be arriving in pieces
        if body > 0:
            stream = self._streams.get(1)
            if stream is not None:
                stream.request_bytes += body
            del buffer[:body]
        if at < 0:
            return False
        self._client.seek = False
        return True

    def gap(self, from_client: bool, missing: int, ts: float) -> None:
        if not self._closed:
            self._lose(self._client if from_client else self._server, "gap", ts)

    def overlap(self, from_client: bool, ts: float) -> None:
        for stream in self._streams.values():
            if "overlap_conflict" not in stream.flags:
                stream.flags.append("overlap_conflict")

    def closed(self, ts: float) -> None:
        if self._closed:
            return
        self._closed = True
        for stream_id in list(self._streams):
            stream = self._streams[stream_id]
            if stream.status is None:
                stream.flags.append("no_response")
            elif not stream.ended:
                stream.flags.append("truncated")
            self._finish(stream_id, ts)

    # -- frames -----------------------------------------------------------------------------

    def _frame(self, side: _Direction, from_client: bool, frame: Frame, ts: float) -> None:
        kind = frame.__class__
        if kind is DataFrame:
            stream = self._streams.get(frame.stream_id)
            if stream is not None:
                if from_client:
                    stream.request_bytes += len(frame.data)
                    if stream.sent is not None:
                        stream.sent.feed(frame.data)
                else:
                    stream.response_bytes += len(frame.data)
                    if stream.received is not None:
                        stream.received.feed(frame.data)
                    stream.end_ts = ts
                    if "END_STREAM" in frame.flags:
                        stream.ended = True
                        self._finish(frame.stream_id, ts)
        elif kind is HeadersFrame or kind is PushPromiseFrame:
            side.block[:] = frame.data
            side.block_stream = frame.stream_id if kind is HeadersFrame else 0  # a push is decoded, not followed
            side.block_ts = ts
            side.block_end = "END_STREAM" in frame.flags
            if "END_HEADERS" in frame.flags:
                self._headers(side, from_client, ts)
        elif kind is ContinuationFrame:
            side.block += frame.data
            if "END_HEADERS" in frame.flags:
                self._headers(side, from_client, ts)
        elif kind is RstStreamFrame:
            stream = self._streams.get(frame.stream_id)
            if stream is not None:
                stream.flags.append("reset")
                stream.ended = True
                stream.end_ts = ts
                self._finish(frame.stream_id, ts)
        elif kind is SettingsFrame and "ACK" not in frame.flags:
            size = frame.settings.get(SettingsFrame.HEADER_TABLE_SIZE)
            if size is not None:  # the most this side lets the peer's encoder use: the peer resizes within it
                (self._server if from_client else self._client).decoder.max_allowed_table_size = size

    def _headers(self, side: _Direction, from_client: bool, ts: float) -> None:
        try:
            fields = side.decoder.decode(bytes(side.block), raw=True)
        except (HPACKError, ValueError, IndexError):
            self._lose(side, "parse_error", ts)
            return
        stream_id = side.block_stream
        if not stream_id:
            return
        if from_client:
            if stream_id not in self._streams:  # else trailers: the request's end, the response ends the exchange
                self._request(stream_id, fields, side.block_ts)
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        if stream.status is None:
            status = _field(fields, b":status")
            code = int(status) if status and status.isdigit() else None
            if code is not None and 100 <= code < 200:
                return  # interim: the final response follows
            stream.status = code
            stream.response_ts = side.block_ts
            stream.response_type = _text(_field(fields, b"content-type"))
            if code is None:
                stream.flags.append("parse_error")
        if stream.sent is not None:  # gRPC: the trailers (or a trailers-only response) carry the call's outcome
            status = _field(fields, b"grpc-status")
            if status is not None and status.isdigit():
                stream.grpc_status = int(status)
                message = _field(fields, b"grpc-message")
                if message:
                    stream.grpc_message = unquote(message[:MAX_VALUE].decode("utf-8", "replace"))
        stream.end_ts = ts
        if side.block_end:
            stream.ended = True
            self._finish(stream_id, ts)

    def _request(self, stream_id: int, fields: list[tuple[bytes, bytes]], ts: float) -> None:
        if len(self._streams) >= _MAX_OPEN_STREAMS:
            oldest = next(iter(self._streams))
            self._streams[oldest].flags.append("no_response")
            self._finish(oldest, ts)
        stream = self._streams[stream_id] = _Stream(ts)
        rules = self._header_rules
        if rules is not None:  # the same signatures as an HTTP/1.x head's, over the decoded fields
            head = b"\r\n".join(b"%s: %s" % field for field in fields)
            if head.translate(rules.marks) is not head and rules.suspect(head):
                stream.alerts = rules.judge(head)
        for name, value in fields:
            if name == b":method":
                stream.method = value[:MAX_VALUE].decode("ascii", "replace")
            elif name == b":path":
                stream.path = redact_target(target_text(value[:MAX_VALUE]))
            elif name == b":authority" or (name == b"host" and stream.authority is None):
                stream.authority = redact_host(value[:MAX_VALUE].decode("utf-8", "replace"))
            elif name == b"user-agent":
                stream.user_agent = redact_user_agent(value[:MAX_VALUE].decode("utf-8", "replace"))
            elif name == b"content-type":
                stream.request_type = _text(value)
                if value.startswith(b"application/grpc"):
                    stream.sent, stream.received = _Messages(), _Messages()

    def _lose(self, side: _Direction, why: str, ts: float) -> None:
        """This direction cannot be read further: its frames and its HPACK state are gone."""
        if side.lost:
            return
        side.lost = True
        side.buffer.clear()
        for stream in self._streams.values():
            if why not in stream.flags:
                stream.flags.append(why)
        if side is self._server:  # no response can be read any more: report what there is
            for stream_id in list(self._streams):
                if self._streams[stream_id].status is None:
                    self._streams[stream_id].flags.append("no_response")
                self._finish(stream_id, ts)

    def _finish(self, stream_id: int, ts: float) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        ep = self._endpoints
        self._counters.exchanges += 1
        latency = None if stream.response_ts is None else max(0.0, (stream.response_ts - stream.ts) * 1000.0)
        end = stream.end_ts if stream.end_ts is not None else stream.response_ts
        duration = None if stream.status is None or end is None else max(0.0, (end - stream.ts) * 1000.0)
        self._emit(_new(Exchange, (
            stream.ts, ep.interface, ep.client_ip, ep.client_port, ep.server_ip, ep.server_port,
            stream.method or "-", stream.path, stream.authority, "2", stream.status, None, latency, duration,
            stream.request_bytes, stream.response_bytes, stream.user_agent,
            stream.response_type if stream.response_type is not None else stream.request_type,
            tuple(stream.flags), NO_ATTRIBUTION, stream.alerts, NO_PEER, None, stream.grpc_status, stream.grpc_message,
            None if stream.sent is None else stream.sent.count,
            None if stream.received is None else stream.received.count,
        )))


def _upgraded_stream(req: Request) -> _Stream:
    """Stream 1 of an upgraded connection: the HTTP/1.1 request as the request side read it (RFC 9113 3.2)."""
    stream = _Stream(req.ts)
    stream.method, stream.path, stream.authority = req.method, req.target, req.host
    stream.user_agent, stream.request_type, stream.request_bytes = req.user_agent, req.content_type, req.body
    stream.alerts = req.alerts
    stream.flags = [*(req.flags or ()), "upgrade"]
    return stream


def _field(fields: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in fields:
        if key == name:
            return value
    return None


def _text(value: bytes | None) -> str | None:
    return None if value is None else value[:MAX_VALUE].decode("utf-8", "replace")
