"""HTTP/2 over cleartext with real peers: nginx `listen … http2`, curl --http2-prior-knowledge and nghttp (streams
multiplexed on one connection), recorded with tcpdump, read back, and held against nginx's access log and tshark.

curl 7.88 (Debian 12) fails a second transfer on a prior-knowledge connection ("Error in the HTTP2 framing
layer"), and half of its uploads when nginx answers before reading the body and resets the stream (exit 92), so
the multiplexed streams and the upload come from nghttp2's own client, a curl per GET otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from tests.support.netns import Lab
from tests.support.recorder import Recorder
from tests.support.requirements import require_binary, require_root
from tests.support.scenarios import nginx_binary, wait_for_port

pytestmark = pytest.mark.netns

PORT = 8080
NGINX_H2C = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
  log_format line '$request_method $request_uri $status $server_protocol';
  access_log {dir}/access.log line;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  server {{
    listen {port} http2;
    location = /missing {{ return 404 "none\\n"; }}
    location /big {{ return 200 "{big}"; }}
    location / {{ return 200 "h2c\\n"; }}
  }}
}}
"""


def test_h2c_streams_each_become_an_exchange_as_nginx_logged_them(tmp_path):
    require_root()
    tcpdump = require_binary("tcpdump", "tcpdump")
    tshark = require_binary("tshark", "tshark")
    curl = require_binary("curl", "curl")
    nghttp = require_binary("nghttp", "nghttp2-client")
    nginx = nginx_binary()
    (tmp_path / "nginx.conf").write_text(NGINX_H2C.format(dir=tmp_path, port=PORT, big="b" * 1000))
    pcap, upload = tmp_path / "h2c.pcap", tmp_path / "upload.bin"
    upload.write_bytes(b"x" * 500)
    lab = Lab()
    try:
        bridge = lab.bridge()
        server = lab.host("s", 2, bridge=bridge)
        client = lab.host("c", 3, bridge=bridge)
        lab.processes.append(server.spawn(nginx, "-c", str(tmp_path / "nginx.conf"), stderr=subprocess.DEVNULL))
        wait_for_port(server, PORT)
        base = f"http://{server.address}:{PORT}"
        h2 = (curl, "-s", "-o", "/dev/null", "--http2-prior-knowledge")
        with Recorder(bridge, pcap, tcpdump=tcpdump) as recorder:
            client.run(*h2, f"{base}/one")
            client.run(*h2, f"{base}/two?token=SECRET")
            client.run(nghttp, "-n", *(f"{base}/parallel/{index}" for index in range(12)), f"{base}/big",
                       f"{base}/missing")
            client.run(nghttp, "-n", "-d", str(upload), f"{base}/upload")
    finally:
        lab.close()
    assert "\n0 packets dropped by kernel" in recorder.stderr, recorder.stderr  # else the capture, not us, lost them
    logged = Counter(tuple(line.split()) for line in (tmp_path / "access.log").read_text().splitlines())
    assert sum(logged.values()) == 17 and {line[3] for line in logged} == {"HTTP/2.0"}

    result = subprocess.run([sys.executable, "-m", "eyes_devine", "read", str(pcap), "--json", "--ports", str(PORT)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    exchanges = [json.loads(line) for line in result.stdout.splitlines()]
    seen = Counter((x["method"], x["target"].replace("REDACTED", "SECRET"), str(x["status"]), "HTTP/2.0")
                   for x in exchanges)
    assert seen == logged, "every stream nginx logged, as it logged it, and nothing else"
    assert {x["http_version"] for x in exchanges} == {"2"}
    assert all(x["flags"] == [] and x["latency_ms"] is not None for x in exchanges)
    by_target = {x["target"]: x for x in exchanges}
    assert by_target["/two?token=REDACTED"]["host"] == f"{server.address}:{PORT}"
    assert by_target["/big"]["response_bytes"] == 1000 and by_target["/upload"]["request_bytes"] == 500
    assert by_target["/missing"]["status"] == 404
    parallel = [x for x in exchanges if x["target"].startswith("/parallel/")]
    assert len({x["client_port"] for x in parallel}) == 1, "the multiplexed streams shared one connection"

    paths = subprocess.run([tshark, "-r", str(pcap), "-d", f"tcp.port=={PORT},http2", "-Y", "http2.headers.path",
                            "-T", "fields", "-e", "http2.headers.path"], capture_output=True, text=True, timeout=120)
    assert paths.returncode == 0, paths.stderr
    tshark_paths = Counter(path for line in paths.stdout.split() for path in line.split(","))
    ours = Counter(x["target"].replace("REDACTED", "SECRET") for x in exchanges)
    assert ours == tshark_paths, "the same requests as tshark decodes in the same capture"
