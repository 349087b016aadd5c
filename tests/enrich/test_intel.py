"""GeoIP and blocklists: the formats, the lookups, and what `read --geoip --blocklist --json` prints."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from eyes_devine.adapters.blocklist import Blocklist, BlocklistError, parse
from eyes_devine.adapters.geoip import GeoIP, GeoIPError, Location
from eyes_devine.config import Settings
from eyes_devine.enrich.annotator import SecurityConfigError, build_annotator
from eyes_devine.enrich.intel import Intel
from eyes_devine.records import Exchange, Peer
from tests.support.mmdb import city_record, country_record, write_database

LONDON = city_record("GB", "United Kingdom", "London", 51.5142, -0.0931)
SWEDEN = country_record("SE", "Sweden")

PLAIN = """\
# my own list
203.0.113.7
81.2.69.192/28   # a trailing comment
2a02:c7f:1234::/48 ; another
"""
FIREHOL = """\
#
# firehol_level1
#
# ipv4 hash:net ipset
#
# Maintainer      : FireHOL
# Entries         : 3 subnets, 1,3 unique IPs
#
0.0.0.0/8
5.188.10.0/23
185.220.101.1
"""
SPAMHAUS = """\
; Spamhaus DROP List 2024/01/01 - (c) 2024 The Spamhaus Project
; https://www.spamhaus.org/drop/drop.txt
; Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT
1.10.16.0/20 ; SBL256894
2.56.192.0/22 ; SBL459831
"""
SPAMHAUS_JSON = """\
{"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}
{"cidr":"2a06:e480::/29","sblid":"SBL301910","rir":"ripencc"}
{"type":"metadata","timestamp":1704067200,"size":2,"records":2,"copyright":"(c) 2024 The Spamhaus Project"}
"""


def addresses(*texts: str) -> list:
    return [ipaddress.ip_address(text) for text in texts]


def test_the_three_formats_parse_to_their_networks():
    assert [str(n) for n in parse(PLAIN.splitlines(), "plain")] == [
        "203.0.113.7/32", "81.2.69.192/28", "2a02:c7f:1234::/48"]
    assert [str(n) for n in parse(FIREHOL.splitlines(), "firehol")] == [
        "0.0.0.0/8", "5.188.10.0/23", "185.220.101.1/32"]
    assert [str(n) for n in parse(SPAMHAUS.splitlines(), "drop")] == ["1.10.16.0/20", "2.56.192.0/22"]
    assert [str(n) for n in parse(SPAMHAUS_JSON.splitlines(), "drop_v4.json")] == ["1.10.16.0/20", "2a06:e480::/29"]


def test_lookup_is_exact_at_network_edges_for_ipv4_and_ipv6():
    blocklist = Blocklist("mine", parse([*PLAIN.splitlines(), "81.2.69.200/29", "10.0.0.5/24"], "mine"))
    inside = addresses("81.2.69.192", "81.2.69.207", "81.2.69.203", "203.0.113.7", "10.0.0.0", "10.0.0.255",
                       "2a02:c7f:1234::", "2a02:c7f:1234:ffff:ffff:ffff:ffff:ffff")
    outside = addresses("81.2.69.191", "81.2.69.208", "203.0.113.6", "203.0.113.8", "10.0.1.0", "0.0.0.0",
                        "255.255.255.255", "2a02:c7f:1233:ffff:ffff:ffff:ffff:ffff", "2a02:c7f:1235::", "::")
    assert [address in blocklist for address in inside] == [True] * len(inside)
    assert [address in blocklist for address in outside] == [False] * len(outside)
    assert len(blocklist) == 5  # entries as listed; 81.2.69.200/29 merged into the /28 for lookups


def test_lookup_stays_fast_on_a_large_list():
    networks = [ipaddress.ip_network(f"{a}.{b}.0.0/24") for a in range(1, 200) for b in range(0, 256, 2)]
    blocklist = Blocklist("large", networks)
    probes = addresses(*(f"{a}.{b}.0.9" for a in range(1, 200) for b in range(0, 10)))
    started = time.perf_counter()
    hits = sum(address in blocklist for address in probes)
    elapsed = time.perf_counter() - started
    print(f"{len(probes)} lookups in a {len(networks)}-network list: {elapsed * 1e6 / len(probes):.2f} µs each")
    assert hits == 199 * 5 and elapsed < 0.5


def test_a_bad_line_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("1.2.3.4\n<html>\n")
    with pytest.raises(BlocklistError, match=r"list.txt line 2: '<html>' is not an IP address"):
        Blocklist.from_file(str(path))
    with pytest.raises(BlocklistError, match="No such file"):
        Blocklist.from_file(str(tmp_path / "absent.txt"))


def test_list_name_is_the_file_stem(tmp_path):
    path = tmp_path / "firehol_level1.netset"
    path.write_text(FIREHOL)
    assert Blocklist.from_file(str(path)).name == "firehol_level1"


def test_builtin_list_never_touches_private_or_documentation_space():
    builtin = Blocklist.builtin()
    assert builtin.name == "builtin" and len(builtin) > 0
    assert addresses("192.88.99.1", "4000::1")[0] in builtin
    quiet = addresses("10.1.2.3", "172.17.0.2", "192.168.1.1", "127.0.0.1", "100.64.0.1", "192.0.2.1",
                      "198.51.100.1", "203.0.113.1", "81.2.69.160", "8.8.8.8", "::1", "fe80::1", "fd00::1",
                      "2001:db8::1", "2a02:c7f::1", "ff02::1")
    assert [address in builtin for address in quiet] == [False] * len(quiet)


@pytest.fixture
def city_db(tmp_path) -> Path:
    return write_database(tmp_path / "city.mmdb", {"81.2.69.0/24": LONDON, "2a02:c7f::/32": LONDON})


@pytest.fixture
def country_db(tmp_path) -> Path:
    return write_database(tmp_path / "country.mmdb", {"89.160.20.0/24": SWEDEN}, "GeoLite2-Country",
                          ip_version=4)


def test_city_database_gives_country_city_and_coordinates(city_db):
    geoip = GeoIP(str(city_db))
    assert geoip.locate("81.2.69.160") == Location("GB", "London", 51.5142, -0.0931)
    assert geoip.locate("2a02:c7f::10") == Location("GB", "London", 51.5142, -0.0931)
    assert geoip.locate("81.2.70.1") is None


def test_country_database_gives_the_country_only(country_db):
    geoip = GeoIP(str(country_db))
    assert geoip.locate("89.160.20.112") == Location("SE", None, None, None)
    assert geoip.locate("2a02:c7f::10") is None  # IPv6 in an IPv4-only database


def test_missing_or_corrupt_database_is_one_line_with_the_fix(tmp_path):
    with pytest.raises(GeoIPError, match=r"absent.mmdb: no such file; give --geoip a GeoLite2-City.mmdb"):
        GeoIP(str(tmp_path / "absent.mmdb"))
    corrupt = tmp_path / "GeoLite2-City.tar.gz"
    corrupt.write_bytes(b"\x1f\x8b" + bytes(200))
    with pytest.raises(GeoIPError, match=r"tar.gz: not a MaxMind DB file; .*not the archive"):
        GeoIP(str(corrupt))
    settings = Settings(geoip_path=str(corrupt))
    with pytest.raises(SecurityConfigError) as raised:
        build_annotator(settings, print)
    assert "\n" not in str(raised.value)


def exchange(client: str, server: str) -> Exchange:
    return Exchange(1.0, "eth0", client, 40000, server, 80, "GET", "/", None, "1.1", 200, "OK", 1.0, 1.0, 0, 0, None,
                    None)


def test_the_public_end_is_the_client_else_the_server_else_nothing(city_db):
    intel = Intel(GeoIP(str(city_db)), [Blocklist("mine", parse(["81.2.69.160"], "mine"))], None)
    inbound = intel(exchange("81.2.69.160", "172.17.0.2"))
    assert inbound.peer == Peer("GB", "London", 51.5142, -0.0931, "blocklist:mine")
    outbound = intel(exchange("172.17.0.2", "81.2.69.1"))
    assert (outbound.peer.country, outbound.peer.city, outbound.peer.reputation) == ("GB", "London", None)
    for private in (exchange("172.17.0.3", "172.17.0.2"), exchange("127.0.0.1", "127.0.0.1"),
                    exchange("fd00::1", "10.0.0.1"), exchange("10.0.0.1", "224.0.0.251")):
        assert intel(private) is private
    unknown = exchange("8.8.8.8", "172.17.0.2")
    assert intel(unknown) is unknown  # public but neither located nor listed


def test_the_first_list_holding_an_address_names_the_verdict():
    first = Blocklist("first", parse(["5.188.10.0/23"], "first"))
    second = Blocklist("second", parse(["5.188.11.0/24", "185.220.101.1"], "second"))
    intel = Intel(None, [first, second], None)
    assert intel(exchange("5.188.11.9", "172.17.0.2")).peer.reputation == "blocklist:first"
    assert intel(exchange("172.17.0.2", "185.220.101.1")).peer.reputation == "blocklist:second"
    assert intel.about("10.0.0.1") is None and intel.about("not an address") is None


def test_annotating_is_cheap_per_exchange(city_db):
    intel = Intel(GeoIP(str(city_db)), [Blocklist.builtin()], None)
    batch = [exchange(f"81.2.69.{index % 250}", "172.17.0.2") for index in range(10_000)]
    started = time.perf_counter()
    for item in batch:
        intel(item)
    elapsed = time.perf_counter() - started
    print(f"10,000 public exchanges annotated in {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0


REQUEST = b"GET /login HTTP/1.1\r\nHost: shop\r\nUser-Agent: t/1\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


def conversation(client: str, server: str, client_port: int, start: float) -> list:
    """One TCP connection carrying one request and its response."""
    layer = IPv6 if ":" in client else IP
    # MAC addresses given, or scapy would ARP for each public address
    to_server = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / layer(src=client, dst=server)
    to_client = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") / layer(src=server, dst=client)
    packets = [
        to_server / TCP(sport=client_port, dport=80, flags="S", seq=100),
        to_client / TCP(sport=80, dport=client_port, flags="SA", seq=500, ack=101),
        to_server / TCP(sport=client_port, dport=80, flags="PA", seq=101, ack=501) / Raw(REQUEST),
        to_client / TCP(sport=80, dport=client_port, flags="PA", seq=501, ack=101 + len(REQUEST)) / Raw(RESPONSE),
        to_server / TCP(sport=client_port, dport=80, flags="FA", seq=101 + len(REQUEST), ack=501 + len(RESPONSE)),
        to_client / TCP(sport=80, dport=client_port, flags="FA", seq=501 + len(RESPONSE), ack=102 + len(REQUEST)),
    ]
    for index, packet in enumerate(packets):
        packet.time = start + index * 0.001
    return packets


def eyes_read(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eyes_devine", "read", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def mixed_pcap(tmp_path) -> Path:
    """Inbound from London (listed) and Sweden, outbound to London, IPv6 from London, container to container."""
    path = tmp_path / "mixed.pcap"
    packets = []
    for index, (client, server) in enumerate([("81.2.69.160", "172.17.0.2"), ("89.160.20.112", "172.17.0.2"),
                                              ("172.17.0.3", "81.2.69.1"), ("2a02:c7f::10", "fd00::2"),
                                              ("172.17.0.3", "172.17.0.2")]):
        packets += conversation(client, server, 40000 + index, 1_700_000_000 + index)
    wrpcap(str(path), packets)
    return path


def test_read_fills_geo_and_reputation_from_the_test_database_and_list(tmp_path, mixed_pcap):
    database = write_database(tmp_path / "both.mmdb", {"81.2.69.0/24": LONDON, "89.160.20.0/24": SWEDEN,
                                                         "2a02:c7f::/32": LONDON})
    listed = tmp_path / "drop.txt"
    listed.write_text(SPAMHAUS + "81.2.69.160/32 ; SBL000001\n")
    result = eyes_read("--json", "--geoip", str(database), "--blocklist", str(listed), str(mixed_pcap))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["client_ip"], r["country"], r["city"], r["latitude"], r["longitude"], r["reputation"])
            for r in records] == [
        ("81.2.69.160", "GB", "London", 51.5142, -0.0931, "blocklist:drop"),
        ("89.160.20.112", "SE", None, None, None, None),
        ("172.17.0.3", "GB", "London", 51.5142, -0.0931, None),
        ("2a02:c7f::10", "GB", "London", 51.5142, -0.0931, None),
        ("172.17.0.3", None, None, None, None, None),
    ]


def test_flows_get_the_same_geo_and_reputation_as_exchanges(tmp_path, mixed_pcap):
    database = write_database(tmp_path / "both.mmdb", {"81.2.69.0/24": LONDON, "89.160.20.0/24": SWEDEN})
    listed = tmp_path / "drop.txt"
    listed.write_text(SPAMHAUS + "81.2.69.160/32 ; SBL000001\n")
    result = eyes_read("--flows", "--json", "--geoip", str(database), "--blocklist", str(listed), str(mixed_pcap))
    assert result.returncode == 0, result.stderr
    flows = {(f["client_ip"], f["server_ip"]): f for f in map(json.loads, result.stdout.splitlines())}
    inbound = flows[("81.2.69.160", "172.17.0.2")]
    assert (inbound["country"], inbound["city"], inbound["reputation"]) == ("GB", "London", "blocklist:drop")
    assert flows[("89.160.20.112", "172.17.0.2")]["country"] == "SE"
    assert flows[("172.17.0.3", "81.2.69.1")]["country"] == "GB"
    assert flows[("172.17.0.3", "172.17.0.2")]["country"] is None


def test_read_without_geoip_still_applies_blocklists(tmp_path, mixed_pcap):
    listed = tmp_path / "firehol_level1.netset"
    listed.write_text(FIREHOL + "89.160.20.0/24\n")
    result = eyes_read("--json", "--blocklist", str(listed), str(mixed_pcap))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["reputation"] for r in records] == [None, "blocklist:firehol_level1", None, None, None]
    assert {r["country"] for r in records} == {None}


@pytest.mark.parametrize("flag, content, words", [
    ("--geoip", None, ["GeoIP database", "no such file", "--geoip"]),
    ("--geoip", b"not a database at all", ["GeoIP database", "not a MaxMind DB file"]),
    ("--blocklist", b"1.2.3.4\nexample.com\n", ["line 2", "'example.com' is not an IP address"]),
])
def test_an_unusable_file_is_one_line_and_exit_2(tmp_path, mixed_pcap, flag, content, words):
    path = tmp_path / "given"
    if content is not None:
        path.write_bytes(content)
    result = eyes_read("--json", flag, str(path), str(mixed_pcap))
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr and str(path) in lines[0], result.stderr
    for word in words:
        assert word in lines[0]
