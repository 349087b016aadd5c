"""TCP reassembly: ordering, duplicates, overlaps, gaps, connection lifecycle and memory bounds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eyes_devine.core.tcp import Endpoints, FlowTable, TcpLimits
from eyes_devine.records import ACK, FIN, RST, SYN, EngineCounters, Segment
from tests.support.frames import Recorders, segment

ISN_C = 1000
ISN_S = 5000
C0 = ISN_C + 1
"""First client data byte."""
S0 = ISN_S + 1
"""First server data byte."""


def table(
    server_ports: frozenset[int] = frozenset({80}), **limits: float
) -> tuple[FlowTable, Recorders, EngineCounters]:
    recorders = Recorders()
    counters = EngineCounters()
    return FlowTable(recorders, counters, server_ports, TcpLimits(**limits)), recorders, counters


def handshake(flows: FlowTable, isn_c: int = ISN_C, isn_s: int = ISN_S, client_port: int = 40000) -> None:
    flows.ingest(segment(True, isn_c, flags=SYN, client_port=client_port))
    flows.ingest(segment(False, isn_s, flags=SYN | ACK, ack=isn_c + 1, client_port=client_port))
    flows.ingest(segment(True, isn_c + 1, ack=isn_s + 1, client_port=client_port))


def test_in_order_conversation_is_delivered_then_closed_once() -> None:
    flows, recorders, counters = table()
    handshake(flows)
    flows.ingest(segment(True, C0, b"GET / HTTP/1.1\r\n\r\n", ack=S0))
    flows.ingest(segment(False, S0, b"HTTP/1.1 200 OK\r\n\r\n", ack=C0 + 18))
    flows.ingest(segment(True, C0 + 18, flags=FIN | ACK, ack=S0 + 19))
    flows.ingest(segment(False, S0 + 19, flags=FIN | ACK, ack=C0 + 19, ts=2.0))
    flows.ingest(segment(True, C0 + 19, ack=S0 + 20, ts=2.0))
    [recorder] = recorders
    assert recorder.endpoints == Endpoints("eth0", "10.0.0.1", 40000, "10.0.0.2", 80)
    assert recorder.events == [
        ("data", True, b"GET / HTTP/1.1\r\n\r\n"),
        ("data", False, b"HTTP/1.1 200 OK\r\n\r\n"),
        ("closed", 2.0),
    ]
    assert len(flows) == 0
    assert (counters.flows, counters.gaps, counters.retransmitted_segments) == (1, 0, 0)


def test_reordered_segments_deliver_in_order() -> None:
    flows, recorders, _ = table()
    handshake(flows)
    for offset, payload in ((6, b"ghi"), (0, b"abc"), (3, b"def")):
        flows.ingest(segment(True, C0 + offset, payload))
    assert recorders[0].events == [("data", True, b"abc"), ("data", True, b"def"), ("data", True, b"ghi")]


def test_duplicate_segments_are_delivered_once_and_counted() -> None:
    flows, recorders, counters = table()
    handshake(flows)
    for offset, payload in ((0, b"abc"), (0, b"abc"), (6, b"ghi"), (6, b"ghi"), (3, b"def"), (3, b"def")):
        flows.ingest(segment(True, C0 + offset, payload))
    assert recorders[0].stream(True) == b"abcdefghi"
    assert counters.retransmitted_segments == 3
    assert counters.overlap_conflicts == 0


def test_in_order_data_beats_held_data_as_linux_does() -> None:
    """Linux hands in-order bytes to the application at once; a held out-of-order copy of them loses."""
    flows, recorders, counters = table()
    handshake(flows)
    flows.ingest(segment(True, C0, b"ab"))
    flows.ingest(segment(True, C0 + 4, b"EF"))
    flows.ingest(segment(True, C0 + 2, b"cdXXgh"))  # covers the held "EF" with other bytes, starting lower
    assert recorders[0].stream(True) == b"abcdXXgh"
    events = recorders[0].events
    before = b"".join(e[2] for e in events[: events.index(("overlap", True))] if e[0] == "data")
    assert before == b"abcd"  # told just before the first byte whose copies differ
    assert counters.overlap_conflicts == 1


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        # (offset, bytes) in arrival order after a delivered "a"; the first byte of the stream, "a", is sent at 0.
        pytest.param([(2, b"CD"), (2, b"cd")], b"CD", id="same-start-same-length-first-wins"),
        pytest.param([(2, b"CD"), (2, b"cde")], b"cde", id="same-start-longer-wins"),
        pytest.param([(2, b"CDE"), (2, b"cd")], b"CDE", id="same-start-shorter-loses"),
        pytest.param([(3, b"DE"), (2, b"cde")], b"cde", id="lower-start-wins"),
        pytest.param([(2, b"CDE"), (3, b"de")], b"CDE", id="higher-start-loses"),
        pytest.param([(2, b"CD"), (4, b"EF"), (3, b"dXfG")], b"CDXfG", id="loses-to-one-beats-the-other"),
        pytest.param([(3, b"D"), (5, b"F"), (2, b"cdefg")], b"cdefg", id="lower-start-covers-several"),
        pytest.param([(2, b"CDE"), (4, b"xy"), (3, b"dzz")], b"CDEz", id="held-pieces-keep-their-segment-start"),
    ],
)
def test_overlapping_out_of_order_copies_follow_linux(segments: list[tuple[int, bytes]], expected: bytes) -> None:
    """The copy Linux's out-of-order queue keeps: the segment starting lowest, then the longer one, then the first
    (Suricata's ``linux`` policy).  The hole at offset 1 holds everything back until it is filled."""
    flows, recorders, _ = table()
    handshake(flows)
    flows.ingest(segment(True, C0, b"a"))
    for offset, payload in segments:
        flows.ingest(segment(True, C0 + offset, payload))
    flows.ingest(segment(True, C0 + 1, b"b"))
    assert recorders[0].stream(True) == b"ab" + expected


def test_a_conflict_behind_a_hole_is_reported_when_its_bytes_are_delivered() -> None:
    flows, recorders, counters = table()
    handshake(flows)
    flows.ingest(segment(True, C0 + 4, b"EF"))
    flows.ingest(segment(True, C0 + 3, b"dXf"))  # starts lower: its "Xf" wins
    flows.close_all(9.0)
    assert recorders[0].events[:4] == [("gap", True, 3), ("data", True, b"d"), ("overlap", True), ("data", True, b"Xf")]
    assert counters.overlap_conflicts == 1


def test_overlapping_segments_with_equal_bytes_are_not_conflicts() -> None:
    flows, recorders, counters = table()
    handshake(flows)
    flows.ingest(segment(True, C0 + 4, b"efgh"))
    flows.ingest(segment(True, C0 + 6, b"ghij"))
    flows.ingest(segment(True, C0 + 2, b"cdef"))
    flows.ingest(segment(True, C0, b"abcdefghijkl"))  # repacketised retransmission of everything
    assert recorders[0].stream(True) == b"abcdefghijkl"
    assert counters.overlap_conflicts == 0


def test_sequence_numbers_wrap_around_2_to_the_32() -> None:
    flows, recorders, _ = table()
    isn_c, isn_s = 2**32 - 5, 2**32 - 1
    handshake(flows, isn_c, isn_s)
    for offset in (8, 0, 4):  # the client's bytes cross the wrap; offset 8 arrives first
        flows.ingest(segment(True, isn_c + 1 + offset, b"%4d" % offset))
    flows.ingest(segment(False, isn_s + 1, b"server"))  # the server's first byte is seq 0
    flows.ingest(segment(False, 6, b"-more"))
    assert recorders[0].stream(True) == b"   0   4   8"
    assert recorders[0].stream(False) == b"server-more"
    assert recorders[0].gaps(True) == recorders[0].gaps(False) == []


def test_mid_stream_pickup_picks_the_listed_server_port() -> None:
    flows, recorders, counters = table(frozenset({40000}))
    flows.ingest(segment(False, 777, b"from 10.0.0.2:80"))
    flows.ingest(segment(True, 90, b"from 10.0.0.1:40000"))
    [recorder] = recorders
    assert recorder.endpoints == Endpoints("eth0", "10.0.0.2", 80, "10.0.0.1", 40000)
    assert recorder.stream(True) == b"from 10.0.0.2:80"
    assert recorder.stream(False) == b"from 10.0.0.1:40000"
    assert counters.flows == 1


def test_mid_stream_pickup_without_a_listed_port_takes_the_lower_port_as_server() -> None:
    for ports in (frozenset(), frozenset({80, 40000})):
        flows, recorders, _ = table(ports)
        flows.ingest(segment(True, 90, b"request"))
        assert recorders[0].endpoints.server_port == 80
        assert recorders[0].stream(True) == b"request"


def test_handshake_decides_roles_over_ports() -> None:
    flows, recorders, _ = table(frozenset({40000}))
    flows.ingest(segment(False, ISN_S, flags=SYN | ACK, ack=C0))  # capture starts at the SYN+ACK
    flows.ingest(segment(True, C0, b"hello", ack=S0))
    assert recorders[0].endpoints.server_port == 80
    assert recorders[0].stream(True) == b"hello"
    flows, recorders, _ = table(frozenset({40000}))
    flows.ingest(segment(True, ISN_C, flags=SYN))
    flows.ingest(segment(True, C0, b"hello"))
    assert recorders[0].endpoints.client_port == 40000


def test_earlier_data_after_a_mid_stream_start_is_an_old_retransmission() -> None:
    flows, recorders, counters = table()
    flows.ingest(segment(True, 2000, b"later"))
    flows.ingest(segment(True, 1995, b"early"))
    assert recorders[0].stream(True) == b"later"
    assert counters.retransmitted_segments == 1


def test_a_connection_that_carries_no_bytes_never_builds_a_handler() -> None:
    """SYN floods and port scans: tens of thousands of half-open flows must not each cost an HTTP parser."""
    flows, recorders, counters = table()
    for port in range(1000, 3000):
        flows.ingest(segment(True, ISN_C, flags=SYN, client_port=port))
    assert len(flows) == 2000 and recorders == [] and counters.flows == 2000
    flows.close_all(2.0)
    assert recorders == []


def test_bare_ack_rst_or_fin_for_an_unknown_connection_creates_nothing() -> None:
    flows, recorders, counters = table()
    flows.ingest(segment(True, 1, ack=2))
    flows.ingest(segment(True, 1, flags=RST))
    flows.ingest(segment(True, 1, flags=FIN | ACK))
    assert (len(flows), len(recorders), counters.flows) == (0, 0, 0)


def test_syn_payload_is_delivered_after_the_syn() -> None:
    flows, recorders, _ = table()
    flows.ingest(segment(True, ISN_C, b"early data", flags=SYN))
    flows.ingest(segment(True, C0 + 10, b" and more"))
    assert recorders[0].stream(True) == b"early data and more"


def test_rst_flushes_declaring_holes_and_closes() -> None:
    flows, recorders, counters = table()
    handshake(flows)
    flows.ingest(segment(True, C0, b"abc"))
    flows.ingest(segment(True, C0 + 5, b"fgh"))
    flows.ingest(segment(False, S0, flags=RST | ACK, ts=3.0))
    assert recorders[0].events == [
        ("data", True, b"abc"),
        ("gap", True, 2),
        ("data", True, b"fgh"),
        ("closed", 3.0),
    ]
    assert (len(flows), counters.gaps, counters.bytes_missing) == (0, 1, 2)


def test_late_retransmission_after_close_is_dropped_but_a_new_syn_opens_a_new_connection() -> None:
    flows, recorders, counters = table()
    handshake(flows)
    flows.ingest(segment(True, C0, b"abc", ack=S0))
    flows.ingest(segment(True, C0 + 3, flags=ACK | RST))
    flows.ingest(segment(True, C0, b"abc"))
    flows.ingest(segment(False, S0, flags=ACK))
    assert (len(recorders), counters.retransmitted_segments, len(flows)) == (1, 1, 0)
    handshake(flows, isn_c=9000)
    flows.ingest(segment(True, 9001, b"new"))
    assert len(recorders) == 2 and len(flows) == 1
    assert recorders[0].closes == 1 and recorders[1].closes == 0


def test_closed_connection_is_forgotten_after_the_linger() -> None:
    flows, recorders, _ = table(closed_linger=2.0)
    handshake(flows)
    flows.ingest(segment(True, C0, flags=RST, ts=1.0))
    flows.ingest(segment(True, C0, b"late", ts=2.5))
    assert recorders == []  # dropped as a late retransmission; the empty connection never needed a handler
    flows.ingest(segment(True, C0, b"later", ts=3.5))
    assert len(recorders) == 1 and recorders[0].stream(True) == b"later"


def test_fin_waits_for_missing_data_then_closes() -> None:
    flows, recorders, _ = table()
    handshake(flows)
    flows.ingest(segment(True, C0, b"GET", ack=S0))
    flows.ingest(segment(False, S0, b"part one, ", ack=C0 + 3))
    flows.ingest(segment(False, S0 + 19, flags=FIN | ACK, ack=C0 + 3))  # "part two." not yet seen
    flows.ingest(segment(True, C0 + 3, flags=FIN | ACK, ack=S0 + 10))
    assert len(flows) == 1
    flows.ingest(segment(False, S0 + 10, b"part two.", ack=C0 + 4))
    assert recorders[0].stream(False) == b"part one, part two."
    assert recorders[0].gaps(False) == []
    assert recorders[0].closes == 1 and len(flows) == 0


def test_half_closed_connection_keeps_delivering_the_other_direction() -> None:
    flows, recorders, _ = table()
    handshake(flows)
    flows.ingest(segment(True, C0, b"req", flags=FIN | ACK, ack=S0))
    flows.ingest(segment(False, S0, b"resp", ack=C0 + 4))
    assert len(flows) == 1
    flows.ingest(segment(False, S0 + 4, flags=FIN | ACK, ack=C0 + 4))
    assert recorders[0].stream(False) == b"resp" and recorders[0].closes == 1 and len(flows) == 0


def keep_alive_with_lost_response_segment(flows: FlowTable) -> None:
    """Request 1, response 1 whose second segment the capture lost, then request 2."""
    handshake(flows)
    flows.ingest(segment(True, C0, b"GET /1\r\n\r\n", ack=S0))
    flows.ingest(segment(False, S0, b"HTTP/1.1 2", ack=C0 + 10))
    # lost: S0 + 10, b"00 OK\r\n\r\n"


def test_gap_is_declared_as_soon_as_the_next_response_arrives_behind_an_acknowledged_hole() -> None:
    flows, recorders, counters = table()
    keep_alive_with_lost_response_segment(flows)
    flows.ingest(segment(True, C0 + 10, ack=S0 + 20))  # the client got the lost segment
    flows.ingest(segment(True, C0 + 10, b"GET /2\r\n\r\n", ack=S0 + 20))
    flows.ingest(segment(False, S0 + 20, b"HTTP/1.1 204 No Content\r\n\r\n", ack=C0 + 20))
    assert recorders[0].events == [
        ("data", True, b"GET /1\r\n\r\n"),
        ("data", False, b"HTTP/1.1 2"),
        ("data", True, b"GET /2\r\n\r\n"),
        ("gap", False, 10),
        ("data", False, b"HTTP/1.1 204 No Content\r\n\r\n"),
    ]
    assert (counters.gaps, counters.bytes_missing) == (1, 10)


def test_gap_is_declared_when_the_peer_acknowledges_held_data() -> None:
    flows, recorders, _ = table()
    keep_alive_with_lost_response_segment(flows)
    flows.ingest(segment(True, C0 + 10, b"GET /2\r\n\r\n", ack=S0 + 10))  # pipelined, before the ACK
    flows.ingest(segment(False, S0 + 20, b"HTTP/1.1 204 No Content\r\n\r\n", ack=C0 + 20))
    assert recorders[0].gaps(False) == []
    flows.ingest(segment(True, C0 + 20, ack=S0 + 48))
    assert recorders[0].events[-2:] == [("gap", False, 10), ("data", False, b"HTTP/1.1 204 No Content\r\n\r\n")]


def test_an_acknowledgement_short_of_the_held_data_declares_only_what_it_covers() -> None:
    flows, recorders, _ = table()
    handshake(flows)
    flows.ingest(segment(False, S0, b"0123"))
    flows.ingest(segment(False, S0 + 12, b"CDEF"))
    flows.ingest(segment(True, C0, ack=S0 + 8))
    assert recorders[0].gaps(False) == [4]
    flows.ingest(segment(False, S0 + 8, b"89AB"))  # the rest of the hole was only delayed
    assert recorders[0].stream(False) == b"012389ABCDEF"
    assert recorders[0].gaps(False) == [4]


def test_stale_acknowledgements_declare_nothing() -> None:
    flows, recorders, _ = table()
    handshake(flows)
    flows.ingest(segment(False, S0, b"0123"))
    flows.ingest(segment(False, S0 + 8, b"89AB"))
    flows.ingest(segment(True, C0, ack=S0 + 4))
    flows.ingest(segment(True, C0, ack=S0 - 100))
    flows.ingest(segment(False, S0 + 4, b"4567"))
    assert recorders[0].stream(False) == b"0123456789AB" and recorders[0].gaps(False) == []


def test_close_all_declares_holes_before_held_data_and_fin() -> None:
    flows, recorders, counters = table()
    handshake(flows)
    flows.ingest(segment(True, C0, b"ab"))
    flows.ingest(segment(True, C0 + 4, b"ef"))
    flows.ingest(segment(False, S0 + 7, flags=FIN | ACK))
    flows.close_all(9.0)
    assert recorders[0].events == [
        ("data", True, b"ab"),
        ("gap", True, 2),
        ("data", True, b"ef"),
        ("gap", False, 7),
        ("closed", 9.0),
    ]
    assert (counters.gaps, counters.bytes_missing, len(flows)) == (2, 9, 0)


def test_lost_tail_with_nothing_after_it_is_not_declared() -> None:
    flows, recorders, counters = table()
    handshake(flows)
    flows.ingest(segment(False, S0, b"0123"))
    flows.ingest(segment(True, C0, ack=S0 + 8))  # S0+4..S0+8 lost, nothing follows
    flows.close_all(9.0)
    assert recorders[0].events == [("data", False, b"0123"), ("closed", 9.0)]
    assert counters.gaps == 0


def test_buffer_limit_forces_a_gap_to_make_progress() -> None:
    flows, recorders, counters = table(max_buffered_bytes=100)
    handshake(flows)
    flows.ingest(segment(True, C0, b"x" * 10))
    for i in range(3):
        flows.ingest(segment(True, C0 + 20 + 40 * i, bytes([65 + i]) * 40))
    assert recorders[0].gaps(True) == [10]
    assert recorders[0].stream(True) == b"x" * 10 + b"A" * 40 + b"B" * 40 + b"C" * 40
    assert (counters.buffer_evictions, counters.gaps, counters.bytes_missing) == (1, 1, 10)


def test_full_table_evicts_the_least_recently_active_flow() -> None:
    flows, recorders, counters = table(max_flows=2)
    flows.ingest(segment(True, 1, b"a", client_port=1001, ts=1.0))
    flows.ingest(segment(True, 1, b"b", client_port=1002, ts=2.0))
    flows.ingest(segment(True, 2, b"a", client_port=1001, ts=5.0))
    flows.ingest(segment(True, 1, b"c", client_port=1003, ts=6.0))
    first, second, third = recorders
    assert (first.closes, second.closes, third.closes) == (0, 1, 0)
    assert (len(flows), counters.flows, counters.flows_evicted) == (2, 3, 1)
    flows.ingest(segment(True, 3, b"a", client_port=1001, ts=7.0))
    assert first.stream(True) == b"aaa"


def test_idle_flows_time_out() -> None:
    flows, recorders, counters = table(idle_timeout=100.0)
    flows.ingest(segment(True, 1, b"a", client_port=1001, ts=1.0))
    flows.ingest(segment(True, 1, b"b", client_port=1002, ts=1.0))
    flows.ingest(segment(True, 2, b"b", client_port=1002, ts=60.0))
    flows.expire(101.5)
    assert [r.closes for r in recorders] == [1, 0]
    assert recorders[0].events[-1] == ("closed", 101.5)
    flows.ingest(segment(True, 1, b"c", client_port=1003, ts=161.0))  # ingest sweeps on its own
    assert [r.closes for r in recorders] == [1, 1, 0]
    assert (len(flows), counters.flows_timed_out) == (1, 2)


def test_bridge_and_veth_copies_are_delivered_once() -> None:
    flows, recorders, counters = table()
    conversation = [
        segment(True, ISN_C, flags=SYN),
        segment(False, ISN_S, flags=SYN | ACK, ack=C0),
        segment(True, C0, b"GET / HTTP/1.1\r\n\r\n", ack=S0),
        segment(False, S0, b"HTTP/1.1 200 OK\r\n", ack=C0 + 18),
        segment(False, S0 + 17, b"\r\n", ack=C0 + 18),
        segment(True, C0 + 18, ack=S0 + 19),
    ]
    for original in conversation:
        for interface in ("docker0", "veth1a2b"):
            flows.ingest(original._replace(interface=interface))
    [recorder] = recorders
    assert recorder.endpoints.interface == "docker0"
    assert recorder.stream(True) == b"GET / HTTP/1.1\r\n\r\n"
    assert recorder.stream(False) == b"HTTP/1.1 200 OK\r\n\r\n"
    assert counters.retransmitted_segments == 3


def test_a_whole_connection_seen_again_late_on_a_second_interface_is_delivered_once() -> None:
    """Two sniffer threads: one interface's copy of a short connection can arrive after it closed."""
    flows, recorders, counters = table()
    conversation = [
        segment(True, ISN_C, flags=SYN),
        segment(False, ISN_S, flags=SYN | ACK, ack=C0),
        segment(True, C0, b"GET / HTTP/1.1\r\n\r\n", ack=S0),
        segment(False, S0, b"HTTP/1.1 200 OK\r\n\r\n", ack=C0 + 18),
        segment(True, C0 + 18, flags=FIN | ACK, ack=S0 + 19),
        segment(False, S0 + 19, flags=FIN | ACK, ack=C0 + 19),
        segment(True, C0 + 19, ack=S0 + 20),
    ]
    for interface in ("docker0", "veth1a2b"):
        for original in conversation:
            flows.ingest(original._replace(interface=interface))
    [recorder] = recorders
    assert recorder.endpoints.interface == "docker0" and recorder.closes == 1
    assert counters.retransmitted_segments == 4 and len(flows) == 0  # the SYNs and data; bare ACKs/FINs are ignored


def test_new_syn_on_a_live_connection_starts_a_new_one() -> None:
    flows, recorders, _ = table()
    handshake(flows)
    flows.ingest(segment(True, C0, b"old"))
    flows.ingest(segment(True, ISN_C, flags=SYN))  # retransmitted SYN: same connection
    assert len(recorders) == 1
    handshake(flows, isn_c=70_000)
    flows.ingest(segment(True, 70_001, b"new"))
    assert [r.stream(True) for r in recorders] == [b"old", b"new"]
    assert [r.closes for r in recorders] == [1, 0]


ISNS = st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32 - 400, 2**32 - 1))


@st.composite
def shuffled_conversation(draw: st.DrawFn) -> tuple[bytes, bytes, list[Segment]]:
    """Both directions' bytes, and their segments cut several ways, duplicated and shuffled (nothing lost)."""
    isn_c, isn_s = draw(ISNS), draw(ISNS)
    client_bytes, server_bytes = draw(st.binary(max_size=300)), draw(st.binary(max_size=300))
    segments = []
    for from_client, data, isn, peer_isn in ((True, client_bytes, isn_c, isn_s), (False, server_bytes, isn_s, isn_c)):
        for cutting in range(draw(st.integers(1, 3))):
            cuts = draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=10))
            bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
            pieces = list(zip(bounds, bounds[1:], strict=False))
            if cutting:  # later cuttings are partial: retransmissions of some pieces
                pieces = draw(st.lists(st.sampled_from(pieces), max_size=len(pieces))) if pieces else []
            segments += [segment(from_client, isn + 1 + a, data[a:b], ack=peer_isn + 1) for a, b in pieces]
        fin = segment(from_client, isn + 1 + len(data), flags=FIN | ACK, ack=peer_isn + 1)
        segments += [fin] * draw(st.integers(1, 2))
    handshake_segments = [segment(True, isn_c, flags=SYN), segment(False, isn_s, flags=SYN | ACK, ack=isn_c + 1)]
    return client_bytes, server_bytes, handshake_segments + draw(st.permutations(segments))


@settings(max_examples=300, deadline=None)
@given(shuffled_conversation())
def test_any_reordering_duplication_or_resegmentation_delivers_the_original_bytes(
    conversation: tuple[bytes, bytes, list[Segment]],
) -> None:
    client_bytes, server_bytes, segments = conversation
    flows, recorders, counters = table()
    for each in segments:
        flows.ingest(each)
    assert len(flows) == 0  # both FINs reached: closed without help
    if not client_bytes and not server_bytes:
        assert recorders == []  # a connection that carried no byte costs no handler
        return
    [recorder] = recorders
    assert recorder.stream(True) == client_bytes
    assert recorder.stream(False) == server_bytes
    assert recorder.gaps(True) == recorder.gaps(False) == []
    assert recorder.closes == 1 and recorder.events[-1][0] == "closed"
    assert counters.overlap_conflicts == 0


@st.composite
def lossy_conversation(draw: st.DrawFn) -> tuple[bytes, bytes, set[int], set[int], list[Segment]]:
    """Both directions cut into pieces, some lost by the capture, closed by FINs each side acknowledges."""
    isn_c, isn_s = draw(ISNS), draw(ISNS)
    client_bytes, server_bytes = draw(st.binary(max_size=200)), draw(st.binary(max_size=200))
    flows: list[list[Segment]] = []
    lost: list[set[int]] = []
    for from_client, data, isn, peer_isn in ((True, client_bytes, isn_c, isn_s), (False, server_bytes, isn_s, isn_c)):
        cuts = draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=10))
        bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
        pieces = list(zip(bounds, bounds[1:], strict=False))
        dropped = draw(st.sets(st.integers(0, max(0, len(pieces) - 1)), max_size=len(pieces)))
        lost.append({i for n, (a, b) in enumerate(pieces) if n in dropped for i in range(a, b)})
        flows.append(
            [
                segment(from_client, isn + 1 + a, data[a:b], ack=peer_isn + 1)
                for n, (a, b) in enumerate(pieces)
                if n not in dropped
            ]
            + [segment(from_client, isn + 1 + len(data), flags=FIN | ACK, ack=peer_isn + 1)]
        )
    interleaved = draw(st.permutations([0] * len(flows[0]) + [1] * len(flows[1])))
    ordered = [flows[side].pop(0) for side in interleaved]
    closing = [
        segment(True, isn_c + 2 + len(client_bytes), ack=isn_s + 2 + len(server_bytes)),
        segment(False, isn_s + 2 + len(server_bytes), ack=isn_c + 2 + len(client_bytes)),
    ]
    handshake_segments = [
        segment(True, isn_c, flags=SYN),
        segment(False, isn_s, flags=SYN | ACK, ack=isn_c + 1),
    ]
    return client_bytes, server_bytes, lost[0], lost[1], handshake_segments + ordered + closing


def rebuilt(events: list[tuple[Any, ...]], from_client: bool) -> bytes:
    """One direction as delivered, each gap filled with that many zero bytes."""
    out = bytearray()
    for event in events:
        if event[0] == "data" and event[1] == from_client:
            out += event[2]
        elif event[0] == "gap" and event[1] == from_client:
            out += bytes(event[2])
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(lossy_conversation())
def test_lost_segments_become_gaps_of_their_exact_size(
    conversation: tuple[bytes, bytes, set[int], set[int], list[Segment]],
) -> None:
    client_bytes, server_bytes, client_lost, server_lost, segments = conversation
    flows, recorders, _ = table()
    for each in segments:
        flows.ingest(each)
    assert len(flows) == 0
    if not client_bytes and not server_bytes:
        assert recorders == []  # a connection that carried no byte costs no handler
        return
    [recorder] = recorders
    for from_client, data, lost in ((True, client_bytes, client_lost), (False, server_bytes, server_lost)):
        expected = bytes(0 if i in lost else byte for i, byte in enumerate(data))
        assert rebuilt(recorder.events, from_client) == expected
        assert sum(recorder.gaps(from_client)) == len(lost)


def test_limits_refuse_a_table_that_cannot_hold_a_flow() -> None:
    with pytest.raises(ValueError, match="max_flows"):
        TcpLimits(max_flows=0)
