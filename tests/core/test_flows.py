"""Flow summaries: classification from crafted bytes, roles, dedupe across interfaces, timeouts and bounds."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from eyes_devine.core import flows as flows_module
from eyes_devine.core.decode import LINKTYPE_ETHERNET, LINKTYPE_IPV4, decoder_for
from eyes_devine.core.engine import Engine
from eyes_devine.core.flows import FlowLimits, FlowTracker
from eyes_devine.enrich.attribution import ContainerMap
from eyes_devine.records import Attribution, ContainerInfo, EngineCounters, Exchange, Flow
from tests.support.packets import ALL_LINKTYPES, valid_frame
from tests.support.tls import client_hello

A, B = "10.0.0.1", "10.0.0.2"
A6, B6 = "fd00::1", "fd00::2"
MAC = "02:00:00:00:00:01"
ETHER = Ether(src=MAC, dst=MAC)  # explicit addresses: scapy would otherwise look the destination up


class Capture:
    """Frames through the observing decoder into a tracker; ``flows`` holds what it emitted."""

    def __init__(self, limits: FlowLimits | None = None) -> None:
        self.flows: list[Flow] = []
        self.tracker = FlowTracker(self.flows.append, limits)
        self.counters = EngineCounters()
        self.decode = decoder_for(LINKTYPE_ETHERNET, self.counters, self.tracker.observe)
        self.ts = 1000.0

    def send(self, packet: Packet, ts: float | None = None, interface: str = "br0", step: float = 0.001) -> None:
        self.ts = ts if ts is not None else self.ts + step
        self.decode(bytes(ETHER / packet), self.ts, interface)

    def end(self) -> list[Flow]:
        self.tracker.close_all()
        return self.flows

    def only(self) -> Flow:
        flows = self.end()
        assert len(flows) == 1, flows
        return flows[0]


def tcp_conversation(capture: Capture, sport: int, dport: int, client_data: list[bytes], server_data: list[bytes],
                     client: str = A, server: str = B, interface: str = "br0") -> None:
    """Handshake, the client's segments, the server's segments, then FINs both ways and the last ACK."""
    c2s, s2c = IP(src=client, dst=server), IP(src=server, dst=client)
    cseq, sseq = 1000, 5000
    capture.send(c2s / TCP(sport=sport, dport=dport, flags="S", seq=cseq), interface=interface)
    capture.send(s2c / TCP(sport=dport, dport=sport, flags="SA", seq=sseq, ack=cseq + 1), interface=interface)
    cseq, sseq = cseq + 1, sseq + 1
    for data in client_data:
        capture.send(c2s / TCP(sport=sport, dport=dport, flags="PA", seq=cseq, ack=sseq) / data, interface=interface)
        cseq += len(data)
    for data in server_data:
        capture.send(s2c / TCP(sport=dport, dport=sport, flags="PA", seq=sseq, ack=cseq) / data, interface=interface)
        sseq += len(data)
    capture.send(c2s / TCP(sport=sport, dport=dport, flags="FA", seq=cseq, ack=sseq), interface=interface)
    capture.send(s2c / TCP(sport=dport, dport=sport, flags="FA", seq=sseq, ack=cseq + 1), interface=interface)
    capture.send(c2s / TCP(sport=sport, dport=dport, flags="A", seq=cseq + 1, ack=sseq + 1), interface=interface)


def real_client_hello(server_name: str) -> bytes:
    """The ClientHello Python's own TLS stack sends for ``server_name``."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    connection = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        connection.do_handshake()
    return outgoing.read()


def test_a_dns_query_and_its_answer_are_one_dns_flow_named_by_the_question():
    capture = Capture()
    query = IP(src=A, dst=B) / UDP(sport=40000, dport=53) / DNS(id=7, rd=1, qd=DNSQR(qname="shop.example"))
    answer = IP(src=B, dst=A) / UDP(sport=53, dport=40000) / DNS(
        id=7, qr=1, qd=DNSQR(qname="shop.example"), an=DNSRR(rrname="shop.example", rdata="10.1.2.3"))
    capture.send(query)
    capture.send(answer)
    flow = capture.only()
    assert (flow.transport, flow.protocol, flow.detail) == ("udp", "dns", "shop.example")
    assert (flow.client_ip, flow.client_port, flow.server_ip, flow.server_port) == (A, 40000, B, 53)
    assert (flow.client_packets, flow.client_bytes) == (1, len(query))
    assert (flow.server_packets, flow.server_bytes) == (1, len(answer))
    assert flow.ended == "end" and flow.interface == "br0"


def test_dns_is_recognised_by_its_header_on_any_port_and_noise_on_port_53_falls_back_to_the_port():
    capture = Capture()
    capture.send(IP(src=A, dst=B) / UDP(sport=40001, dport=5300) / DNS(qd=DNSQR(qname="db.internal")))
    capture.send(IP(src=A, dst=B) / UDP(sport=40002, dport=53) / (b"\xff" * 30))
    capture.send(IP(src=A, dst=B) / UDP(sport=40003, dport=9999) / b"hello, not dns at all")
    by_port = {flow.server_port: flow for flow in capture.end()}
    assert (by_port[5300].protocol, by_port[5300].detail) == ("dns", "db.internal")
    assert (by_port[53].protocol, by_port[53].detail) == ("dns", None)
    assert by_port[9999].protocol == "udp"


def test_a_client_hello_names_tls_and_its_sni_on_any_port():
    capture = Capture()
    tcp_conversation(capture, 41000, 8443, [real_client_hello("shop.example")], [b"\x16\x03\x03\x00\x02\x02\x00"])
    flow = capture.only()
    assert (flow.protocol, flow.sni, flow.ended) == ("tls", "shop.example", "fin")
    assert (flow.client_packets, flow.server_packets) == (4, 3)  # SYN, data, FIN, last ACK / SYN+ACK, data, FIN


def test_a_client_hello_split_over_segments_is_gathered_until_its_sni():
    hello = client_hello("split.example", padding=3000, sni_last=True)
    capture = Capture()
    tcp_conversation(capture, 41001, 443, [hello[:1000], hello[1000:2000], hello[2000:]], [])
    assert capture.only().sni == "split.example"


def test_an_ssh_banner_names_ssh_and_the_servers_software():
    capture = Capture()
    tcp_conversation(capture, 41002, 2222, [b"SSH-2.0-paramiko_3.4\r\n"],
                     [b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"])
    flow = capture.only()
    assert (flow.protocol, flow.detail) == ("ssh", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3")


def test_an_ftp_greeting_names_ftp_but_an_smtp_greeting_does_not():
    capture = Capture()
    tcp_conversation(capture, 41003, 21, [b"USER anonymous\r\n"], [b"220 (vsFTPd 3.0.3)\r\n"])
    tcp_conversation(capture, 41004, 2121, [], [b"220 ProFTPD Server ready.\r\n"])
    tcp_conversation(capture, 41005, 25, [], [b"220 mail.example ESMTP Postfix\r\n"])
    by_port = {flow.server_port: flow for flow in capture.end()}
    assert (by_port[21].protocol, by_port[21].detail) == ("ftp", "220 (vsFTPd 3.0.3)")
    assert by_port[2121].protocol == "ftp"
    assert by_port[25].protocol == "tcp"


def test_http_is_recognised_by_its_request_line_and_empty_flows_by_their_port():
    capture = Capture()
    tcp_conversation(capture, 41006, 9000, [b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"], [b"HTTP/1.1 200 OK\r\n\r\n"])
    for port in (443, 22, 21, 80, 8080, 53, 7777):
        tcp_conversation(capture, 42000 + port, port, [], [])
    labels = {flow.server_port: flow.protocol for flow in capture.end()}
    assert labels == {9000: "http", 443: "tls", 22: "ssh", 21: "ftp", 80: "http", 8080: "http", 53: "dns",
                      7777: "tcp"}


def test_ping_is_one_icmp_flow_with_the_pinger_as_client():
    capture = Capture()
    for seq in range(3):
        capture.send(IP(src=A, dst=B) / ICMP(type=8, id=77, seq=seq) / (b"x" * 56))
        capture.send(IP(src=B, dst=A) / ICMP(type=0, id=77, seq=seq) / (b"x" * 56))
    flow = capture.only()
    assert (flow.transport, flow.protocol, flow.detail) == ("icmp", "icmp", "echo")
    assert (flow.client_ip, flow.server_ip, flow.client_port, flow.server_port) == (A, B, 0, 0)
    assert (flow.client_packets, flow.client_bytes, flow.server_packets, flow.server_bytes) == (3, 252, 3, 252)


def test_icmpv6_echo_and_two_pings_with_different_identifiers():
    capture = Capture()
    for ident in (1, 2):
        capture.send(IPv6(src=A6, dst=B6) / ICMPv6EchoRequest(id=ident, seq=0))
        capture.send(IPv6(src=B6, dst=A6) / ICMPv6EchoReply(id=ident, seq=0))
    flows = capture.end()
    assert [(f.protocol, f.client_ip, f.client_packets, f.server_packets) for f in flows] == [
        ("icmpv6", A6, 1, 1), ("icmpv6", A6, 1, 1)]


def test_roles_follow_the_syn_and_mid_stream_the_lower_port():
    capture = Capture()
    capture.send(IP(src=B, dst=A) / TCP(sport=443, dport=50000, flags="SA"))
    capture.send(IP(src=B, dst=A) / TCP(sport=6379, dport=50001, flags="PA") / b"+OK\r\n")
    capture.send(IP(src=B, dst=A) / UDP(sport=123, dport=50002) / (b"\x24" + bytes(47)))
    ends = sorted((f.server_ip, f.server_port, f.client_ip, f.client_port) for f in capture.end())
    assert ends == [(B, 123, A, 50002), (B, 443, A, 50000), (B, 6379, A, 50001)]


def test_the_same_packets_on_a_bridge_and_a_veth_count_once():
    capture = Capture()
    query = IP(src=A, dst=B) / UDP(sport=40000, dport=53) / DNS(qd=DNSQR(qname="twice.example"))
    answer = IP(src=B, dst=A) / UDP(sport=53, dport=40000) / DNS(qr=1, qd=DNSQR(qname="twice.example"))
    for packet in (query, answer):
        capture.send(packet, interface="veth1")
        capture.send(packet, interface="br0", step=0.00002)
    flow = capture.only()
    assert (flow.interface, flow.client_packets, flow.server_packets) == ("veth1", 1, 1)
    assert capture.tracker.duplicates == 2


def test_a_direction_moves_to_another_interface_once_the_first_went_quiet():
    capture = Capture(FlowLimits(duplicate_window=1.0))
    packet = IP(src=A, dst=B) / UDP(sport=40000, dport=9999) / b"tick"
    capture.send(packet, ts=10.0, interface="veth1")
    capture.send(packet, ts=10.0001, interface="br0")  # a copy
    capture.send(packet, ts=15.0, interface="br0")  # veth1 stopped carrying it
    capture.send(packet, ts=15.0001, interface="veth1")  # now the copy
    assert capture.only().client_packets == 2


def test_idle_flows_end_after_their_protocols_timeout():
    capture = Capture(FlowLimits(udp_idle=30, tcp_idle=300))
    capture.send(IP(src=A, dst=B) / UDP(sport=40000, dport=9999) / b"x", ts=100.0)
    capture.send(IP(src=A, dst=B) / TCP(sport=40001, dport=7777, flags="PA") / b"x", ts=100.0)
    capture.send(IP(src=A, dst="10.0.0.9") / UDP(sport=40000, dport=9999) / b"y", ts=135.0)
    assert [(f.transport, f.ended) for f in capture.flows] == [("udp", "idle")]
    capture.tracker.expire(401.0)
    assert [(f.transport, f.ended) for f in capture.flows] == [("udp", "idle"), ("tcp", "idle"), ("udp", "idle")]


def test_a_closed_connection_lingers_for_its_last_ack_then_a_new_syn_starts_another():
    capture = Capture(FlowLimits(closed_linger=2.0))
    tcp_conversation(capture, 41000, 7777, [b"a"], [b"b"])
    assert capture.flows == []  # lingering
    capture.tracker.expire(capture.ts + 2.5)
    assert [(f.ended, f.client_packets, f.server_packets) for f in capture.flows] == [("fin", 4, 3)]
    capture.ts += 3
    tcp_conversation(capture, 41000, 7777, [b"again"], [])
    capture.send(IP(src=A, dst=B) / TCP(sport=41000, dport=7777, flags="S", seq=1))  # reused port at once
    capture.send(IP(src=B, dst=A) / TCP(sport=7777, dport=41000, flags="R"))
    capture.tracker.expire(capture.ts + 2.5)
    assert [f.ended for f in capture.flows] == ["fin", "fin", "rst"]


def test_a_reset_of_nothing_starts_nothing():
    capture = Capture()
    capture.send(IP(src=A, dst=B) / TCP(sport=1, dport=2, flags="R"))
    assert capture.end() == []


def test_beyond_max_flows_the_least_recently_active_is_evicted_and_counted():
    capture = Capture(FlowLimits(max_flows=2))
    for port in (50001, 50002):
        capture.send(IP(src=A, dst=B) / UDP(sport=port, dport=9999) / b"x")
    capture.send(IP(src=A, dst=B) / UDP(sport=50001, dport=9999) / b"x", step=2)  # 50002 is now the oldest
    capture.send(IP(src=A, dst=B) / UDP(sport=50003, dport=9999) / b"x")
    assert [(f.client_port, f.ended) for f in capture.flows] == [(50002, "evicted")]
    assert capture.tracker.evicted == 1 and len(capture.tracker) == 2


def test_http_is_still_parsed_on_its_ports_only_while_every_flow_is_summarised():
    exchanges: list[Exchange] = []
    flows: list[Flow] = []
    engine = Engine(exchanges.append, (80,), tracker=FlowTracker(flows.append))
    feed = engine.feeder(LINKTYPE_ETHERNET, "br0")
    capture = Capture()
    capture.decode = lambda frame, ts, interface: feed(ts, frame)  # type: ignore[assignment, misc]
    request, reply = b"GET /a HTTP/1.1\r\nHost: b\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n"
    tcp_conversation(capture, 40000, 80, [request], [reply])
    tcp_conversation(capture, 40001, 9000, [request], [reply])
    capture.send(IP(src=A, dst=B) / UDP(sport=40002, dport=53) / DNS(qd=DNSQR(qname="x.example")))
    engine.finish()
    assert [(x.server_port, x.target, x.status) for x in exchanges] == [(80, "/a", 204)]
    assert sorted((f.server_port, f.protocol) for f in flows) == [(53, "dns"), (80, "http"), (9000, "http")]
    assert engine.counters.off_port_segments == 7


def test_the_observing_decoder_returns_the_same_segments_and_counts():
    frames = [bytes(ETHER / p) for p in (
        IP(src=A, dst=B) / TCP(sport=1, dport=80, flags="PA") / b"data",
        IPv6(src=A6, dst=B6) / TCP(sport=1, dport=80, flags="S"),
        IP(src=A, dst=B) / UDP(sport=1, dport=53) / b"q",
        IP(src=A, dst=B, flags="MF") / UDP(sport=1, dport=53) / b"fragment",
        IP(src=A, dst=B) / ICMP(),
    )] + [b"\x00" * 10, bytes(Ether(src=MAC, dst=MAC, type=0x0806) / (b"\x00" * 28))]
    plain, observing = EngineCounters(), EngineCounters()
    seen: list[tuple] = []
    decode = decoder_for(LINKTYPE_ETHERNET, plain)
    watch = decoder_for(LINKTYPE_ETHERNET, observing, lambda *packet: seen.append(packet))
    for frame in frames:
        assert decode(frame, 1.0, "br0") == watch(frame, 1.0, "br0")
    assert plain == observing
    assert [(packet[2], packet[5], packet[6], packet[8]) for packet in seen] == [
        (6, 1, 80, 44), (6, 1, 80, 60), (17, 1, 53, 29), (1, 0, 0, 28)]


def test_flows_are_attributed_to_the_containers_at_both_ends():
    containers = ContainerMap()
    containers.upsert(ContainerInfo("a" * 64, "web", "nginx", addresses=(B,)), 0.0)
    containers.upsert(ContainerInfo("c" * 64, "client", "curl", addresses=(A,)), 0.0)
    capture = Capture()
    capture.send(IP(src=A, dst=B) / UDP(sport=40000, dport=53) / DNS(qd=DNSQR(qname="x.example")))
    flow = containers.attribute(capture.only())
    assert flow.attribution == Attribution("web", "client", "a" * 12, "c" * 12)


def test_a_host_pinging_itself_is_one_flow_counted_from_the_client():
    capture = Capture()
    for kind in (8, 0):
        capture.send(IP(src="127.0.0.1", dst="127.0.0.1") / ICMP(type=kind, id=9))
    capture.send(IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=5000, dport=5000) / b"self")
    assert sorted((f.transport, f.client_packets, f.server_packets) for f in capture.end()) == [("icmp", 2, 0),
                                                                                             ("udp", 1, 0)]
    assert len(capture.tracker) == 0


def test_flows_in_progress_are_listed_for_a_live_view_most_recent_last():
    capture = Capture()
    capture.send(IP(src=A, dst=B) / UDP(sport=50001, dport=9999) / b"x", ts=10.0)
    capture.send(IP(src=A, dst=B) / TCP(sport=50002, dport=22, flags="S"), ts=11.0)
    capture.send(IP(src=A, dst=B) / UDP(sport=50001, dport=9999) / b"x", ts=12.0)
    active = capture.tracker.active(5)
    assert [(f.protocol, f.client_packets, f.ended) for f in active] == [("ssh", 1, "open"), ("udp", 2, "open")]
    assert [f.protocol for f in capture.tracker.active(1)] == ["udp"]
    assert capture.flows == []


def test_partial_client_hellos_are_held_within_a_budget(monkeypatch):
    monkeypatch.setattr(flows_module, "_HELLO_BUDGET", 2500)
    hello = client_hello("held.example", padding=3000, sni_last=True)
    capture = Capture()
    ports = (41000, 41001, 41002)
    for port in ports:
        capture.send(IP(src=A, dst=B) / TCP(sport=port, dport=443, flags="PA", seq=1) / hello[:1000])
    for port in ports:
        capture.send(IP(src=A, dst=B) / TCP(sport=port, dport=443, flags="PA", seq=1001) / hello[1000:])
    assert [(f.protocol, f.sni) for f in capture.end()] == [("tls", "held.example"), ("tls", "held.example"),
                                                            ("tls", None)]


class Seen(list):
    """An observer keeping every packet it is shown."""

    def observe(self, *packet: object) -> None:
        self.append(packet)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(
    linktype=st.sampled_from(ALL_LINKTYPES),
    ipv6=st.booleans(),
    position=st.integers(min_value=0, max_value=120),
    value=st.integers(min_value=0, max_value=255),
    cut=st.integers(min_value=0, max_value=160),
)
@example(linktype=0, ipv6=False, position=0, value=23, cut=0)  # Windows' AF_INET6 in front of an IPv4 packet
def test_observing_agrees_with_the_plain_decoder_on_every_link_type_even_corrupted(
        linktype: int, ipv6: bool, position: int, value: int, cut: int) -> None:
    valid = valid_frame(linktype, ipv6)
    frame = bytearray(valid)
    frame[position % len(frame)] = value
    for candidate in (valid, bytes(frame[: len(frame) - cut % len(frame)])):
        plain, observing = EngineCounters(), EngineCounters()
        seen = Seen()
        expected = decoder_for(linktype, plain)(candidate, 0.0, "x")
        assert decoder_for(linktype, observing, seen.observe)(candidate, 0.0, "x") == expected
        assert plain == observing
        if expected is not None:  # a TCP segment is always observed; other frames may carry UDP or ICMP
            assert [packet[5:7] for packet in seen] == [(expected.src_port, expected.dst_port)]


def test_a_link_type_that_fixes_the_ip_version_is_obeyed_when_observing():
    ipv6_packet = bytes(IPv6(src=A6, dst=B6) / TCP(sport=1, dport=80, flags="S"))
    plain, observing = EngineCounters(), EngineCounters()
    assert decoder_for(LINKTYPE_IPV4, plain)(ipv6_packet, 0.0, "x") is None
    assert decoder_for(LINKTYPE_IPV4, observing, Seen().observe)(ipv6_packet, 0.0, "x") is None
    assert plain == observing
