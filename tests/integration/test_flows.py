"""`run --all-traffic` and `flows` on real traffic between namespaces: DNS, TLS, SSH, FTP, ICMP, and HTTP alongside."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.flow_peers import FTP_GREETING, SERVER_NAME, SSH_BANNER, SSH_PORT
from tests.support.netns import sh
from tests.support.requirements import require_binary

pytestmark = pytest.mark.netns

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]
ROOT = Path(__file__).resolve().parents[2]
HTTP_PORT = 8000


class Run:
    """`eyes-devine run` in the background, its JSON log lines collected as they arrive."""

    def __init__(self, *argv: str) -> None:
        self.process = subprocess.Popen([*EYES_DEVINE, "run", "--log-format", "json", *argv], cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.log: list[dict] = []
        self.stdout: list[str] = []
        threading.Thread(target=self._collect_log, daemon=True).start()
        threading.Thread(target=lambda: self.stdout.extend(self.process.stdout), daemon=True).start()

    def _collect_log(self) -> None:
        for line in self.process.stderr:
            try:
                self.log.append(json.loads(line))
            except ValueError:  # not a log line: a usage error, a traceback
                self.log.append({"msg": line.rstrip(), "level": "raw"})

    def wait_for(self, text: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.log if line["msg"].startswith(text)]  # not "Docker: …; capturing …"
            if found:
                return found[0]
            assert self.process.poll() is None, f"run exited {self.process.returncode}: {self.log}"
            assert time.monotonic() < deadline, f"no {text!r} in the log: {self.log}"
            time.sleep(0.05)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


def cli_json(*argv: str) -> list[dict]:
    result = subprocess.run([*EYES_DEVINE, *argv, "--json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_dns_tls_ssh_ftp_and_icmp_flows_are_classified_and_http_is_still_parsed(lab, tmp_path):
    openssl = require_binary("openssl", "openssl")
    busybox = require_binary("busybox", "busybox-static")
    require_binary("curl", "curl")
    bridge = lab.bridge()
    server = lab.host("s", 2, bridge=bridge)
    client = lab.host("c", 3, bridge=bridge)
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    sh(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
       "-subj", f"/CN={SERVER_NAME}", "-addext", f"subjectAltName=DNS:{SERVER_NAME}")
    peers = server.spawn(sys.executable, "-m", "tests.support.flow_peers", "serve", cert, key, cwd=str(ROOT),
                         stdout=subprocess.PIPE, text=True)
    lab.processes.append(peers)
    lab.processes.append(server.spawn(sys.executable, "-m", "http.server", str(HTTP_PORT), "--bind", "0.0.0.0"))
    assert peers.stdout.readline().strip() == "ready"
    probe = f"import socket; socket.create_connection(('{server.address}', {HTTP_PORT}), timeout=1).close()"
    deadline = time.monotonic() + 10
    while client.run(sys.executable, "-c", probe, check=False).returncode != 0:
        assert time.monotonic() < deadline, "http.server did not start"
        time.sleep(0.1)

    db = str(tmp_path / "flows.db")
    # The bridge and the server's veth both carry every packet: each must still count once.
    run = Run("--all-traffic", "--json", "-i", bridge, "-i", server.link, "--ports", str(HTTP_PORT), "--db", db,
              "--no-follow-docker-ports")
    try:
        assert run.wait_for("capturing")["filter"] == "ip or ip6"
        talk = client.run(sys.executable, "-m", "tests.support.flow_peers", "talk", server.address, cert,
                          cwd=str(ROOT))
        assert json.loads(talk.stdout) == {"dns": "10.9.8.7", "tls": "echo hello", "ssh": SSH_BANNER.decode().strip(),
                                           "ftp": FTP_GREETING.decode().strip()}
        client.run(busybox, "ping", "-c", "3", "-i", "0.2", server.address)
        fetch = client.run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                           f"http://{server.address}:{HTTP_PORT}/flows-http")
        assert fetch.stdout == "404"  # http.server has no such file; an exchange all the same
        time.sleep(1)  # the last packets reach the sniffers
    finally:
        code = run.stop()
    assert code == 0, run.log
    final = run.wait_for("stopped")
    assert final["flow_store_drops"] == 0 and final["flows_stored"] >= 6
    assert final["non_http_streams"] == 0 and final["tls_streams"] == 0, "only the HTTP port reaches HTTP parsing"

    ends = {client.address, server.address}
    flows = {f["protocol"]: f for f in cli_json("flows", "--db", db) if {f["client_ip"], f["server_ip"]} == ends}
    assert sorted((p, f["server_port"]) for p, f in flows.items()) == [
        ("dns", 53), ("ftp", 21), ("http", HTTP_PORT), ("icmp", 0), ("ssh", SSH_PORT), ("tls", 443)]
    assert all(f["client_ip"] == client.address for f in flows.values()), "the initiator is the client"

    dns = flows["dns"]
    assert (dns["transport"], dns["detail"], dns["client_packets"], dns["server_packets"]) == (
        "udp", SERVER_NAME, 1, 1)
    tls = flows["tls"]
    assert (tls["sni"], tls["ended"]) == (SERVER_NAME, "fin")
    assert tls["client_packets"] >= 5 and tls["server_bytes"] > 1000  # handshake, certificate, data, FINs
    assert (flows["ssh"]["detail"], flows["ssh"]["ended"]) == ("SSH-2.0-OpenSSH_9.2p1 Debian", "fin")
    assert flows["ftp"]["detail"] == FTP_GREETING.decode().strip()
    icmp = flows["icmp"]
    assert (icmp["transport"], icmp["detail"]) == ("icmp", "echo")
    assert (icmp["client_packets"], icmp["client_bytes"], icmp["server_packets"], icmp["server_bytes"]) == (
        3, 3 * 84, 3, 3 * 84), "each ping counted once although two interfaces saw it"
    assert flows["http"]["client_packets"] >= 4 and flows["http"]["ended"] == "fin"

    [exchange] = cli_json("requests", "--db", db, "--path-contains", "/flows-http")
    assert (exchange["status"], exchange["server_port"], exchange["client_ip"]) == (404, HTTP_PORT, client.address)
    assert [f["sni"] for f in cli_json("flows", "--db", db, "--protocol", "tls")] == [SERVER_NAME]
    table = subprocess.run([*EYES_DEVINE, "flows", "--db", db, "--protocol", "ssh"], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "COLUMNS": "160"})
    assert table.returncode == 0 and "SSH-2.0-OpenSSH_9.2p1 Debian" in table.stdout, table.stdout + table.stderr
