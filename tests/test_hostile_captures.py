"""`eyes-devine read` on traffic built to blind a monitor: what it records is what the server received."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.utils import rdpcap, wrpcap

from tests.pcaps import hostile
from tests.support.captures import PCAPS


def read_json(*args: str) -> list[dict]:
    result = subprocess.run([sys.executable, "-m", "eyes_devine", "read", "--json", "-q", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize(("name", "build"), hostile.CAPTURES.items())
def test_the_committed_captures_are_what_the_builder_makes(name, build):
    """The files and tests/pcaps/hostile.py cannot drift apart unnoticed."""
    committed = [bytes(packet) for packet in rdpcap(str(PCAPS / name))]
    assert committed == [bytes(packet) for packet in build()]


def test_overlapping_copies_resolve_as_the_linux_receiver_did():
    """The decoy arrived first, out of order; Linux kept the in-order copy and busybox served /.env."""
    [exchange] = read_json(str(PCAPS / "overlap-decoy.pcap"))
    assert exchange["target"] == "/.env?x=1&y=2222"
    assert exchange["status"] == 200 and exchange["response_bytes"] == 16
    assert exchange["flags"] == ["overlap_conflict"]
    assert exchange["alerts"] == ["sensitive-path"]


def test_odd_bytes_hide_no_request_on_a_keep_alive_connection():
    exchanges = read_json(str(PCAPS / "odd-bytes.pcap"))
    assert [e["target"] for e in exchanges] == [
        "/search?q=café", "/raw?%FF%FE", "/esc?\x1b[2J\x1b]0;pwned\x07", "/tab?a=1\tb=2", "/del?\x7f",
        "/c1?%85%9B", "/bidi?name=\u202etxt.exe", "/.env",
    ]
    assert [e["status"] for e in exchanges] == [404] * 7 + [200]
    assert all(e["flags"] == ["parse_error"] and e["alerts"] == [] for e in exchanges[:-1])  # odd, not hostile
    last = exchanges[-1]
    assert last["flags"] == [] and last["alerts"] == ["sensitive-path", "scanner-user-agent"]


def huge_header_capture(path: Path, header_bytes: int) -> None:
    conversation = hostile.Conversation()
    conversation.handshake()
    conversation.send(True, b"GET /big HTTP/1.1\r\nHost: web\r\nX-Big: " + b"a" * header_bytes + b"\r\n\r\n")
    conversation.send(False, b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n")
    conversation.send(True, b"GET /next HTTP/1.1\r\nHost: web\r\n\r\n")
    conversation.send(False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    conversation.close()
    wrpcap(str(path), conversation.packets)


def test_a_head_over_the_limit_is_flagged_and_the_next_request_parses(tmp_path):
    capture = tmp_path / "huge.pcap"
    huge_header_capture(capture, 3000)
    big, following = read_json("--max-header-bytes", "2048", str(capture))
    assert (big["target"], big["status"], big["flags"]) == ("/big", 431, ["oversized", "truncated"])
    assert (following["target"], following["status"], following["flags"]) == ("/next", 200, [])
    assert [e["flags"] for e in read_json(str(capture))] == [[], []]  # 64 KiB by default


@pytest.mark.parametrize("value", ["10", "99999999999999999999", "²", "-1"])
def test_a_header_limit_out_of_bounds_is_one_line_and_exit_2(tmp_path, value):
    capture = tmp_path / "huge.pcap"
    huge_header_capture(capture, 10)
    result = subprocess.run([sys.executable, "-m", "eyes_devine", "read", "--max-header-bytes", value, str(capture)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--max-header-bytes" in result.stderr.strip().splitlines()[-1]
