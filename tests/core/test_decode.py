"""Frame decoding: every supported link type, the IP/TCP header variants, and garbage."""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet

from eyes_devine.core.decode import (
    LINKTYPE_DLT_RAW12,
    LINKTYPE_DLT_RAW14,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    UnsupportedLinkType,
    decoder_for,
)
from eyes_devine.records import ACK, PSH, SYN, EngineCounters, Segment
from tests.support.packets import ALL_LINKTYPES, PAYLOAD, v4, v6, valid_frame


def ether(ethertype_payload: Packet) -> Ether:
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / ethertype_payload


def decode(linktype: int, frame: bytes | Packet) -> tuple[Segment | None, EngineCounters]:
    counters = EngineCounters()
    return decoder_for(linktype, counters)(bytes(frame), 5.0, "veth0"), counters


def assert_v4_segment(segment: Segment | None, payload: bytes = PAYLOAD) -> None:
    assert segment is not None
    assert segment.src_addr == socket.inet_pton(socket.AF_INET, "192.0.2.1")
    assert segment.dst_addr == socket.inet_pton(socket.AF_INET, "198.51.100.7")
    assert (segment.src_port, segment.dst_port, segment.seq, segment.ack) == (41000, 8080, 1000, 2000)
    assert (segment.flags, segment.window, segment.payload) == (PSH | ACK, 512, payload)
    assert (segment.ts, segment.interface) == (5.0, "veth0")


def assert_v6_segment(segment: Segment | None) -> None:
    assert segment is not None
    assert segment.src_addr == socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    assert segment.dst_addr == socket.inet_pton(socket.AF_INET6, "2001:db8::2")
    assert (segment.src_port, segment.dst_port, segment.payload) == (41000, 8080, PAYLOAD)


def test_ethernet_ipv4_tcp_decodes_every_field() -> None:
    segment, counters = decode(LINKTYPE_ETHERNET, ether(v4()))
    assert_v4_segment(segment)
    assert (counters.packets, counters.bytes, counters.undecodable) == (1, len(ether(v4())), 0)


def test_ethernet_ipv6_tcp_decodes() -> None:
    segment, _ = decode(LINKTYPE_ETHERNET, ether(v6()))
    assert_v6_segment(segment)


@pytest.mark.parametrize(
    "tags",
    [[Dot1Q(vlan=7)], [Dot1AD(vlan=5), Dot1Q(vlan=7)], [Dot1Q(vlan=1), Dot1Q(vlan=2), Dot1Q(vlan=3)]],
    ids=["802.1Q", "802.1ad+802.1Q", "three-stacked"],
)
def test_vlan_tags_are_skipped(tags: list[Packet]) -> None:
    for inner in (v4(), v6()):
        frame: Packet = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        for tag in tags:
            frame = frame / tag.copy()
        segment, _ = decode(LINKTYPE_ETHERNET, frame / inner)
        assert segment is not None and segment.payload == PAYLOAD


def test_linux_cooked_sll_decodes_ipv4_and_ipv6() -> None:
    assert_v4_segment(decode(LINKTYPE_LINUX_SLL, CookedLinux(pkttype=0) / v4())[0])
    assert_v6_segment(decode(LINKTYPE_LINUX_SLL, CookedLinux(pkttype=4) / v6())[0])


def test_linux_cooked_sll2_decodes_ipv4_and_ipv6() -> None:
    assert_v4_segment(decode(LINKTYPE_LINUX_SLL2, CookedLinuxV2(ifindex=3) / v4())[0])
    assert_v6_segment(decode(LINKTYPE_LINUX_SLL2, CookedLinuxV2(ifindex=3) / v6())[0])


@pytest.mark.parametrize("linktype", [LINKTYPE_RAW, LINKTYPE_DLT_RAW12, LINKTYPE_DLT_RAW14])
def test_raw_ip_decodes_by_ip_version(linktype: int) -> None:
    assert_v4_segment(decode(linktype, v4())[0])
    assert_v6_segment(decode(linktype, v6())[0])


def test_ipv4_and_ipv6_only_link_types() -> None:
    assert_v4_segment(decode(LINKTYPE_IPV4, v4())[0])
    assert_v6_segment(decode(LINKTYPE_IPV6, v6())[0])
    assert decode(LINKTYPE_IPV4, v6())[0] is None
    assert decode(LINKTYPE_IPV6, v4())[0] is None


@pytest.mark.parametrize("order", ["<I", ">I"], ids=["host-little-endian", "network-order"])
@pytest.mark.parametrize("linktype", [LINKTYPE_NULL, LINKTYPE_LOOP])
def test_bsd_loopback_reads_the_family_in_either_byte_order(linktype: int, order: str) -> None:
    assert_v4_segment(decode(linktype, struct.pack(order, 2) + bytes(v4()))[0])
    for af_inet6 in (24, 28, 30):
        assert_v6_segment(decode(linktype, struct.pack(order, af_inet6) + bytes(v6()))[0])
    segment, counters = decode(linktype, struct.pack(order, 7) + bytes(v4()))
    assert segment is None and counters.undecodable == 1


def test_ipv4_options_are_skipped_using_ihl() -> None:
    frame = ether(v4(options=[IPOption_Router_Alert()]))
    assert bytes(frame)[14] == 0x46
    assert_v4_segment(decode(LINKTYPE_ETHERNET, frame)[0])


def test_tcp_options_are_skipped_using_data_offset() -> None:
    packet = (
        IP(src="192.0.2.1", dst="198.51.100.7")
        / TCP(
            sport=41000,
            dport=8080,
            seq=1000,
            ack=2000,
            flags="PA",
            window=512,
            options=[("MSS", 1460), ("NOP", None), ("WScale", 7), ("Timestamp", (1, 2))],
        )
        / PAYLOAD
    )
    assert_v4_segment(decode(LINKTYPE_ETHERNET, ether(packet))[0])


def test_ethernet_padding_is_not_payload() -> None:
    packet = IP(src="192.0.2.1", dst="198.51.100.7") / TCP(sport=1, dport=2, flags="A")
    frame = bytes(ether(packet)) + b"\xaa" * 6  # padded to the 60-byte Ethernet minimum
    segment, _ = decode(LINKTYPE_ETHERNET, frame)
    assert segment is not None and segment.payload == b""
    segment, _ = decode(LINKTYPE_ETHERNET, bytes(ether(v4())) + b"\x00" * 9)
    assert_v4_segment(segment)


def test_ipv6_padding_is_not_payload() -> None:
    segment, _ = decode(LINKTYPE_ETHERNET, bytes(ether(v6())) + b"\xaa" * 4)
    assert_v6_segment(segment)


def test_ipv6_extension_headers_are_walked() -> None:
    packet = v6(IPv6ExtHdrHopByHop(), IPv6ExtHdrRouting(addresses=["2001:db8::9"]), IPv6ExtHdrDestOpt())
    assert_v6_segment(decode(LINKTYPE_ETHERNET, ether(packet))[0])


def test_ipv6_atomic_fragment_is_a_whole_packet() -> None:
    assert_v6_segment(decode(LINKTYPE_RAW, v6(IPv6ExtHdrFragment(offset=0, m=0, id=9)))[0])


@pytest.mark.parametrize("offset,more", [(0, 1), (3, 0), (3, 1)], ids=["first", "last", "middle"])
def test_ipv6_fragments_are_counted_and_skipped(offset: int, more: int) -> None:
    segment, counters = decode(LINKTYPE_RAW, v6(IPv6ExtHdrFragment(offset=offset, m=more, id=9)))
    assert segment is None
    assert (counters.ip_fragments, counters.undecodable) == (1, 0)


@pytest.mark.parametrize("flags,frag", [("MF", 0), (0, 10), ("MF", 10)], ids=["first", "last", "middle"])
def test_ipv4_fragments_are_counted_and_skipped(flags: object, frag: int) -> None:
    for linktype, frame in (
        (LINKTYPE_ETHERNET, ether(v4(flags=flags, frag=frag))),
        (LINKTYPE_RAW, v4(flags=flags, frag=frag)),
    ):
        segment, counters = decode(linktype, frame)
        assert segment is None
        assert (counters.ip_fragments, counters.undecodable) == (1, 0)


def test_dont_fragment_flag_is_not_a_fragment() -> None:
    assert_v4_segment(decode(LINKTYPE_ETHERNET, ether(v4(flags="DF")))[0])


def test_ipv4_total_length_zero_means_to_the_end_of_the_frame() -> None:
    raw = bytearray(bytes(v4()))
    raw[2:4] = b"\x00\x00"  # how Linux shows TSO super-packets on the sending host
    assert_v4_segment(decode(LINKTYPE_ETHERNET, bytes(ether(IP(bytes(raw)))))[0])
    assert_v4_segment(decode(LINKTYPE_RAW, bytes(raw))[0])


def test_syn_without_payload_decodes() -> None:
    packet = IP(src="192.0.2.1", dst="198.51.100.7") / TCP(sport=41000, dport=80, seq=7, flags="S")
    segment, _ = decode(LINKTYPE_LINUX_SLL2, CookedLinuxV2() / packet)
    assert segment is not None and segment.flags == SYN and segment.payload == b"" and segment.seq == 7


@pytest.mark.parametrize(
    "frame",
    [
        ether(IP(src="192.0.2.1", dst="198.51.100.7") / UDP(sport=53, dport=53) / b"x"),
        ether(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=53, dport=53) / b"x"),
        ether(ARP()),
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x88CC) / (b"\x00" * 28),
    ],
    ids=["udp", "udp6", "arp", "other-ethertype"],
)
def test_non_tcp_frames_count_as_undecodable(frame: Packet) -> None:
    segment, counters = decode(LINKTYPE_ETHERNET, frame)
    assert segment is None
    assert (counters.packets, counters.undecodable) == (1, 1)


def test_frames_cut_short_are_dropped_not_shortened() -> None:
    whole = bytes(ether(v4()))
    for size in range(len(whole)):
        segment, counters = decode(LINKTYPE_ETHERNET, whole[:size])
        assert segment is None and counters.undecodable == 1, size
    whole6 = bytes(ether(v6(IPv6ExtHdrHopByHop())))
    for size in range(len(whole6)):
        assert decode(LINKTYPE_ETHERNET, whole6[:size])[0] is None, size


def test_bad_header_lengths_are_undecodable() -> None:
    bad_ihl = bytearray(bytes(v4()))
    bad_ihl[0] = 0x44
    bad_offset = bytearray(bytes(v4()))
    bad_offset[32] = 0x40  # TCP data offset 4 words
    huge_offset = bytearray(bytes(v4()))
    huge_offset[32] = 0xF0  # 60-byte TCP header, longer than the packet
    for raw in (bad_ihl, bad_offset, huge_offset):
        segment, counters = decode(LINKTYPE_RAW, bytes(raw))
        assert segment is None and counters.undecodable == 1


def test_counters_accumulate_over_frames() -> None:
    counters = EngineCounters()
    decoder = decoder_for(LINKTYPE_ETHERNET, counters)
    frames = [bytes(ether(v4())), bytes(ether(v6())), b"\x00" * 3]
    for frame in frames:
        decoder(frame, 0.0, "eth0")
    assert (counters.packets, counters.bytes, counters.undecodable) == (3, sum(map(len, frames)), 1)


def test_unknown_link_type_is_refused_by_number() -> None:
    with pytest.raises(UnsupportedLinkType, match="147") as raised:
        decoder_for(147, EngineCounters())
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("linktype", ALL_LINKTYPES)
@given(frame=st.binary(max_size=200))
def test_random_bytes_never_raise(linktype: int, frame: bytes) -> None:
    counters = EngineCounters()
    result = decoder_for(linktype, counters)(frame, 0.0, "x")
    assert result is None or isinstance(result, Segment)
    assert counters.packets == 1


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(
    linktype=st.sampled_from(ALL_LINKTYPES),
    ipv6=st.booleans(),
    position=st.integers(min_value=0, max_value=120),
    value=st.integers(min_value=0, max_value=255),
    cut=st.integers(min_value=0, max_value=160),
)
def test_corrupted_valid_frames_never_raise(linktype: int, ipv6: bool, position: int, value: int, cut: int) -> None:
    frame = bytearray(valid_frame(linktype, ipv6))
    frame[position % len(frame)] = value
    counters = EngineCounters()
    result = decoder_for(linktype, counters)(bytes(frame[: len(frame) - cut % len(frame)]), 0.0, "x")
    assert result is None or isinstance(result, Segment)


@pytest.mark.parametrize("linktype", ALL_LINKTYPES)
def test_valid_frames_of_every_link_type_decode(linktype: int) -> None:
    for ipv6 in (False, True):
        segment, counters = decode(linktype, valid_frame(linktype, ipv6))
        assert segment is not None and segment.payload == PAYLOAD, (linktype, ipv6)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    sport=st.integers(0, 65535),
    dport=st.integers(0, 65535),
    seq=st.integers(0, 2**32 - 1),
    ack=st.integers(0, 2**32 - 1),
    flags=st.integers(0, 255),
    window=st.integers(0, 65535),
    payload=st.binary(max_size=64),
    linktype=st.sampled_from([LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW]),
    options=st.booleans(),
)
def test_decoded_fields_match_what_was_built(
    sport: int, dport: int, seq: int, ack: int, flags: int, window: int, payload: bytes, linktype: int, options: bool
) -> None:
    tcp = TCP(
        sport=sport,
        dport=dport,
        seq=seq,
        ack=ack,
        flags=flags,
        window=window,
        options=[("MSS", 1400)] if options else [],
    )
    ip = IP(src="10.1.2.3", dst="10.3.2.1", options=[IPOption_Router_Alert()] if options else []) / tcp / payload
    link = {
        LINKTYPE_ETHERNET: ether(ip),
        LINKTYPE_LINUX_SLL: CookedLinux() / ip,
        LINKTYPE_LINUX_SLL2: CookedLinuxV2() / ip,
        LINKTYPE_RAW: ip,
    }[linktype]
    segment, _ = decode(linktype, link)
    assert segment == Segment(
        5.0, "veth0", bytes([10, 1, 2, 3]), bytes([10, 3, 2, 1]), sport, dport, seq, ack, flags, window, payload
    )
