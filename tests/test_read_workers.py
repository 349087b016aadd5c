"""`read --workers N`: several processes share a file's connections and print what one process prints."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from tests.support.captures import PCAPS

CAPTURES = ["lab-http", "lab-flows", "tls-keylog"]


def eyes_read(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eyes_devine", "read", "--no-docker", *args], capture_output=True,
                          text=True, timeout=120)


def by_connection(lines: list[str]) -> dict[tuple, list[str]]:
    """Each connection's lines, in the order they were printed."""
    connections: dict[tuple, list[str]] = defaultdict(list)
    for line in lines:
        record = json.loads(line)
        connections[(record["client_ip"], record["client_port"], record["server_port"])].append(line)
    return connections


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("name", CAPTURES)
def test_workers_print_the_same_exchanges_each_connection_in_order_and_the_same_summary(name, workers):
    extra = ["--tls-keylog", str(PCAPS / "tls-keylog.keys")] if name == "tls-keylog" else []
    one = eyes_read("--json", *extra, str(PCAPS / f"{name}.pcap"))
    many = eyes_read("--json", "--workers", str(workers), *extra, str(PCAPS / f"{name}.pcap"))
    assert one.returncode == many.returncode == 0, many.stderr
    assert sorted(many.stdout.splitlines()) == sorted(one.stdout.splitlines()) and one.stdout
    assert by_connection(many.stdout.splitlines()) == by_connection(one.stdout.splitlines())
    summary = one.stderr.splitlines()[-1].rsplit(" in ", 1)[0]
    assert many.stderr.splitlines()[-1].rsplit(" in ", 1)[0] == summary, "the counters add up to one reader's"


def test_flows_come_out_sorted_as_with_one_worker():
    capture = str(PCAPS / "lab-flows.pcap")
    one = eyes_read("--json", "-q", "--flows", capture)
    many = eyes_read("--json", "-q", "--flows", "--workers", "2", capture)
    assert many.returncode == 0 and many.stdout == one.stdout == (PCAPS / "lab-flows.flows.jsonl").read_text()


def test_the_table_has_one_header():
    result = eyes_read("--workers", "2", str(PCAPS / "lab-http.pcap"))
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and lines[0].startswith("time")
    assert sum(line.startswith("time ") for line in lines) == 1 and len(lines) == 20


def test_a_truncated_file_prints_what_was_readable_then_one_line_and_exit_1(tmp_path):
    data = (PCAPS / "lab-http.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) * 2 // 3])
    one, many = eyes_read("--json", str(cut)), eyes_read("--json", "--workers", "2", str(cut))
    assert one.returncode == many.returncode == 1
    assert sorted(many.stdout.splitlines()) == sorted(one.stdout.splitlines()) and one.stdout
    assert many.stderr.splitlines()[-1] == one.stderr.splitlines()[-1] and "truncated" in one.stderr
    assert "Traceback" not in many.stderr


def test_a_link_type_no_worker_can_read_is_one_line_and_exit_1(tmp_path):
    path = tmp_path / "wifi.pcap"
    wrpcap(str(path), [Raw(b"\x00" * 40)], linktype=105)
    result = eyes_read("--workers", "2", str(path))
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "105" in result.stderr


@pytest.mark.parametrize("value", ["0", "65", "two"])
def test_a_bad_worker_count_is_a_usage_error(value):
    result = eyes_read("--workers", value, str(PCAPS / "lab-http.pcap"))
    assert result.returncode == 2 and "--workers" in result.stderr and "Traceback" not in result.stderr


def keep_alive(path, connections: int, requests: int) -> None:
    """``connections`` keep-alive connections of ``requests`` GETs each: more output than a pipe holds."""
    request = b"GET /items/%d HTTP/1.1\r\nHost: shop\r\n\r\n"
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    packets = []
    for connection in range(connections):
        port = 40000 + 2 * connection
        client = Ether() / IP(src="10.9.0.3", dst="10.9.0.2")
        server = Ether() / IP(src="10.9.0.2", dst="10.9.0.3")
        seq, ack = 101, 501
        packets += [client / TCP(sport=port, dport=8080, flags="S", seq=100),
                    server / TCP(sport=8080, dport=port, flags="SA", seq=500, ack=101)]
        for index in range(requests):
            sent = request % index
            packets.append(client / TCP(sport=port, dport=8080, flags="PA", seq=seq, ack=ack) / Raw(sent))
            seq += len(sent)
            packets.append(server / TCP(sport=8080, dport=port, flags="PA", seq=ack, ack=seq) / Raw(response))
            ack += len(response)
    for index, packet in enumerate(packets):
        packet.time = 1_700_000_000 + index * 0.0001
    wrpcap(str(path), packets)


def test_a_reader_that_goes_away_ends_the_workers_quietly(tmp_path):
    capture = tmp_path / "many.pcap"
    keep_alive(capture, connections=4, requests=400)
    assert len(eyes_read("--json", "-q", "--workers", "2", str(capture)).stdout) > 1 << 17, "more than a pipe holds"
    reader = subprocess.run(f"{sys.executable} -m eyes_devine read --no-docker --json --workers 2 {capture} "
                            "| head -1", shell=True, capture_output=True, text=True, timeout=60)
    assert reader.returncode == 0 and len(reader.stdout.splitlines()) == 1
    assert reader.stderr == "", "quiet, as tcpdump is when its reader goes away"
