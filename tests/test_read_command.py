"""`eyes-devine read` as a user meets it: good files, bad files, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from tests.support.captures import PCAPS
from tests.support.requirements import require_binary

REQUEST = b"GET /items?id=7 HTTP/1.1\r\nHost: shop\r\nUser-Agent: t/1\r\n\r\n"
RESPONSE = b"HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


def conversation(port: int = 8080) -> list:
    client = Ether() / IP(src="10.9.0.3", dst="10.9.0.2")
    server = Ether() / IP(src="10.9.0.2", dst="10.9.0.3")
    packets = [
        client / TCP(sport=40000, dport=port, flags="S", seq=100),
        server / TCP(sport=port, dport=40000, flags="SA", seq=500, ack=101),
        client / TCP(sport=40000, dport=port, flags="A", seq=101, ack=501),
        client / TCP(sport=40000, dport=port, flags="PA", seq=101, ack=501) / Raw(REQUEST),
        server / TCP(sport=port, dport=40000, flags="PA", seq=501, ack=101 + len(REQUEST)) / Raw(RESPONSE),
        client / TCP(sport=40000, dport=port, flags="FA", seq=101 + len(REQUEST), ack=501 + len(RESPONSE)),
        server / TCP(sport=port, dport=40000, flags="FA", seq=501 + len(RESPONSE), ack=102 + len(REQUEST)),
    ]
    for index, packet in enumerate(packets):
        packet.time = 1_700_000_000 + index * 0.001
    return packets


def eyes_read(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eyes_devine", "read", *args], capture_output=True, text=True,
                          timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("eyes-devine: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[-1]


@pytest.fixture
def good_pcap(tmp_path) -> Path:
    path = tmp_path / "good.pcap"
    wrpcap(str(path), conversation())
    return path


def test_json_lines_carry_the_exchange(good_pcap):
    result = eyes_read("--json", str(good_pcap))
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (record["method"], record["target"], record["status"], record["reason"]) == ("GET", "/items?id=7", 201,
                                                                                        "Created")
    assert record["latency_ms"] == pytest.approx(1.0, abs=0.01) and record["response_bytes"] == 3
    assert "1 exchanges" in result.stderr and "7 packets" in result.stderr


def test_pcapng_reads_the_same(tmp_path, good_pcap):
    editcap = require_binary("editcap", "wireshark-common")
    path = tmp_path / "good.pcapng"
    subprocess.run([editcap, "-F", "pcapng", str(good_pcap), str(path)], check=True, capture_output=True)

    def records(capture: Path) -> list[dict]:
        lines = eyes_read("--json", str(capture)).stdout.splitlines()
        return [{**json.loads(line), "interface": None} for line in lines]

    assert records(path) == records(good_pcap) != []


def test_other_ports_are_skipped_and_the_summary_says_so(tmp_path):
    path = tmp_path / "odd.pcap"
    wrpcap(str(path), conversation(port=9000))
    result = eyes_read("--json", str(path))
    assert result.returncode == 0 and result.stdout == ""
    assert "on other ports (see --ports)" in result.stderr
    assert len(eyes_read("--json", "--ports", "9000", str(path)).stdout.splitlines()) == 1


def test_quiet_prints_no_summary(good_pcap):
    assert eyes_read("-q", "--json", str(good_pcap)).stderr == ""


def test_missing_file(tmp_path):
    assert_one_line_error(eyes_read(str(tmp_path / "absent.pcap")), "no such file")


def test_directory(tmp_path):
    assert_one_line_error(eyes_read(str(tmp_path)), "is a directory")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    assert_one_line_error(eyes_read(str(path)), "is empty")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.pcap"
    path.write_bytes(bytes(range(256)) * 20)
    assert_one_line_error(eyes_read(str(path)), "not a pcap or pcapng capture")


def test_unsupported_link_type(tmp_path):
    path = tmp_path / "wifi.pcap"
    wrpcap(str(path), [Raw(b"\x00" * 40)], linktype=105)
    assert_one_line_error(eyes_read(str(path)), "105")


def test_truncated_file_prints_what_was_readable_then_the_error(tmp_path, good_pcap):
    data = good_pcap.read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[: len(data) - 30])  # into the last record: both exchanges' packets precede it
    result = eyes_read("--json", str(path))
    assert_one_line_error(result, "truncated")
    assert len(result.stdout.splitlines()) == 1, "the exchange before the damage is still printed"


def test_bad_ports_flag_is_a_usage_error(good_pcap):
    result = eyes_read("--ports", "eighty", str(good_pcap))
    assert result.returncode == 2 and "'eighty'" in result.stderr and "Traceback" not in result.stderr


def test_table_output(good_pcap):
    result = eyes_read(str(good_pcap))
    lines = result.stdout.splitlines()
    assert lines[0].startswith("time") and " 201 " in lines[1] and lines[1].rstrip().endswith("/items?id=7")


@pytest.mark.parametrize("name", ["lab-http", "lab-flows"])
@pytest.mark.parametrize("flows", [False, True], ids=["exchanges", "flows"])
def test_json_output_on_the_committed_captures_is_unchanged(name, flows):
    """Byte for byte what `read --json` printed when the captures were committed: a refactor must not move it.

    A change meant to alter the output updates the .jsonl files beside the captures in the same commit.
    """
    capture = PCAPS / f"{name}.pcap"
    expected = PCAPS / f"{name}{'.flows' if flows else ''}.jsonl"
    result = eyes_read("--json", "-q", "--no-docker", *(["--flows"] if flows else []), str(capture))
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected.read_text()


def test_an_error_quoting_a_file_name_shows_its_control_characters_escaped(tmp_path):
    result = eyes_read(str(tmp_path / "absent\x1b]0;pwned\x07\u202e.pcap"))
    assert_one_line_error(result, "absent\\x1b]0;pwned\\x07\\u202e.pcap: no such file")
    assert result.stderr.splitlines()[-1].isprintable()


def test_the_summary_shows_a_file_name_with_control_characters_escaped(tmp_path, good_pcap):
    named = tmp_path / "capture\x1b]0;pwned\x07.pcap"
    good_pcap.rename(named)
    result = eyes_read(str(named))
    assert result.returncode == 0, result.stderr
    [summary] = result.stderr.splitlines()
    assert summary.isprintable() and summary.startswith(f"{tmp_path}/capture\\x1b]0;pwned\\x07.pcap: ")


def test_the_table_shows_alerts_before_the_target_so_no_cut_hides_them():
    def row(columns: int) -> str:
        result = subprocess.run([sys.executable, "-m", "eyes_devine", "read", str(PCAPS / "overlap-decoy.pcap")],
                                capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": str(columns)})
        assert result.returncode == 0, result.stderr
        header, line = result.stdout.splitlines()
        assert header.endswith("target [flags] (alerts first: !rule)")
        return line

    assert row(200).endswith(" !sensitive-path /.env?x=1&y=2222 [overlap_conflict]")
    narrow = row(110)
    assert narrow.endswith(" !sensitive-path /.e…"), "the target is cut, the alert is not"


TLS_PCAP, TLS_KEYS = PCAPS / "tls-keylog.pcap", PCAPS / "tls-keylog.keys"


def test_a_key_log_decrypts_https_and_443_joins_the_default_ports():
    result = eyes_read(str(TLS_PCAP), "--json", "--tls-keylog", str(TLS_KEYS))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 9 and all(record["flags"] == ["tls"] for record in records)
    assert "8 TLS decrypted" in result.stderr and "/h1-tls12?token=REDACTED" in result.stdout


def test_a_key_log_from_the_environment_and_one_that_holds_nothing_useful(tmp_path):
    env = {**os.environ, "EYES_DEVINE_TLS_KEYLOG": str(TLS_KEYS)}
    result = subprocess.run([sys.executable, "-m", "eyes_devine", "read", "-q", "--json", str(TLS_PCAP)],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 9
    garbage = tmp_path / "garbage.keys"
    garbage.write_bytes(os.urandom(3000) + b"\nCLIENT_RANDOM zz\n")
    result = eyes_read(str(TLS_PCAP), "--json", "--tls-keylog", str(garbage))
    assert result.returncode == 0 and result.stdout == "" and "(8 TLS)" in result.stderr


@pytest.mark.parametrize(("name", "expected"), [("absent.keys", "no such file"), (".", "not a regular file"),
                                                 ("fifo", "not a regular file"), ("", "an empty name")])
def test_a_key_log_that_cannot_be_read_is_one_line_and_exit_2(tmp_path, name, expected):
    if name == "fifo":
        os.mkfifo(tmp_path / name)  # opening it would wait for a writer: refused before
    result = eyes_read(str(TLS_PCAP), "--tls-keylog", str(tmp_path / name) if name else "")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and expected in result.stderr and "Traceback" not in result.stderr
