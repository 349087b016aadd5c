"""gRPC with real peers (grpcio in two namespaces): unary calls, a server-streaming call and a failing one, each
one exchange with its grpc_status, held against the server's own log and tshark."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.support.netns import Lab
from tests.support.recorder import Recorder
from tests.support.requirements import missing, require_binary, require_root
from tests.support.scenarios import wait_for_port

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]
PORT = 50051


def test_grpc_calls_are_exchanges_with_their_status_and_message_counts(tmp_path):
    require_root()
    tcpdump = require_binary("tcpdump", "tcpdump")
    tshark = require_binary("tshark", "tshark")
    try:
        import grpc  # noqa: F401
    except ImportError:
        missing("grpcio (pip install grpcio)")
    pcap, log = tmp_path / "grpc.pcap", tmp_path / "calls.log"
    lab = Lab()
    try:
        bridge = lab.bridge()
        server = lab.host("s", 2, bridge=bridge)
        client = lab.host("c", 3, bridge=bridge)
        peer = server.spawn(sys.executable, "-m", "tests.support.grpc_peer", "serve", str(PORT), str(log),
                            cwd=str(ROOT), stdout=subprocess.PIPE, text=True)
        lab.processes.append(peer)
        assert peer.stdout is not None and peer.stdout.readline().strip() == "ready"
        wait_for_port(client, PORT, server.address)
        with Recorder(bridge, pcap, tcpdump=tcpdump) as recorder:
            client.run(sys.executable, "-m", "tests.support.grpc_peer", "call", server.address, str(PORT),
                       cwd=str(ROOT))
    finally:
        lab.close()
    assert "\n0 packets dropped by kernel" in recorder.stderr, recorder.stderr  # else the capture, not us, lost them
    logged = Counter(tuple(line.split()) for line in log.read_text().splitlines())
    assert sum(logged.values()) == 7

    result = subprocess.run([sys.executable, "-m", "eyes_devine", "read", str(pcap), "--json", "--ports", str(PORT)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    exchanges = [json.loads(line) for line in result.stdout.splitlines()]
    assert Counter((x["target"], str(x["grpc_status"])) for x in exchanges) == logged, "each call once, as logged"
    assert {(x["method"], x["http_version"], x["status"]) for x in exchanges} == {("POST", "2", 200)}
    by_method = {x["target"].rsplit("/", 1)[1]: x for x in exchanges}
    assert (by_method["Get"]["request_messages"], by_method["Get"]["response_messages"]) == (1, 1)
    assert (by_method["List"]["request_messages"], by_method["List"]["response_messages"]) == (1, 4)
    failed = by_method["Missing"]
    assert (failed["grpc_status"], failed["grpc_message"], failed["response_messages"]) == (5, "no such item", 0)
    assert all(x["flags"] == [] for x in exchanges)

    paths = subprocess.run([tshark, "-r", str(pcap), "-d", f"tcp.port=={PORT},http2", "-Y", "http2.headers.path",
                            "-T", "fields", "-e", "http2.headers.path"], capture_output=True, text=True, timeout=120)
    assert paths.returncode == 0, paths.stderr
    assert Counter(x["target"] for x in exchanges) == Counter(paths.stdout.split()), "the calls tshark decodes"
