"""Hostile HTTP/1.x: bytes llhttp refuses, heads past the limit, heads in many pieces.

What a server accepts must still be recorded: a request llhttp refuses becomes
an exchange flagged ``parse_error``, with its target's bytes kept, and the
connection goes on parsing.  A head past ``max_header_bytes`` is flagged
``oversized`` and skipped, and no input costs more than linear time.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eyes_devine.core.http.connection import HttpConnection
from eyes_devine.core.http.framing import HttpLimits, read_request_head, read_response_head, target_text
from eyes_devine.records import EngineCounters
from tests.support.conn import ENDPOINTS, Conn, response

ODD_TARGETS = {
    "/?q=café": "/?q=café",
    b"/?\xff": "/?%FF",
    b"/?\x1b[31mred": "/?\x1b[31mred",
    b"/a\tb": "/a\tb",
    b"/\x7f": "/\x7f",
    b"/\x85": "/%85",
    "/\u202eevil": "/\u202eevil",
}


def odd_get(target: bytes | str) -> bytes:
    raw = target.encode() if isinstance(target, str) else target
    return b"GET " + raw + b" HTTP/1.1\r\nHost: svc\r\nUser-Agent: curl/8.5\r\n\r\n"


def test_odd_bytes_in_targets_are_recorded_and_the_keep_alive_connection_goes_on():
    conn = Conn()
    for target in ODD_TARGETS:
        conn.client(odd_get(target)).server(response(200, b"ok"))
    conn.client(b"GET /.env HTTP/1.1\r\nHost: svc\r\nUser-Agent: sqlmap/1.8\r\n\r\n").server(response(200, b"SECRET"))
    exchanges = conn.close()
    assert [x.target for x in exchanges] == [*ODD_TARGETS.values(), "/.env"]
    assert all(x.status == 200 and x.method == "GET" and x.http_version == "1.1" for x in exchanges)
    assert all(x.flags == ("parse_error",) for x in exchanges[:-1]), [x.flags for x in exchanges]
    assert exchanges[-1].flags == () and exchanges[-1].user_agent == "sqlmap/1.8"
    assert {x.host for x in exchanges} == {"svc"} and exchanges[0].user_agent == "curl/8.5"
    assert conn.counters.http_parse_errors == len(ODD_TARGETS) and conn.counters.non_http_streams == 0


def test_an_odd_first_request_is_recorded_too():
    conn = Conn().client(odd_get(b"/\xff?x=1")).server(response(404, b"no"))
    [exchange] = conn.close()
    assert (exchange.target, exchange.status, exchange.flags) == ("/%FF?x=1", 404, ("parse_error",))


def test_a_request_refused_while_its_head_still_arrives_is_read_once_whole():
    conn = Conn()
    conn.client(b"GET /caf\xc3").client(b"\xa9 HTTP/1.1\r\nHost: a").client(b"\r\nUser-Agent: x\r\n").client(b"\r\n")
    conn.server(response(200))
    [exchange] = conn.close()
    assert (exchange.target, exchange.host, exchange.user_agent) == ("/café", "a", "x")
    assert exchange.flags == ("parse_error",)


def test_bare_line_feeds_are_read_as_servers_read_them():
    conn = Conn().client(b"GET /lf HTTP/1.1\nHost: svc\n\n").server(response(200))
    conn.client(b"GET /crlf HTTP/1.1\r\n\r\n").server(response(200))
    exchanges = conn.close()
    assert [(x.target, x.status, x.host) for x in exchanges] == [("/lf", 200, "svc"), ("/crlf", 200, None)]


def test_an_odd_request_with_a_body_keeps_its_framing():
    conn = Conn()
    conn.client(b"POST /\xfe HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").server(response(201))
    conn.client(b"GET /next HTTP/1.1\r\n\r\n").server(response(200))
    exchanges = conn.close()
    assert [(x.method, x.target, x.request_bytes, x.status) for x in exchanges] == [
        ("POST", "/%FE", 5, 201), ("GET", "/next", 0, 200)]


def test_a_response_head_llhttp_refuses_still_gives_its_status():
    conn = Conn().client(b"GET /a HTTP/1.1\r\n\r\n")
    conn.server(b"HTTP/1.1 503 Busy\r\nX\x01Bad: 1\r\nContent-Length: 4\r\n\r\nnope")
    conn.client(b"GET /b HTTP/1.1\r\n\r\n").server(response(200, b"yes"))
    exchanges = conn.close()
    assert [(x.target, x.status, x.reason, x.response_bytes, x.flags) for x in exchanges] == [
        ("/a", 503, "Busy", 4, ("parse_error",)), ("/b", 200, "OK", 3, ())]


def test_not_http_is_still_not_http():
    conn = Conn().client(b"SSH-2.0-OpenSSH_9.6\r\n").server(b"SSH-2.0-OpenSSH_9.6\r\n")
    assert conn.close() == [] and conn.counters.non_http_streams == 1


def test_a_head_past_the_limit_is_flagged_oversized_and_parsing_resumes():
    counters = EngineCounters()
    conn = Conn(counters)
    conn.handler = HttpConnection(ENDPOINTS, conn.exchanges.append, counters, HttpLimits(max_header_bytes=4096))
    conn.client(b"GET /huge HTTP/1.1\r\nHost: svc\r\nX-Big: ")
    for _ in range(20):
        conn.client(b"a" * 1000)
    conn.client(b"\r\n\r\n").server(response(431, b"too big", reason=b"Request Header Fields Too Large"))
    conn.client(b"GET /after HTTP/1.1\r\n\r\n").server(response(200))
    exchanges = conn.close()
    assert [(x.target, x.status, x.flags) for x in exchanges] == [
        ("/huge", 431, ("oversized", "truncated")), ("/after", 200, ())]
    assert counters.oversized_heads == 1


@pytest.mark.parametrize("split", [False, True], ids=["one-segment", "two-segments"])
@pytest.mark.parametrize("side", ["request", "response"])
def test_a_whole_head_past_the_limit_is_oversized_and_what_follows_it_parses(side, split):
    """However the head arrives, the limit is the same; the next message in the same segment is not lost."""
    counters = EngineCounters()
    conn = Conn(counters)
    conn.handler = HttpConnection(ENDPOINTS, conn.exchanges.append, counters, HttpLimits(max_header_bytes=2048))
    big_request = b"GET /huge HTTP/1.1\r\nHost: svc\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n"
    big_response = response(200, b"big", headers=b"X-Big: " + b"b" * 3000 + b"\r\n")
    if side == "request":
        stream, cut = big_request + b"GET /after HTTP/1.1\r\nHost: svc\r\n\r\n", 1500
        conn.client(stream[:cut]).client(stream[cut:]) if split else conn.client(stream)
        conn.server(response(431, b"", reason=b"Request Header Fields Too Large") + response(200, b"after"))
        expected = [("/huge", 431, ("oversized", "truncated")), ("/after", 200, ("pipelined",))]
    else:
        conn.client(b"GET /huge HTTP/1.1\r\nHost: svc\r\n\r\nGET /after HTTP/1.1\r\nHost: svc\r\n\r\n")
        stream, cut = big_response + response(200, b"after"), 1500
        conn.server(stream[:cut]).server(stream[cut:]) if split else conn.server(stream)
        # Where the oversized response really ended is unknown, so /after's being pipelined is too.
        expected = [("/huge", 200, ("oversized", "truncated")), ("/after", 200, ())]
    exchanges = conn.close()
    assert [(x.target, x.status, x.flags) for x in exchanges] == expected
    assert counters.oversized_heads == 1


@pytest.mark.parametrize("piece", [1, 7, 1448])
def test_a_head_in_many_segments_parses_as_in_one(piece):
    head = b"GET /pieces HTTP/1.1\r\nHost: svc\r\nUser-Agent: " + b"u" * 3000 + b"\r\n\r\n"
    conn = Conn()
    for start in range(0, len(head), piece):
        conn.client(head[start:start + piece])
    conn.server(response(200))
    [exchange] = conn.close()
    assert (exchange.target, exchange.status, exchange.flags) == ("/pieces", 200, ())
    assert exchange.user_agent == "u" * 1024  # values are cut to MAX_VALUE characters


def test_lenient_readers_read_by_hand():
    read = read_request_head(b"GET /a b HTTP/1.1\r\nHOST: h\r\ncontent-length: 3\r\n\r\n")
    assert (read.method, read.target, read.version, read.host, read.content_length) == (b"GET", b"/a b", "1.1", b"h",
                                                                                         b"3")
    assert read.framing == b"Content-Length: 3\r\n"
    assert read_request_head(b"SSH-2.0-x\r\n\r\n") is None
    status = read_response_head(b"HTTP/1.0 302 \xffMoved\r\nLocation: /x\r\n\r\n")
    assert (status.status, status.reason, status.version) == (302, b"\xffMoved", "1.0")
    assert read_response_head(b"HTTP/1.1 20x OK\r\n\r\n") is None
    assert target_text(b"/\xe2\x80\xae\xff") == "/\u202e%FF"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(1, 50))
def test_any_bytes_after_a_request_line_never_raise(garbage, piece):
    data = b"GET /x HTTP/1.1\r\n" + garbage + b"\r\n\r\nGET /y HTTP/1.1\r\n\r\n"
    conn = Conn()
    for start in range(0, len(data), piece):
        conn.client(data[start:start + piece])
    conn.server(b"HTTP/1.1 200 OK\r\n" + garbage + b"\r\nContent-Length: 0\r\n\r\n" + response(200))
    conn.close()
