"""The engine on a capture of real servers and clients, and on hostile rewrites of it.

nginx and an http.server peer in one namespace, curl and a raw-socket pipelining
client in another, tcpdump on their bridge (see conftest.py).  The rewrites
reorder, duplicate, split and drop segments as a bad network would.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eyes_devine.adapters.pcapfile import CaptureFile
from eyes_devine.app.pipeline import Stages, read_capture
from eyes_devine.core.engine import Engine
from eyes_devine.records import EXCHANGE_FIELDS, Exchange
from tests.support import rewrite
from tests.support.records import Collected

PORTS = (80, 8080)

# target -> (method, status, request_bytes, response_bytes, http_version)
EXPECTED = {
    "/hello": ("GET", 200, 0, 6, "1.1"),
    "/chunked": ("GET", 200, 0, 13, "1.1"),
    "/nocontent": ("GET", 204, 0, 0, "1.1"),
    "/notmodified": ("GET", 304, 0, 0, "1.1"),
    "/early": ("GET", 200, 0, 12, "1.1"),
    "/missing": ("GET", 404, 0, 10, "1.1"),
    "/hello?head=1": ("HEAD", 200, 0, 0, "1.1"),
    "/hello?after-head=1": ("GET", 200, 0, 6, "1.1"),
    "/upload": ("POST", 201, 2000, 12, "1.1"),
    "/close": ("GET", 200, 0, 24, "1.1"),
    "/hello?v=1.0": ("GET", 200, 0, 6, "1.0"),
    "/hello?token=REDACTED&page=2": ("GET", 200, 0, 6, "1.1"),
    "/hello?big=1": ("GET", 200, 0, 6, "1.1"),
    "/big": ("GET", 200, 0, 200_000, "1.1"),
    "/hello?big=2": ("GET", 200, 0, 6, "1.1"),
    "/missing?big=3": ("GET", 404, 0, 10, "1.1"),
    "/a": ("GET", 200, 0, 6, "1.1"),
    "/b": ("GET", 200, 0, 7, "1.1"),
    "/c": ("GET", 404, 0, 8, "1.1"),
}


def run(frames) -> list[Exchange]:
    exchanges: list[Exchange] = []
    engine = Engine(exchanges.append, PORTS, only_server_ports=True)
    for linktype, ts, frame in frames:
        engine.feed(linktype, ts, frame, "lab")
    engine.finish()
    return exchanges


def by_target(exchanges: list[Exchange]) -> dict[str, tuple]:
    table = {x.target: (x.method, x.status, x.request_bytes, x.response_bytes, x.http_version) for x in exchanges}
    assert len(table) == len(exchanges), "an exchange was reported twice"
    return table


@pytest.fixture(scope="module")
def frames(lab_http):
    return list(CaptureFile(str(lab_http.path)))


def test_every_scenario_pairs_correctly(lab_http):
    collected = Collected()
    result = read_capture(str(lab_http.path), PORTS, Stages([collected]))
    exchanges = collected.exchanges
    assert result.error is None
    assert by_target(exchanges) == EXPECTED
    flags = {x.target: set(x.flags) for x in exchanges}
    assert flags["/b"] == flags["/c"] == {"pipelined"}
    assert all(not flags[target] for target in EXPECTED if target not in ("/b", "/c"))
    assert result.counters.gaps == 0 and result.counters.non_http_streams == 0


def test_exchange_fields_come_from_the_wire(lab_http):
    collected = Collected()
    read_capture(str(lab_http.path), PORTS, Stages([collected]))
    exchanges = collected.exchanges
    chunked = next(x for x in exchanges if x.target == "/chunked")
    assert chunked.server_ip == lab_http.server_ip and chunked.client_ip == lab_http.client_ip
    assert chunked.server_port == 8080 and chunked.content_type == "application/json"
    assert chunked.user_agent.startswith("curl/") and chunked.host == f"{lab_http.server_ip}:8080"
    assert chunked.reason == "OK" and 0 < chunked.latency_ms < 1000
    early = next(x for x in exchanges if x.target == "/early")
    assert early.status == 200, "103 Early Hints is not the final response"
    assert next(x for x in exchanges if x.target == "/a").user_agent == "pipeliner/1"


def test_read_json_prints_the_contract_and_no_secrets(lab_http):
    result = subprocess.run([sys.executable, "-m", "eyes_devine", "read", "--json", str(lab_http.path)],
                            capture_output=True, text=True, check=True)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(EXPECTED)
    assert all(tuple(record) == EXCHANGE_FIELDS for record in records)
    for secret in ("SECRET1", "SECRET2", "SECRET3"):
        assert secret not in result.stdout and secret not in result.stderr
    assert "19 exchanges" in result.stderr


def test_read_table_shows_each_exchange(lab_http):
    result = subprocess.run([sys.executable, "-m", "eyes_devine", "read", str(lab_http.path)],
                            capture_output=True, text=True, check=True, env={"COLUMNS": "140", "PATH": ""})
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["time", "client", "server"]
    assert len(lines) == 1 + len(EXPECTED)
    assert any("/b [pipelined]" in line and " 200 " in line for line in lines)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), reorder=st.booleans(), duplicate=st.booleans(), split=st.booleans())
def test_same_exchanges_whatever_the_segmentation_and_order(frames, seed, reorder, duplicate, split):
    rng = random.Random(seed)
    mutated = list(frames)
    if split:
        mutated = rewrite.split(mutated, rng)
    if reorder:
        mutated = rewrite.reorder(mutated, rng)
    if duplicate:
        mutated = rewrite.duplicate(mutated, rng)
    exchanges = run(mutated)
    assert by_target(exchanges) == EXPECTED
    assert all(set(x.flags) <= {"pipelined"} for x in exchanges)


def _server_frames_between(frames, after: bytes, before: bytes) -> list[int]:
    """Indexes of server data frames sent after the request containing ``after``, before the one with ``before``."""
    start = rewrite.data_frames_of(frames, after)[0]
    end = rewrite.data_frames_of(frames, before)[0]
    return [i for i in range(start + 1, end)
            if rewrite.payload_length(frames[i][2]) and rewrite.direction(frames[i][2])[1] == 8080]


def test_lost_segment_inside_a_body_flags_it_and_keeps_the_connection(frames):
    body = _server_frames_between(frames, b"GET /big ", b"GET /hello?big=2 ")
    lost = body[len(body) // 2]
    exchanges = run(rewrite.drop(frames, lambda index, _: index != lost))
    table = by_target(exchanges)
    big = next(x for x in exchanges if x.target == "/big")
    assert "gap" in big.flags and big.status == 200
    assert {t: v for t, v in table.items() if t != "/big"} == {t: v for t, v in EXPECTED.items() if t != "/big"}


def test_lost_response_is_flagged_and_later_exchanges_still_pair(frames):
    response = _server_frames_between(frames, b"GET /hello?big=2 ", b"GET /missing?big=3 ")
    exchanges = run(rewrite.drop(frames, lambda index, _: index not in response))
    lost = next(x for x in exchanges if x.target == "/hello?big=2")
    assert lost.status is None and {"gap", "no_response"} & set(lost.flags)
    table = by_target(exchanges)
    assert table["/missing?big=3"] == EXPECTED["/missing?big=3"]
    assert table["/big"] == EXPECTED["/big"]


def test_lost_request_does_not_shift_the_pairing(frames):
    request = rewrite.data_frames_of(frames, b"GET /hello?big=2 ")
    exchanges = run(rewrite.drop(frames, lambda index, _: index not in request))
    table = by_target(exchanges)
    assert "/hello?big=2" not in table
    assert table["/missing?big=3"] == EXPECTED["/missing?big=3"]
    assert table["/big"] == EXPECTED["/big"] and table["/hello?big=1"] == EXPECTED["/hello?big=1"]


def test_lost_pipelined_response_keeps_the_others_in_order(frames):
    response_b = [i for i in rewrite.data_frames_of(frames, b"bravo!") if rewrite.direction(frames[i][2])[1] == 80]
    exchanges = run(rewrite.drop(frames, lambda index, _: index not in response_b))
    table = by_target(exchanges)
    assert table["/a"] == EXPECTED["/a"] and table["/c"] == EXPECTED["/c"]
    lost = next(x for x in exchanges if x.target == "/b")
    assert lost.status is None and {"gap", "no_response"} <= set(lost.flags)
