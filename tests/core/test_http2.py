"""HTTP/2 (h2c) decoding, bytes in and exchanges out: pairing by stream, HPACK across the connection, degrading."""

from __future__ import annotations

import base64
import struct

from hpack import Encoder
from hyperframe.frame import DataFrame, HeadersFrame, RstStreamFrame, SettingsFrame

from eyes_devine.core.http2 import PREFACE
from tests.support.conn import Conn


class Peer:
    """One side's HPACK encoder: its dynamic table is the decoder's to follow."""

    def __init__(self) -> None:
        self.encoder = Encoder()

    def headers(self, stream: int, fields: list[tuple[str, str]], end: bool = False) -> bytes:
        frame = HeadersFrame(stream)
        frame.data = self.encoder.encode(fields)
        frame.flags.add("END_HEADERS")
        if end:
            frame.flags.add("END_STREAM")
        return frame.serialize()


def data(stream: int, body: bytes, end: bool = True) -> bytes:
    frame = DataFrame(stream)
    frame.data = body
    if end:
        frame.flags.add("END_STREAM")
    return frame.serialize()


def get(path: str) -> list[tuple[str, str]]:
    return [(":method", "GET"), (":scheme", "http"), (":path", path), (":authority", "api:8080"),
            ("user-agent", "grpc-python/1.60")]


def opened() -> tuple[Conn, Peer, Peer]:
    conn, client, server = Conn(), Peer(), Peer()
    conn.client(PREFACE + SettingsFrame(0).serialize(), ts=1.0)
    conn.server(SettingsFrame(0).serialize(), ts=1.01)
    return conn, client, server


def test_interleaved_streams_pair_by_id_and_hpack_is_followed_across_requests():
    conn, client, server = opened()
    conn.client(client.headers(1, get("/first"), end=True) + client.headers(3, get("/second"), end=True), ts=2.0)
    conn.server(server.headers(3, [(":status", "404")]) + data(3, b"no"), ts=2.5)
    conn.client(client.headers(5, get("/third"), end=True), ts=3.0)  # indexed fields only now: the table is known
    conn.server(server.headers(1, [(":status", "200"), ("content-type", "application/json")]) + data(1, b"{}", False),
                ts=3.5)
    conn.server(data(1, b"[]") + server.headers(5, [(":status", "200")], end=True), ts=4.0)
    by_path = {x.target: x for x in conn.close()}
    assert [(path, x.status) for path, x in by_path.items()] == [("/second", 404), ("/first", 200), ("/third", 200)]
    first = by_path["/first"]
    assert (first.method, first.host, first.http_version, first.user_agent) == ("GET", "api:8080", "2",
                                                                                "grpc-python/1.60")
    assert (first.latency_ms, first.duration_ms, first.response_bytes) == (1500.0, 2000.0, 4)
    assert first.content_type == "application/json" and first.flags == ()
    assert conn.counters.non_http_streams == 0


def test_a_reset_stream_and_an_unanswered_one_are_reported_as_they_ended():
    conn, client, server = opened()
    conn.client(client.headers(1, get("/reset"), end=True) + client.headers(3, get("/open"), end=True), ts=2.0)
    conn.server(RstStreamFrame(1).serialize(), ts=2.2)
    reset, unanswered = conn.close()
    assert (reset.target, reset.status, reset.flags) == ("/reset", None, ("reset",))
    assert (unanswered.target, unanswered.flags) == ("/open", ("no_response",))


def test_a_gap_in_the_responses_ends_decoding_and_flags_what_was_open():
    conn, client, server = opened()
    conn.client(client.headers(1, get("/a"), end=True) + client.headers(3, get("/b"), end=True), ts=2.0)
    conn.server(server.headers(1, [(":status", "200")]) + data(1, b"x", False), ts=2.1)
    conn.server_gap(500, ts=2.2)
    conn.server(data(1, b"late") + server.headers(3, [(":status", "200")], end=True), ts=2.3)
    exchanges = {x.target: x for x in conn.close()}
    assert exchanges["/a"].status == 200 and "gap" in exchanges["/a"].flags
    assert exchanges["/b"].status is None and set(exchanges["/b"].flags) == {"gap", "no_response"}


def test_bytes_that_are_not_frames_end_the_direction_without_an_exception():
    conn, client, server = opened()
    conn.client(client.headers(1, get("/x"), end=True), ts=2.0)
    conn.server(b"\xff" * 9 + b"HTTP/1.1 200 OK\r\n\r\n" * 3, ts=2.1)
    [x] = conn.close()
    assert x.target == "/x" and x.status is None and "no_response" in x.flags


def test_a_headers_block_that_hpack_cannot_decode_degrades_to_a_flag():
    conn, client, server = opened()
    broken = HeadersFrame(1)
    broken.data = b"\xbe\xef"  # indexes past the tables
    broken.flags.add("END_HEADERS")
    broken.flags.add("END_STREAM")
    conn.client(client.headers(3, get("/ok"), end=True), ts=2.0)
    conn.client(broken.serialize(), ts=2.1)
    [x] = conn.close()
    assert x.target == "/ok" and "parse_error" in x.flags


def message(body: bytes) -> bytes:
    """One gRPC message: not compressed, its length, its bytes."""
    return b"\x00" + len(body).to_bytes(4, "big") + body


def test_a_grpc_call_has_its_status_its_message_and_its_messages_counted_each_way():
    conn, client, server = opened()
    call = [(":method", "POST"), (":scheme", "http"), (":path", "/shop.Catalog/ListItems"),
            (":authority", "catalog:50051"), ("content-type", "application/grpc"), ("te", "trailers")]
    conn.client(client.headers(1, call) + data(1, message(b"q" * 20)), ts=2.0)
    stream = message(b"a" * 3) + message(b"b" * 70_000) + message(b"")
    conn.server(server.headers(1, [(":status", "200"), ("content-type", "application/grpc")]), ts=2.1)
    for at in range(0, len(stream), 16_384):  # messages cut across DATA frames
        conn.server(data(1, stream[at:at + 16_384], end=False), ts=2.2)
    conn.server(server.headers(1, [("grpc-status", "0")], end=True), ts=2.3)
    conn.client(client.headers(3, call) + data(3, message(b"x")), ts=3.0)
    conn.server(server.headers(3, [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "5"),
                                   ("grpc-message", "no%20such%20item")], end=True), ts=3.1)  # trailers only
    listed, missing = conn.close()
    assert (listed.target, listed.status, listed.grpc_status, listed.grpc_message) == (
        "/shop.Catalog/ListItems", 200, 0, None)
    assert (listed.request_messages, listed.response_messages) == (1, 3)
    assert (missing.grpc_status, missing.grpc_message, missing.request_messages, missing.response_messages) == (
        5, "no such item", 1, 0)


def test_plain_http2_has_no_grpc_fields():
    conn, client, server = opened()
    conn.client(client.headers(1, get("/x"), end=True), ts=2.0)
    conn.server(server.headers(1, [(":status", "200")]) + data(1, b"\x00\x00\x00\x00\x09"), ts=2.1)
    [x] = conn.close()
    assert (x.grpc_status, x.grpc_message, x.request_messages, x.response_messages) == (None, None, None, None)


def test_a_table_size_the_receiver_allowed_in_its_settings_is_followed():
    conn, client, server = Conn(), Peer(), Peer()
    settings = SettingsFrame(0)
    settings.settings[SettingsFrame.HEADER_TABLE_SIZE] = 8192
    conn.client(PREFACE + settings.serialize(), ts=1.0)
    server.encoder.header_table_size = 8192  # the server uses what the client allowed: a size update in its block
    conn.client(client.headers(1, get("/big-table"), end=True), ts=2.0)
    conn.server(server.headers(1, [(":status", "200"), ("x-large", "v" * 6000)], end=True), ts=2.1)
    [x] = conn.close()
    assert (x.target, x.status, x.flags) == ("/big-table", 200, ())


UPGRADE_REQUEST = (b"GET /up?token=secret HTTP/1.1\r\nHost: web\r\nUser-Agent: curl/7.88.1\r\n"
                   b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                   b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"


def test_an_h2c_upgrade_makes_the_request_stream_1_and_the_rest_of_the_connection_http2():
    conn, client, server = Conn(), Peer(), Peer()
    conn.client(UPGRADE_REQUEST, ts=1.0)
    # The 101, the server's SETTINGS and stream 1's response can share one segment.
    conn.server(SWITCHING + SettingsFrame(0).serialize() + server.headers(1, [(":status", "200")]) + data(1, b"up"),
                ts=1.5)
    conn.client(PREFACE + SettingsFrame(0).serialize() + client.headers(3, get("/next"), end=True), ts=2.0)
    conn.server(server.headers(3, [(":status", "204")], end=True), ts=2.25)
    upgraded, following = conn.close()
    assert (upgraded.method, upgraded.target, upgraded.host, upgraded.status, upgraded.http_version) == (
        "GET", "/up?token=REDACTED", "web", 200, "2")
    assert upgraded.flags == ("upgrade",) and upgraded.latency_ms == 500.0 and upgraded.response_bytes == 2
    assert upgraded.user_agent == "curl/7.88.1"
    assert (following.target, following.status, following.http_version, following.latency_ms) == (
        "/next", 204, "2", 250.0)
    assert conn.counters.non_http_streams == 0 and conn.counters.exchanges == 2


def test_the_101_can_arrive_apart_from_the_server_frames():
    conn, server = Conn(), Peer()
    conn.client(UPGRADE_REQUEST, ts=1.0)
    conn.server(SWITCHING, ts=1.1)
    conn.server(SettingsFrame(0).serialize(), ts=1.2)
    conn.client(PREFACE + SettingsFrame(0).serialize(), ts=1.3)
    conn.server(server.headers(1, [(":status", "404")], end=True), ts=1.4)
    (upgraded,) = conn.close()
    assert (upgraded.target, upgraded.status, upgraded.flags) == ("/up?token=REDACTED", 404, ("upgrade",))


def test_a_refused_h2c_upgrade_leaves_the_connection_http1():
    conn = Conn()
    conn.client(UPGRADE_REQUEST, ts=1.0)
    conn.server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ts=1.5)
    conn.client(b"GET /again HTTP/1.1\r\nHost: web\r\n\r\n", ts=2.0)
    conn.server(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ts=2.5)
    first, again = conn.close()
    assert (first.status, first.http_version, first.flags) == (200, "1.1", ())
    assert (again.target, again.status) == ("/again", 200)


def test_a_websocket_101_still_turns_the_connection_off():
    conn = Conn()
    conn.client(b"GET /ws HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", ts=1.0)
    conn.server(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x02hi",
                ts=1.5)
    conn.client(b"\x81\x82abcd\x00\x00", ts=2.0)
    (upgraded,) = conn.close()
    assert (upgraded.status, upgraded.http_version, upgraded.flags) == (101, "1.1", ("upgrade",))


def upgrade(method: bytes = b"GET", body: bytes = b"", settings: bytes = b"AAMAAABkAAQCAAAAAAIAAAAA") -> bytes:
    length = b"Content-Length: %d\r\n" % len(body) if body else b""
    return (method + b" /up HTTP/1.1\r\nHost: web\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            + length + b"HTTP2-Settings: " + settings + b"\r\n\r\n" + body)


def test_an_upgrading_request_with_a_body_keeps_it_and_the_streams_after_it_pair():
    for pieces in ([upgrade(b"POST", b"hello")], [upgrade(b"POST", b"hello")[:-5], b"hello"]):
        conn, client, server = Conn(), Peer(), Peer()
        for index, piece in enumerate(pieces):
            conn.client(piece, ts=1.0 + index / 10)
        conn.server(SWITCHING + SettingsFrame(0).serialize() + server.headers(1, [(":status", "200")])
                    + data(1, b"ok"), ts=1.5)
        conn.client(PREFACE + SettingsFrame(0).serialize() + client.headers(3, get("/next"), end=True), ts=2.0)
        conn.server(server.headers(3, [(":status", "204")], end=True), ts=2.25)
        upgraded, following = conn.close()
        assert (upgraded.method, upgraded.request_bytes, upgraded.status) == ("POST", 5, 200)
        assert (following.target, following.status) == ("/next", 204)


def test_a_server_table_the_http2_settings_header_allowed_is_followed_before_the_clients_settings_frame():
    conn, server = Conn(), Peer()
    raised = base64.urlsafe_b64encode(struct.pack("!HI", 1, 16384)).rstrip(b"=")  # HEADER_TABLE_SIZE 16384
    conn.client(upgrade(settings=raised), ts=1.0)
    server.encoder.header_table_size = 16384
    conn.server(SWITCHING + SettingsFrame(0).serialize()
                + server.headers(1, [(":status", "200"), ("x-big", "v" * 5000)]) + data(1, b"up"), ts=1.5)
    conn.client(PREFACE + SettingsFrame(0).serialize(), ts=2.0)
    (upgraded,) = conn.close()
    assert (upgraded.status, upgraded.flags) == (200, ("upgrade",))
