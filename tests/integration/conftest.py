"""A real HTTP capture made once per session: servers and clients in namespaces, tcpdump on their bridge."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.netns import Lab
from tests.support.recorder import Recorder
from tests.support.requirements import missing, require_binary, require_root

ROOT = Path(__file__).resolve().parents[2]
PEER_PORT = 8080
NGINX_PORT = 80

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


@dataclass
class HttpCapture:
    path: Path
    server_ip: str
    client_ip: str


def wait_for_port(ns, port: int) -> None:
    deadline = time.monotonic() + 15
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=1).close()"
    while time.monotonic() < deadline:
        if ns.run(sys.executable, "-c", probe, check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port} in {ns.name}")


@pytest.fixture(scope="session")
def http_capture(tmp_path_factory) -> HttpCapture:
    """One pcap holding every scenario the engine tests need, from real servers and clients."""
    require_root()
    tcpdump = require_binary("tcpdump", "tcpdump")
    curl = require_binary("curl", "curl")
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        missing("nginx (Debian package nginx-light)")
    workdir = tmp_path_factory.mktemp("capture")
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
        path = workdir / "http.pcap"
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
        return HttpCapture(path, server.address, client.address)
    finally:
        lab.close()
