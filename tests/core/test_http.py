"""HTTP/1.x exchange building: framing, pairing, gaps, upgrades, non-HTTP streams."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from eyes_devine.core.http.pairing import MAX_QUEUED
from eyes_devine.core.http.request import MAX_VALUE
from eyes_devine.core.http2 import Http2Connection
from eyes_devine.records import EngineCounters, Exchange
from eyes_devine.views.jsonl import json_line
from tests.support.conn import Conn, chunked, get, request, response, summary
from tests.support.tls import client_hello

# ---------------------------------------------------------------- basics


def test_simple_get_fills_every_field() -> None:
    conn = Conn()
    conn.client(get("/api?id=7", b"Host: svc:8080\r\nUser-Agent: curl/8\r\nAccept: */*\r\n"), ts=10.0)
    conn.server(response(200, b"x" * 42, reason=b"OK"), ts=10.25)
    [exchange] = conn.close()
    assert exchange == Exchange(
        ts=10.0,
        interface="br-1",
        client_ip="172.18.0.2",
        client_port=40000,
        server_ip="172.18.0.3",
        server_port=8080,
        method="GET",
        target="/api?id=7",
        host="svc:8080",
        http_version="1.1",
        status=200,
        reason="OK",
        latency_ms=250.0,
        duration_ms=250.0,
        request_bytes=0,
        response_bytes=42,
        user_agent="curl/8",
        content_type="text/plain",
        flags=(),
    )


def test_duration_runs_to_the_last_response_byte_and_latency_to_the_first() -> None:
    conn = Conn()
    conn.client(get("/slow", b"Host: svc\r\n"), ts=10.0)
    whole = response(200, b"x" * 3000)
    conn.server(whole[:100], ts=10.25)
    conn.server(whole[100:], ts=11.5)
    conn.client(get("/next", b"Host: svc\r\n"), ts=12.0)
    [slow, unanswered] = conn.close()
    assert (slow.latency_ms, slow.duration_ms) == (250.0, 1500.0)
    assert (unanswered.latency_ms, unanswered.duration_ms) == (None, None)


def test_request_and_response_fed_one_byte_at_a_time() -> None:
    conn = Conn()
    for byte in get("/one/byte?x=1", b"Host: h\r\nUser-Agent: slow\r\n"):
        conn.client(bytes([byte]))
    for byte in response(201, b"created", reason=b"Created"):
        conn.server(bytes([byte]))
    [exchange] = conn.close()
    assert (exchange.target, exchange.host, exchange.user_agent) == ("/one/byte?x=1", "h", "slow")
    assert (exchange.status, exchange.reason, exchange.response_bytes, exchange.flags) == (201, "Created", 7, ())


def test_keep_alive_connection_yields_each_exchange_in_order() -> None:
    conn = Conn()
    for n in range(5):
        conn.client(get(f"/item/{n}")).server(response(200 + n * 10, b"b" * n))
    exchanges = conn.close()
    assert [(e.target, e.status, e.response_bytes, e.flags) for e in exchanges] == [
        (f"/item/{n}", 200 + n * 10, n, ()) for n in range(5)
    ]


def test_latency_is_first_request_byte_to_first_final_response_byte() -> None:
    conn = Conn()
    conn.client(b"GET /slow HTTP/1.1\r\n", ts=50.0).client(b"Host: svc\r\n\r\n", ts=50.1)
    conn.server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", ts=50.5).server(b"ok", ts=51.0)
    [exchange] = conn.close()
    assert exchange.ts == 50.0
    assert abs(exchange.latency_ms - 500.0) < 1e-6


def test_pipelined_requests_pair_in_order_and_are_flagged() -> None:
    conn = Conn()
    conn.client(get("/a") + get("/b") + request("POST", "/c", b"data"))
    conn.server(response(200, b"A"))
    conn.server(response(404, b"BB") + response(201, b"CCC"))
    exchanges = conn.close()
    assert summary(exchanges) == [
        ("GET", "/a", 200, ()),
        ("GET", "/b", 404, ("pipelined",)),
        ("POST", "/c", 201, ("pipelined",)),
    ]
    assert [e.response_bytes for e in exchanges] == [1, 2, 3]
    assert exchanges[2].request_bytes == 4


def test_http10_request_and_response_ended_by_close() -> None:
    conn = Conn()
    conn.client(b"GET /old HTTP/1.0\r\nUser-Agent: legacy\r\n\r\n")
    conn.server(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>").server(b"</html>")
    [exchange] = conn.close()
    assert (exchange.http_version, exchange.status, exchange.response_bytes, exchange.flags) == ("1.0", 200, 13, ())
    assert exchange.content_type == "text/html"


def test_response_without_length_is_completed_at_close() -> None:
    conn = Conn()
    conn.client(get()).server(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc").server(b"def")
    assert conn.exchanges == []
    [exchange] = conn.close()
    assert (exchange.status, exchange.response_bytes, exchange.flags) == (200, 6, ())


def test_response_cut_by_close_is_truncated() -> None:
    conn = Conn()
    conn.client(get()).server(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    [exchange] = conn.close()
    assert (exchange.status, exchange.response_bytes, exchange.flags) == (200, 3, ("truncated",))


def test_request_without_response_is_reported_at_close() -> None:
    conn = Conn()
    conn.client(get("/answered")).server(response()).client(get("/ignored"))
    exchanges = conn.close()
    assert summary(exchanges) == [("GET", "/answered", 200, ()), ("GET", "/ignored", None, ("no_response",))]
    assert exchanges[1].latency_ms is None and exchanges[1].reason is None


def test_content_type_falls_back_to_the_request() -> None:
    conn = Conn()
    conn.client(request("POST", "/form", b"a=1", b"Content-Type: application/x-www-form-urlencoded\r\n"))
    conn.server(b"HTTP/1.1 204 No Content\r\n\r\n")
    [exchange] = conn.close()
    assert exchange.content_type == "application/x-www-form-urlencoded"
    assert exchange.request_bytes == 3


def test_header_names_match_in_any_case() -> None:
    conn = Conn()
    conn.client(b"GET / HTTP/1.1\r\nhOsT: mixed\r\nUSER-agent: ua\r\n\r\n")
    conn.server(b"HTTP/1.1 200 OK\r\ncontent-TYPE: text/csv\r\ncontent-length: 2\r\n\r\nab")
    [exchange] = conn.close()
    assert (exchange.host, exchange.user_agent, exchange.content_type, exchange.response_bytes) == (
        "mixed",
        "ua",
        "text/csv",
        2,
    )


# ---------------------------------------------------------------- bodies and special statuses


def test_head_response_content_length_is_not_read_as_body() -> None:
    conn = Conn()
    conn.client(request("HEAD", "/file")).server(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
    conn.client(get("/next")).server(response(200, b"next"))
    exchanges = conn.close()
    assert summary(exchanges) == [("HEAD", "/file", 200, ()), ("GET", "/next", 200, ())]
    assert [e.response_bytes for e in exchanges] == [0, 4]


def test_pipelined_head_then_get_in_one_segment_each_way() -> None:
    conn = Conn()
    conn.client(request("HEAD", "/h") + get("/g"))
    conn.server(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" + response(200, b"body"))
    exchanges = conn.close()
    assert summary(exchanges) == [("HEAD", "/h", 200, ()), ("GET", "/g", 200, ("pipelined",))]
    assert [e.response_bytes for e in exchanges] == [0, 4]


def test_pipelined_get_then_head_with_header_end_split_across_segments() -> None:
    conn = Conn()
    conn.client(get("/g") + request("HEAD", "/h") + get("/last"))
    head_response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    stream = response(200, b"a\r\n\r\nb") + head_response + response(202, b"z")
    cut = len(response(200, b"a\r\n\r\nb")) + len(head_response) - 2
    conn.server(stream[:cut]).server(stream[cut:])
    exchanges = conn.close()
    assert summary(exchanges) == [
        ("GET", "/g", 200, ()),
        ("HEAD", "/h", 200, ("pipelined",)),
        ("GET", "/last", 202, ("pipelined",)),
    ]
    assert [e.response_bytes for e in exchanges] == [6, 0, 1]


def test_204_and_304_have_no_body_even_with_content_length() -> None:
    conn = Conn()
    conn.client(get("/a") + get("/b") + get("/c"))
    conn.server(b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n")
    conn.server(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n" + response(200, b"1234567"))
    exchanges = conn.close()
    assert [(e.status, e.response_bytes) for e in exchanges] == [(204, 0), (304, 0), (200, 7)]


def test_100_continue_then_final_response() -> None:
    conn = Conn()
    conn.client(request("PUT", "/up", headers=b"Expect: 100-continue\r\nContent-Length: 3\r\n"), ts=1.0)
    conn.server(b"HTTP/1.1 100 Continue\r\n\r\n", ts=1.1)
    conn.client(b"abc", ts=1.2)
    conn.server(response(201, b"", reason=b"Created"), ts=1.5)
    [exchange] = conn.close()
    assert (exchange.status, exchange.reason, exchange.request_bytes, exchange.flags) == (201, "Created", 3, ())
    assert abs(exchange.latency_ms - 500.0) < 1e-6


def test_103_early_hints_then_final_response() -> None:
    conn = Conn()
    conn.client(get("/page"), ts=1.0)
    conn.server(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", ts=1.1)
    conn.server(response(200, b"page", headers=b"Content-Type: text/html\r\n"), ts=1.3)
    [exchange] = conn.close()
    assert (exchange.status, exchange.response_bytes, exchange.flags) == (200, 4, ())
    assert abs(exchange.latency_ms - 300.0) < 1e-6


def test_chunked_request_and_response_with_extensions_and_trailers() -> None:
    conn = Conn()
    conn.client(
        b"POST /stream HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;name=value\r\nabcd\r\n2\r\nef\r\n0\r\nX-Checksum: 1\r\n\r\n"
    )
    conn.server(chunked(200, [b"hello", b" ", b"world"], trailers=b"Content-Type: bogus\r\nX-T: 1\r\n"))
    conn.client(get("/after")).server(response(200, b"ok"))
    exchanges = conn.close()
    assert [(e.method, e.status, e.request_bytes, e.response_bytes, e.flags) for e in exchanges] == [
        ("POST", 200, 6, 11, ()),
        ("GET", 200, 0, 2, ()),
    ]


# ---------------------------------------------------------------- upgrades and tunnels


def test_websocket_upgrade_is_recorded_and_the_rest_ignored() -> None:
    conn = Conn()
    conn.client(get("/ws", b"Host: svc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n") + b"\x81\x85junk")
    conn.server(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello")
    conn.client(b"\x88\x80\x00\x00\x00\x00GET / HTTP/1.1\r\n\r\n").server(b"HTTP/1.1 200 OK\r\n\r\n")
    conn.server_gap(100).client_gap(5)
    [exchange] = conn.close()
    assert (exchange.status, exchange.flags) == (101, ("upgrade",))
    assert conn.counters.http_parse_errors == conn.counters.non_http_streams == 0


def test_declined_upgrade_keeps_parsing_the_connection() -> None:
    conn = Conn()
    conn.client(get("/maybe-ws", b"Upgrade: websocket\r\nConnection: Upgrade\r\n") + get("/next"))
    conn.server(response(200, b"no ws") + response(200, b"n"))
    exchanges = conn.close()
    assert [(e.target, e.status, e.response_bytes) for e in exchanges] == [("/maybe-ws", 200, 5), ("/next", 200, 1)]


def test_connect_tunnel_is_recorded_and_the_tunnel_ignored() -> None:
    conn = Conn()
    conn.client(b"CONNECT db.internal:443 HTTP/1.1\r\nHost: db.internal:443\r\n\r\n")
    conn.server(b"HTTP/1.1 200 Connection Established\r\n\r\n")
    conn.client(client_hello("db.internal")).server(b"\x16\x03\x03\x00\x02\x02\x00")
    [exchange] = conn.close()
    assert (exchange.method, exchange.target, exchange.status, exchange.flags) == (
        "CONNECT",
        "db.internal:443",
        200,
        ("tunnel",),
    )
    assert conn.counters.tls_streams == 0


def test_refused_connect_then_accepted_connect() -> None:
    conn = Conn()
    conn.client(b"CONNECT a:443 HTTP/1.1\r\n\r\n")
    conn.server(response(407, b"auth please", reason=b"Proxy Authentication Required"))
    conn.client(b"CONNECT a:443 HTTP/1.1\r\nProxy-Authorization: Basic c2VjcmV0\r\n\r\n")
    conn.server(b"HTTP/1.1 200 OK\r\n\r\n")
    exchanges = conn.close()
    assert [(e.status, e.flags) for e in exchanges] == [(407, ()), (200, ("tunnel",))]


# ---------------------------------------------------------------- not HTTP


def test_non_http_bytes_are_counted_once_and_ignored() -> None:
    conn = Conn()
    conn.client(b"SSH-2.0-OpenSSH_9.6\r\n").server(b"SSH-2.0-OpenSSH_9.6\r\n").client(b"\x00\x00\x01\x0c" * 50)
    conn.server_gap(10).client_gap(10)
    assert conn.close() == []
    assert conn.counters.non_http_streams == 1
    assert conn.counters.http_parse_errors == 0


def test_http2_prior_knowledge_goes_to_the_http2_decoder_not_http1() -> None:
    conn = Conn()
    conn.client(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00")  # a SETTINGS frame, cut short
    assert conn.close() == []
    assert type(conn.handler.inner) is Http2Connection and conn.counters.non_http_streams == 0
    assert conn.counters.http_parse_errors == 0, "llhttp never saw it"


def test_server_speaking_first_in_another_protocol_is_not_http() -> None:
    conn = Conn()
    conn.server(b"220 mail.example ESMTP ready\r\n")
    assert conn.close() == []
    assert conn.counters.non_http_streams == 1


def test_tls_client_hello_is_counted_with_its_server_name() -> None:
    counters = EngineCounters()
    hello = client_hello("payments.internal", padding=2000)
    for _ in range(3):  # the same name is kept once
        conn = Conn(counters)
        conn.client(hello[:1400]).client(hello[1400:]).server(b"\x16\x03\x03\x00\x10" + bytes(16))
        assert conn.close() == []
    Conn(counters).client(client_hello("other.internal")).close()
    assert counters.tls_streams == 4
    assert counters.tls_server_names == ["payments.internal", "other.internal"]
    assert counters.non_http_streams == 0


def test_tls_server_names_are_bounded() -> None:
    counters = EngineCounters()
    for n in range(120):
        Conn(counters).client(client_hello(f"h{n}.example")).close()
    assert len(counters.tls_server_names) == 100
    assert counters.tls_streams == 120


# ---------------------------------------------------------------- gaps


def test_gap_inside_content_length_body_keeps_sync() -> None:
    body = bytes(3000)
    stream = response(200, body)
    head = len(stream) - len(body)
    conn = Conn()
    conn.client(get("/big"))
    conn.server(stream[: head + 1000]).server_gap(1000).server(stream[head + 2000 :])
    conn.client(get("/after")).server(response(200, b"ok"))
    exchanges = conn.close()
    assert [(e.target, e.status, e.response_bytes, e.flags) for e in exchanges] == [
        ("/big", 200, 3000, ("gap",)),
        ("/after", 200, 2, ()),
    ]


def test_gap_inside_request_body_keeps_sync() -> None:
    upload = request("POST", "/upload", bytes(5000))
    conn = Conn()
    conn.client(upload[:1000]).client_gap(1448).client(upload[2448:])
    conn.server(response(201, b""))
    conn.client(get("/after")).server(response(200, b"ok"))
    exchanges = conn.close()
    assert [(e.target, e.status, e.request_bytes, e.flags) for e in exchanges] == [
        ("/upload", 201, 5000, ("gap",)),
        ("/after", 200, 0, ()),
    ]


def test_gap_in_response_read_until_close_counts_the_missing_bytes() -> None:
    conn = Conn()
    conn.client(get("/stream")).server(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + bytes(100))
    conn.server_gap(1000).server(bytes(50))
    [exchange] = conn.close()
    assert (exchange.status, exchange.response_bytes, exchange.flags) == (200, 1150, ("gap",))


def test_pipelined_burst_losing_a_middle_request_keeps_pairing() -> None:
    conn = Conn()
    conn.client(get("/1")).client_gap(len(get("/2"))).client(get("/3"))
    conn.server(response(201)).server(response(202)).server(response(203))
    exchanges = conn.close()
    assert summary(exchanges) == [("GET", "/1", 201, ()), ("GET", "/3", 203, ("pipelined",))]
    assert conn.handler.unpaired_responses == 1


def test_gap_swallowing_a_whole_response_keeps_later_pairing() -> None:
    conn = Conn()
    conn.client(get("/1")).server(response(201))
    conn.client(get("/2"))  # its response is lost below
    conn.client(get("/3"))  # sent after the lost response arrived
    conn.server_gap(len(response(202))).server(response(203))
    for n in range(4, 7):
        conn.client(get(f"/{n}")).server(response(200 + n))
    exchanges = conn.close()
    assert summary(exchanges) == [
        ("GET", "/1", 201, ()),
        ("GET", "/2", None, ("gap", "no_response")),
        ("GET", "/3", 203, ()),
        ("GET", "/4", 204, ()),
        ("GET", "/5", 205, ()),
        ("GET", "/6", 206, ()),
    ]


def test_gap_swallowing_end_of_one_response_and_all_of_the_next() -> None:
    conn = Conn()
    first = response(201, b"x" * 100, headers=b"Transfer-Encoding: identity\r\n")
    conn.client(get("/1")).server(first[:60])
    conn.client(get("/2"))
    conn.server_gap(len(first) - 60 + len(response(202)))
    conn.client(get("/3")).server(b"tail of something\r\n" + response(203))
    conn.client(get("/4")).server(response(204))
    exchanges = conn.close()
    assert summary(exchanges) == [
        ("GET", "/1", 201, ("gap", "truncated")),
        ("GET", "/2", None, ("gap", "no_response")),
        ("GET", "/3", 203, ()),
        ("GET", "/4", 204, ()),
    ]


def test_gap_inside_chunked_response_resynchronises() -> None:
    stream = chunked(200, [b"a" * 500, b"b" * 500, b"c" * 500])
    conn = Conn()
    conn.client(get("/chunks")).server(stream[:300]).server_gap(600).server(stream[900:])
    conn.client(get("/after")).server(response(200, b"ok"))
    exchanges = conn.close()
    assert summary(exchanges) == [("GET", "/chunks", 200, ("gap", "truncated")), ("GET", "/after", 200, ())]
    assert exchanges[0].response_bytes < 1500


def test_gap_inside_response_headers_keeps_the_status() -> None:
    stream = response(500, b"err", reason=b"Internal Server Error")
    conn = Conn()
    conn.client(get("/x")).server(stream[:30]).server_gap(10).server(stream[40:])
    conn.client(get("/y")).server(response(200))
    exchanges = conn.close()
    assert summary(exchanges) == [("GET", "/x", 500, ("gap", "truncated")), ("GET", "/y", 200, ())]


def test_gap_in_request_direction_drops_the_answer_to_a_lost_request() -> None:
    conn = Conn()
    conn.client(get("/1")).server(response(201))
    conn.client_gap(len(get("/2")))  # GET /2 lost; its response still comes
    conn.server(response(202))
    conn.client(get("/3")).server(response(203))
    conn.client(get("/4")).server(response(204))
    exchanges = conn.close()
    assert summary(exchanges) == [("GET", "/1", 201, ()), ("GET", "/3", 203, ()), ("GET", "/4", 204, ())]
    assert conn.handler.unpaired_responses == 1


def test_lost_request_reported_after_its_response_does_not_shift_pairing() -> None:
    # The TCP layer declares a client hole when the server acknowledges past it, i.e. after
    # delivering the response that carried that acknowledgement.
    conn = Conn()
    conn.client(get("/1")).server(response(201))
    conn.server(response(202)).client_gap(len(get("/2")))
    conn.client(get("/3")).server(response(203))
    exchanges = conn.close()
    assert summary(exchanges) == [("GET", "/1", 201, ()), ("GET", "/3", 203, ())]


def test_gap_inside_request_headers_keeps_the_request() -> None:
    stream = get("/partial", b"Host: svc\r\nUser-Agent: agent\r\nAccept: */*\r\n")
    conn = Conn()
    conn.client(stream[:25]).client_gap(20).client(stream[45:])
    conn.server(response(200))
    conn.client(get("/next")).server(response(201))
    exchanges = conn.close()
    assert summary(exchanges) == [("GET", "/partial", 200, ("gap", "truncated")), ("GET", "/next", 201, ())]


def test_gap_before_any_data_resynchronises_mid_stream() -> None:
    conn = Conn()
    conn.client_gap(5000).client(b"end of an upload body\r\n" + get("/seen"))
    conn.server_gap(3000).server(b"rest of a response body" + response(200))
    exchanges = conn.close()
    assert summary(exchanges) == [("GET", "/seen", 200, ())]
    assert conn.counters.non_http_streams == 0


def test_connection_picked_up_mid_message_without_gap_finds_the_next_message() -> None:
    conn = Conn()
    conn.server(b"...end of a body nobody asked for")
    conn.client(b"tail of a request body\r\n" + get("/seen")).server(response(200))
    exchanges = conn.close()
    assert summary(exchanges) == [("GET", "/seen", 200, ())]
    assert conn.counters.non_http_streams == 0


def test_gap_in_pipelined_burst_uses_the_mean_response_size() -> None:
    conn = Conn()
    conn.client(get("/a") + get("/b")).server(response(200, b"x" * 20) + response(200, b"y" * 20))
    conn.client(get("/1") + get("/2") + get("/3"))
    conn.server(response(201, b"1" * 20)).server_gap(len(response(202, b"2" * 20))).server(response(203, b"3" * 20))
    exchanges = conn.close()
    assert summary(exchanges)[2:] == [
        ("GET", "/1", 201, ()),
        ("GET", "/2", None, ("pipelined", "gap", "no_response")),
        ("GET", "/3", 203, ("pipelined",)),
    ]


# ---------------------------------------------------------------- errors, smuggling, bounds, secrets


def test_parse_error_mid_stream_flags_and_resynchronises() -> None:
    conn = Conn()
    conn.client(get("/1")).server(response(201))
    conn.client(get("/2")).server(b"HTTP/1.1 2x0 Broken\r\n\r\n")
    conn.client(get("/3")).server(response(203))
    exchanges = conn.close()
    assert summary(exchanges) == [
        ("GET", "/1", 201, ()),
        ("GET", "/2", None, ("parse_error", "gap", "no_response")),
        ("GET", "/3", 203, ()),
    ]
    assert conn.counters.http_parse_errors == 1


def test_conflicting_content_lengths_are_flagged_as_smuggling() -> None:
    conn = Conn()
    conn.client(b"POST /x HTTP/1.1\r\nHost: svc\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd")
    conn.server(response(400, b"bad", reason=b"Bad Request"))
    conn.client(get("/ok")).server(response(200))
    exchanges = conn.close()
    assert [(e.target, e.status) for e in exchanges] == [("/x", 400), ("/ok", 200)]
    assert {"smuggling_suspect", "parse_error"} <= set(exchanges[0].flags)
    assert conn.counters.http_parse_errors == 1


def test_content_length_with_transfer_encoding_is_flagged_as_smuggling() -> None:
    conn = Conn()
    conn.client(
        b"POST /x HTTP/1.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nZ\r\n0\r\n\r\n" + get("/y")
    )
    conn.server(response(200) + response(200))
    exchanges = conn.close()
    assert [(e.target, e.request_bytes, e.flags) for e in exchanges] == [
        ("/x", 1, ("smuggling_suspect",)),
        ("/y", 0, ("pipelined",)),
    ]


def test_credentials_never_reach_the_records() -> None:
    conn = Conn()
    conn.client(
        get(
            "/login?user=bob&password=hunter2&api_key=AKIA123",
            b"Host: svc\r\nAuthorization: Bearer eyJsecret\r\nCookie: session=cookie-secret\r\n"
            b"Proxy-Authorization: Basic cHJveHk=\r\n",
        )
    )
    conn.server(response(200, headers=b"Set-Cookie: sid=set-cookie-secret; HttpOnly\r\n"))
    conn.client(b"GET http://admin:pa55word@svc/x HTTP/1.1\r\n\r\n").server(response(200))
    exchanges = conn.close()
    text = repr(exchanges) + repr([e.to_dict() for e in exchanges])
    for secret in ("hunter2", "AKIA123", "eyJsecret", "cookie-secret", "cHJveHk", "set-cookie-secret", "pa55word"):
        assert secret not in text
    assert exchanges[0].target == "/login?user=bob&password=REDACTED&api_key=REDACTED"
    assert exchanges[1].target == "http://REDACTED@svc/x"


JWT = ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqd3Qtc3ViamVjdCJ9.c2lnbmF0dXJlLW9mLXRoZS1qd3Q")


def test_secrets_in_odd_places_never_reach_the_records() -> None:
    """A JWT in the path, a path parameter, userinfo in Host, a token in the User-Agent: none reaches a record or
    its JSON, whether llhttp parses the head or refuses it (an odd byte in the target) and it is read leniently."""
    fields = "Host: admin:HOST-SECRET@svc\r\nUser-Agent: MyApp/1.0 (token=UA-SECRET)\r\n\r\n"
    heads = [
        f"GET /verify/{JWT}/done;jsessionid=JSESSION-SECRET HTTP/1.1\r\n{fields}".encode(),
        f"GET /\xff/{JWT};jsessionid=JSESSION-SECRET HTTP/1.1\r\n{fields}".encode("latin-1"),
    ]
    conn = Conn()
    for head in heads:
        conn.client(head).server(response(200))
    exchanges = conn.close()
    assert [e.flags for e in exchanges] == [(), ("parse_error",)]
    assert [(e.target, e.host, e.user_agent) for e in exchanges] == [
        ("/verify/REDACTED/done;jsessionid=REDACTED", "REDACTED@svc", "MyApp/1.0 (token=REDACTED)"),
        ("/%FF/REDACTED;jsessionid=REDACTED", "REDACTED@svc", "MyApp/1.0 (token=REDACTED)"),
    ]
    text = repr(exchanges) + "".join(json_line(e) for e in exchanges) + json.dumps([e.to_dict() for e in exchanges])
    for secret in (JWT.split(".")[1], JWT.split(".")[2], "JSESSION-SECRET", "HOST-SECRET", "UA-SECRET"):
        assert secret not in text


def test_long_target_is_cut_and_flagged() -> None:
    conn = Conn()
    conn.client(get("/" + "a" * 5000)).server(response())
    [exchange] = conn.close()
    assert len(exchange.target) == MAX_VALUE
    assert exchange.flags == ("truncated",)


def test_unanswered_queue_is_bounded() -> None:
    conn = Conn()
    conn.client(get("/x") * (MAX_QUEUED + 5))
    assert len(conn.exchanges) == 5
    assert all(e.flags[-2:] == ("no_response", "overflow") for e in conn.exchanges)
    exchanges = conn.close()
    assert len(exchanges) == MAX_QUEUED + 5


# ---------------------------------------------------------------- properties

# (request, response, expected (method, status, response_bytes)) for one exchange.
_KINDS = [
    (get("/plain"), response(200, b"plain body"), ("GET", 200, 10)),
    (
        get("/chunked"),
        chunked(200, [b"abc", b"\r\n\r\n", b"x" * 40], trailers=b"X-T: 1\r\n"),
        ("GET", 200, 47),
    ),
    (request("HEAD", "/head"), b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", ("HEAD", 200, 0)),
    (request("POST", "/post", b"k=v&x=y"), response(201, b"", reason=b"Created"), ("POST", 201, 0)),
    (
        b"PUT /chunked-up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n" + response(204, b""),
        ("PUT", 204, 0),
    ),
    (get("/cached"), b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", ("GET", 304, 0)),
    (get("/hints"), b"HTTP/1.1 103 Early Hints\r\nLink: <a>\r\n\r\n" + response(200, b"ok"), ("GET", 200, 2)),
    (get("/empty-reason"), b"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", ("GET", 404, 0)),
]


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


def _comparable(exchanges: list[Exchange]) -> list[dict[str, object]]:
    return [{k: v for k, v in e.to_dict().items() if k not in ("ts", "latency_ms", "duration_ms")} for e in exchanges]


def _run(events: list[tuple[bool, bytes]]) -> list[Exchange]:
    conn = Conn()
    for from_client, chunk in events:
        (conn.client if from_client else conn.server)(chunk)
    return conn.close()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(_KINDS))), min_size=1, max_size=6),
    st.data(),
)
def test_any_split_of_keep_alive_messages_yields_identical_exchanges(kinds: list[int], data: st.DataObject) -> None:
    whole: list[tuple[bool, bytes]] = []
    split: list[tuple[bool, bytes]] = []
    for kind in kinds:
        req, resp, _ = _KINDS[kind]
        for from_client, message in ((True, req), (False, resp)):
            whole.append((from_client, message))
            cuts = data.draw(st.lists(st.integers(min_value=0, max_value=10_000), max_size=8))
            split.extend((from_client, piece) for piece in _split(message, cuts))
    reference = _run(whole)
    assert [(e.method, e.status, e.response_bytes) for e in reference] == [_KINDS[k][2] for k in kinds]
    assert all(e.flags == () for e in reference)
    assert _comparable(_run(split)) == _comparable(reference)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(_KINDS))), min_size=1, max_size=6),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_any_split_of_pipelined_streams_yields_identical_exchanges(
    kinds: list[int], client_cuts: list[int], server_cuts: list[int]
) -> None:
    client_stream = b"".join(_KINDS[k][0] for k in kinds)
    server_stream = b"".join(_KINDS[k][1] for k in kinds)
    reference = _run([(True, client_stream), (False, server_stream)])
    assert [(e.method, e.status, e.response_bytes) for e in reference] == [_KINDS[k][2] for k in kinds]
    client_chunks = _split(client_stream, client_cuts)
    server_chunks = _split(server_stream, server_cuts)
    # A pipelining client writes every request before the first response byte arrives.
    events = [(True, c) for c in client_chunks] + [(False, c) for c in server_chunks]
    assert _comparable(_run(events)) == _comparable(reference)


_event = st.one_of(
    st.tuples(st.just("c"), st.binary(max_size=64)),
    st.tuples(st.just("s"), st.binary(max_size=64)),
    st.tuples(st.just("c"), st.sampled_from([k[0] for k in _KINDS])),
    st.tuples(st.just("s"), st.sampled_from([k[1] for k in _KINDS])),
    st.tuples(st.sampled_from(["gc", "gs"]), st.integers(min_value=0, max_value=5000)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_event, max_size=25))
def test_random_bytes_and_gaps_never_raise(events: list[tuple[str, object]]) -> None:
    conn = Conn()
    for kind, value in events:
        if kind == "c":
            conn.client(value)
        elif kind == "s":
            conn.server(value)
        elif kind == "gc":
            conn.client_gap(value)
        else:
            conn.server_gap(value)
    exchanges = conn.close()
    for exchange in exchanges:
        assert exchange.status is None or 100 <= exchange.status <= 999
        assert exchange.latency_ms is None or exchange.latency_ms >= 0
        assert exchange.response_bytes >= 0 and exchange.request_bytes >= 0
    conn.handler.data(True, b"GET / HTTP/1.1\r\n\r\n", conn.now)  # after close: ignored
    assert len(conn.exchanges) == len(exchanges)
