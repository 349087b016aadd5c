"""The fast JSON Lines writer says exactly what json.dumps(to_dict()) says."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eyes_devine.records import EXCHANGE_FIELDS, NO_ATTRIBUTION, NO_PEER, Attribution, Exchange, Peer
from eyes_devine.views.jsonl import json_line

text = st.text(max_size=40)
maybe_text = st.none() | text
exchanges = st.builds(
    Exchange,
    ts=st.floats(0, 4e9),
    interface=text,
    client_ip=st.ip_addresses().map(str),  # the decoder's inet_ntop text: never needs escaping
    client_port=st.integers(0, 65535),
    server_ip=st.ip_addresses().map(str),
    server_port=st.integers(0, 65535),
    method=text,
    target=text,
    host=maybe_text,
    http_version=st.sampled_from(["1.0", "1.1"]),
    status=st.none() | st.integers(100, 599),
    reason=maybe_text,
    latency_ms=st.none() | st.floats(0, 1e17),
    duration_ms=st.none() | st.floats(0, 1e17),
    request_bytes=st.integers(0, 2**40),
    response_bytes=st.integers(0, 2**40),
    user_agent=maybe_text,
    content_type=maybe_text,
    flags=st.lists(text, max_size=4).map(tuple),
    attribution=st.just(NO_ATTRIBUTION) | st.builds(
        Attribution,
        container=maybe_text,
        client_container=maybe_text,
        container_id=st.none() | st.text("0123456789abcdef", min_size=12, max_size=12),
        client_container_id=st.none() | st.text("0123456789abcdef", min_size=12, max_size=12),
    ),
    alerts=st.lists(text, max_size=3).map(tuple),
    peer=st.just(NO_PEER) | st.builds(
        Peer,
        country=maybe_text,
        city=maybe_text,
        latitude=st.none() | st.floats(-90, 90),
        longitude=st.none() | st.floats(-180, 180),
        reputation=maybe_text,
    ),
)


@given(exchanges)
def test_json_line_equals_the_dict_contract(exchange):
    assert json.loads(json_line(exchange)) == exchange.to_dict()


@given(exchanges)
def test_json_line_keys_are_the_exchange_fields_in_order(exchange):
    assert tuple(json.loads(json_line(exchange))) == EXCHANGE_FIELDS


@given(exchanges)
def test_json_lines_are_ascii_as_json_dumps_writes_them(exchange):
    assert json_line(exchange) == json.dumps(exchange.to_dict(), separators=(",", ":"))


@pytest.mark.parametrize("milliseconds", [70368744177664.88, 2.0**40 + 0.5, 999_999_999_999.9995, 0.0005, 1.0])
def test_latencies_where_floats_are_coarser_than_a_microsecond_are_written_as_json_dumps_writes_them(milliseconds):
    x = Exchange(0.0, "", "0.0.0.0", 0, "0.0.0.0", 0, "", "", None, "1.0", 200, None, milliseconds, milliseconds,
                 0, 0, None, None)
    assert json_line(x) == json.dumps(x.to_dict(), separators=(",", ":"))
