"""Real traffic worth keeping: servers and clients in namespaces, tcpdump on their bridge.

The committed captures under ``tests/pcaps/`` were recorded by these functions
(``sudo .venv/bin/python -m tests.pcaps.record``); the core tests read those
files without privileges.  Each function needs root, iproute2, tcpdump and the
peers it names, and removes everything it built.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.support.netns import Lab, Namespace, sh
from tests.support.recorder import Recorder
from tests.support.requirements import missing, require_binary

ROOT = Path(__file__).resolve().parents[2]
PEER_PORT = 8080
NGINX_PORT = 80
FLOWS_HTTP_PORT = 8000

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  server {{
    listen {port};
    location = /a {{ return 200 "alpha\\n"; }}
    location = /b {{ return 200 "bravo!\\n"; }}
    location = /c {{ return 404 "charlie\\n"; }}
    location / {{ return 200 "nginx\\n"; }}
  }}
}}
"""


def wait_for_port(ns: Namespace, port: int, address: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + 15
    probe = f"import socket; socket.create_connection(('{address}', {port}), timeout=1).close()"
    while time.monotonic() < deadline:
        if ns.run(sys.executable, "-c", probe, check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port} in {ns.name}")


def nginx_binary() -> str:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        missing("nginx (Debian package nginx-light)")
    return nginx


def record_http_lab(path: Path, workdir: Path) -> tuple[str, str]:
    """Every HTTP/1.x scenario the engine tests need, from nginx, an http.server peer, curl and a pipelining
    client; returns (server address, client address)."""
    tcpdump = require_binary("tcpdump", "tcpdump")
    curl = require_binary("curl", "curl")
    nginx = nginx_binary()
    lab = Lab()
    try:
        bridge = lab.bridge()
        server = lab.host("s", 2, bridge=bridge)
        client = lab.host("c", 3, bridge=bridge)
        conf = workdir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=workdir, port=NGINX_PORT))
        lab.processes.append(server.spawn(nginx, "-c", str(conf), stderr=subprocess.DEVNULL))
        lab.processes.append(server.spawn(sys.executable, "-m", "tests.support.http_peer", str(PEER_PORT),
                                          cwd=str(ROOT)))
        wait_for_port(server, PEER_PORT)
        wait_for_port(server, NGINX_PORT)
        upload = workdir / "upload.bin"
        upload.write_bytes(b"u" * 2000)
        peer = f"http://{server.address}:{PEER_PORT}"
        quiet = (curl, "-s", "-o", "/dev/null")
        with Recorder(bridge, path, tcpdump=tcpdump):
            client.run(*quiet, f"{peer}/hello", f"{peer}/chunked", f"{peer}/nocontent", f"{peer}/notmodified",
                       f"{peer}/early", f"{peer}/missing")
            client.run(*quiet, "-I", f"{peer}/hello?head=1", "--next", "-s", "-o", "/dev/null",
                       f"{peer}/hello?after-head=1")
            client.run(*quiet, "-H", "Expect: 100-continue", "--data-binary", f"@{upload}", f"{peer}/upload")
            client.run(*quiet, f"{peer}/close")
            client.run(*quiet, "--http1.0", f"{peer}/hello?v=1.0")
            client.run(*quiet, "-A", "redaction-test", "-H", "Authorization: Bearer SECRET1",
                       "-H", "Cookie: sid=SECRET2", f"{peer}/hello?token=SECRET3&page=2")
            client.run(*quiet, f"{peer}/hello?big=1", f"{peer}/big", f"{peer}/hello?big=2", f"{peer}/missing?big=3")
            client.run(sys.executable, "-m", "tests.support.pipelined_client", server.address, str(NGINX_PORT),
                       "/a", "/b", "/c", cwd=str(ROOT))
        return server.address, client.address
    finally:
        lab.close()


def record_flows_lab(path: Path, workdir: Path) -> tuple[str, str]:
    """DNS, TLS, SSH, FTP, ICMP and HTTP between two namespaces; returns (server address, client address)."""
    from tests.support.flow_peers import SERVER_NAME

    tcpdump = require_binary("tcpdump", "tcpdump")
    openssl = require_binary("openssl", "openssl")
    busybox = require_binary("busybox", "busybox-static")
    curl = require_binary("curl", "curl")
    lab = Lab()
    try:
        bridge = lab.bridge()
        server = lab.host("s", 2, bridge=bridge)
        client = lab.host("c", 3, bridge=bridge)
        cert, key = str(workdir / "cert.pem"), str(workdir / "key.pem")
        sh(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
           "-subj", f"/CN={SERVER_NAME}", "-addext", f"subjectAltName=DNS:{SERVER_NAME}")
        peers = server.spawn(sys.executable, "-m", "tests.support.flow_peers", "serve", cert, key, cwd=str(ROOT),
                             stdout=subprocess.PIPE, text=True)
        lab.processes.append(peers)
        lab.processes.append(server.spawn(sys.executable, "-m", "http.server", str(FLOWS_HTTP_PORT),
                                          "--bind", "0.0.0.0", cwd=str(workdir)))
        assert peers.stdout is not None and peers.stdout.readline().strip() == "ready"
        wait_for_port(client, FLOWS_HTTP_PORT, server.address)
        with Recorder(bridge, path, bpf="ip", tcpdump=tcpdump):
            client.run(sys.executable, "-m", "tests.support.flow_peers", "talk", server.address, cert, cwd=str(ROOT))
            client.run(busybox, "ping", "-c", "3", "-i", "0.2", server.address)
            client.run(curl, "-s", "-o", "/dev/null", f"http://{server.address}:{FLOWS_HTTP_PORT}/flows-http")
        return server.address, client.address
    finally:
        lab.close()
