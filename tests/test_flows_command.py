"""Flow summaries stored and shown: the store's flows table, `eyes-devine flows`, `read --flows`, the watch view."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from eyes_devine.adapters.store.query import FlowQuery
from eyes_devine.adapters.store.sqlite import open_store
from eyes_devine.app.board import Board
from eyes_devine.config import Settings, bpf_filter
from eyes_devine.records import Flow
from eyes_devine.views.screen import Status, screen
from tests.support.records import WEB, WORKER, flow

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]
T0 = 1_800_000_000.0
MAC = "02:00:00:00:00:01"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "x.db"
    now = time.time()
    flows = [flow(i, "dns", ts=now - 3600 + i, container="web", container_id=WEB, detail=f"q{i}.example")
             for i in range(5)]
    flows.append(flow(9, "tls", ts=now, client_container="worker", client_container_id=WORKER, sni="shop.example"))
    flows.append(flow(10, "ssh", ts=now, detail="SSH-2.0-OpenSSH_9.2p1 Debian"))

    async def write() -> None:
        store = await open_store(path, keep=3)
        await store.write([], flows)
        await store.close()

    asyncio.run(write())
    return path


def flows_cli(db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EYES_DEVINE, "flows", "--db", str(db), *args], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "COLUMNS": "160"})


def lines(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_each_bucket_keeps_its_newest_flows_and_filters_combine(db: Path) -> None:
    with sqlite3.connect(db) as check:
        buckets = dict(check.execute("SELECT bucket, count(*) FROM flows GROUP BY bucket").fetchall())
    assert buckets == {WEB: 3, WORKER: 1, "unattributed": 1}
    assert [f["detail"] for f in lines(flows_cli(db, "--json", "-c", "web"))] == ["q2.example", "q3.example",
                                                                                 "q4.example"]
    assert [f["sni"] for f in lines(flows_cli(db, "--json", "--protocol", "TLS"))] == ["shop.example"]
    assert [f["protocol"] for f in lines(flows_cli(db, "--json", "--since", "10m"))] == ["tls", "ssh"]
    assert len(lines(flows_cli(db, "--json", "-c", WORKER[:5]))) == 1
    assert len(lines(flows_cli(db, "--json", "-n", "2"))) == 2


def test_a_stored_flow_reads_back_equal(tmp_path: Path) -> None:
    original = flow(1, "tls", sni="a.example", ended="fin", container="web", container_id=WEB,
                    client_container="worker", client_container_id=WORKER)

    async def round_trip() -> list[Flow]:
        store = await open_store(tmp_path / "y.db")
        try:
            await store.write([], [original])
            return await store.query_flows(FlowQuery())
        finally:
            await store.close()

    assert asyncio.run(round_trip()) == [original]


def test_the_table_names_the_protocol_and_the_server_name(db: Path) -> None:
    result = flows_cli(db)
    assert result.returncode == 0, result.stderr
    assert "shop.example" in result.stdout and "SSH-2.0-OpenSSH_9.2p1 Debian" in result.stdout
    assert "worker →" in result.stdout


def test_bad_input_is_one_line_and_exit_2_and_a_missing_database_exit_1(db: Path, tmp_path: Path) -> None:
    result = flows_cli(db, "--protocol", "gopher")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "gopher" in result.stderr
    result = flows_cli(db, "--since", "yesterday")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    result = flows_cli(tmp_path / "none.db")
    assert result.returncode == 1 and "no database" in result.stderr


def test_read_flows_prints_a_capture_files_flows(tmp_path: Path) -> None:
    out, back = IP(src="10.0.0.3", dst="10.0.0.2"), IP(src="10.0.0.2", dst="10.0.0.3")
    frames = [
        Ether(src=MAC, dst=MAC) / out / UDP(sport=40000, dport=53) / DNS(qd=DNSQR(qname="a.example")),
        Ether(src=MAC, dst=MAC) / back / UDP(sport=53, dport=40000) / DNS(qr=1, qd=DNSQR(qname="a.example")),
        Ether(src=MAC, dst=MAC) / out / ICMP(type=8, id=5),
        Ether(src=MAC, dst=MAC) / back / ICMP(type=0, id=5),
    ]
    for index, frame in enumerate(frames):
        frame.time = T0 + index
    capture = tmp_path / "mixed.pcap"
    wrpcap(str(capture), frames)
    result = subprocess.run([*EYES_DEVINE, "read", str(capture), "--flows", "--json"], capture_output=True,
                            text=True, timeout=60)
    assert [(f["protocol"], f["detail"], f["client_packets"], f["server_packets"]) for f in lines(result)] == [
        ("dns", "a.example", 1, 1), ("icmp", "echo", 1, 1)]
    assert "2 flows" in result.stderr


def test_all_traffic_widens_the_capture_filter_unless_a_filter_is_given() -> None:
    assert bpf_filter(Settings(all_traffic=True)) == "ip or ip6"
    assert bpf_filter(Settings(all_traffic=True, capture_filter="udp")) == "udp"
    assert bpf_filter(Settings()).startswith("tcp and (")


def test_the_watch_screen_shows_recent_flows_instead_of_the_latest_exchanges() -> None:
    status = Status("capturing on docker0", 10, 0, "1 containers", True, 1.0, 50_000_000)
    console = Console(width=120, file=io.StringIO(), color_system=None)
    recent = (flow(1, "tls", ts=T0, sni="shop.example"), flow(2, "icmp", ts=T0 + 1, detail="echo"))
    console.print(screen(status, Board().snapshot(T0 + 5), 120, 30, now=T0 + 5, flows=recent))
    text = console.file.getvalue()
    assert "recent flows" in text and "latest" not in text
    assert "shop.example" in text and "echo" in text
