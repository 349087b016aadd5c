"""Hostile traffic against real servers: eyes-devine records what the server received.

* A decoy request and the real one sent as overlapping TCP copies from a raw
  socket to busybox httpd: what Linux kept decides what busybox served, and
  `read` on the capture must name the same request.
* Requests with bytes llhttp refuses, pipelined on one keep-alive connection to
  a server in a busybox container: `run` stores every one, attributed, and the
  last (`/.env` from sqlmap) raises its alerts.
"""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from tests.pcaps.hostile import ODD_TARGETS, REAL, SQLMAP
from tests.support.recorder import Recorder
from tests.support.requirements import require_binary
from tests.support.scenarios import ROOT, wait_for_port
from tests.support.service import wait_until

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]
PORT = 8080

KEEP_ALIVE_SERVER = r"""# HTTP/1.1 in busybox sh: every request on the connection answered, in order, as it arrives.
while IFS= read -r line; do
  while IFS= read -r header; do [ "${header%?}" = "" ] && break; done
  case "$line" in
    "GET /.env "*) printf 'HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\nSECRET_ENV_FILE\n' ;;
    *) printf 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n' ;;
  esac
done
"""


def test_the_copy_linux_kept_is_the_request_recorded(lab, tmp_path):
    tcpdump = require_binary("tcpdump", "tcpdump")
    busybox = require_binary("busybox", "busybox-static")
    www = tmp_path / "www"
    (www / "innocent").mkdir(parents=True)
    (www / ".env").write_text("SECRET_ENV_FILE\n")
    os.chmod(tmp_path, 0o755)
    bridge = lab.bridge()
    server = lab.host("s", 2, bridge=bridge)
    client = lab.host("c", 3, bridge=bridge)
    client.run("iptables", "-A", "OUTPUT", "-p", "tcp", "--tcp-flags", "RST", "RST", "-j", "DROP")
    lab.processes.append(server.spawn(busybox, "httpd", "-f", "-p", str(PORT), "-h", str(www)))
    wait_for_port(server, PORT)
    capture = tmp_path / "overlap.pcap"
    with Recorder(bridge, capture, tcpdump=tcpdump):
        sent = client.run(sys.executable, "-m", "tests.support.overlap_client", server.address, str(PORT),
                          cwd=str(ROOT), timeout=60)
    answer = ast.literal_eval(sent.stdout.strip().splitlines()[-1])
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"SECRET_ENV_FILE" in answer, answer  # Linux kept REAL

    result = subprocess.run([*EYES_DEVINE, "read", "--json", "-q", "--ports", str(PORT), str(capture)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    [exchange] = [json.loads(line) for line in result.stdout.splitlines()]
    assert exchange["target"] == REAL.split(b" ")[1].decode()
    assert exchange["status"] == 200
    assert "overlap_conflict" in exchange["flags"]
    assert "sensitive-path" in exchange["alerts"]


@pytest.mark.docker
def test_odd_bytes_on_one_keep_alive_connection_to_a_container_are_all_recorded(service, docker_engine,
                                                                                 busybox_image, tmp_path):
    script = tmp_path / "server.sh"
    script.write_text(KEEP_ALIVE_SERVER)
    os.chmod(tmp_path, 0o755)
    container = docker_engine.client.containers.run(
        busybox_image, ["/bin/busybox", "nc", "-ll", "-p", "80", "-e", "/bin/busybox", "sh", "/srv/server.sh"],
        name=f"edt-odd-{os.getpid()}", detach=True, volumes={str(script): {"bind": "/srv/server.sh", "mode": "ro"}})
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        run = service("-i", "docker0", "--json")
        run.wait_for("Docker: connected")
        targets = [*ODD_TARGETS, b"/.env"]
        deadline = time.monotonic() + 15
        while True:
            try:
                connection = socket.create_connection((address, 80), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "the container's server did not start"
                time.sleep(0.2)
        with connection:
            for target in targets:
                agent = SQLMAP if target == b"/.env" else b"curl/7.88.1"
                connection.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: web\r\nUser-Agent: " + agent + b"\r\n\r\n")
            answers = b""
            while answers.count(b"HTTP/1.1 ") < len(targets) or not answers.endswith(b"SECRET_ENV_FILE\n"):
                chunk = connection.recv(65536)
                assert chunk, f"the server closed early: {answers!r}"
                answers += chunk
        assert answers.count(b"404 Not Found") == len(ODD_TARGETS)  # the server answered every one
        wait_until(lambda: len(run.stdout) >= len(targets), 30, f"{len(targets)} exchanges on stdout")
        exchanges = [json.loads(line) for line in run.stdout]
        assert [x["target"] for x in exchanges] == [
            "/search?q=café", "/raw?%FF%FE", "/esc?\x1b[2J\x1b]0;pwned\x07", "/tab?a=1\tb=2", "/del?\x7f",
            "/c1?%85%9B", "/bidi?name=\u202etxt.exe", "/.env",
        ]
        assert [x["status"] for x in exchanges] == [404] * len(ODD_TARGETS) + [200]
        assert {x["container"] for x in exchanges} == {container.name}
        assert all("parse_error" in x["flags"] for x in exchanges[:-1])
        assert exchanges[-1]["alerts"] == ["sensitive-path", "scanner-user-agent"]

        def stored() -> list[str]:
            result = subprocess.run([*EYES_DEVINE, "requests", "--db", str(run.db), "--json", "-c", container.name],
                                    capture_output=True, text=True, timeout=30)
            assert result.returncode == 0, result.stderr
            return [json.loads(line)["target"] for line in result.stdout.splitlines()]

        wait_until(lambda: len(stored()) == len(targets), 10, "every exchange stored")
        assert stored() == [x["target"] for x in exchanges]
    finally:
        container.remove(force=True)
