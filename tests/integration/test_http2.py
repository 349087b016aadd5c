"""HTTP/2 over cleartext with real peers: nginx `listen … http2`, curl --http2-prior-knowledge and nghttp (streams
multiplexed on one connection), recorded with tcpdump, read back, and held against nginx's access log and tshark;
and hypercorn answering curl's `Upgrade: h2c` (nginx does not upgrade), followed live by `run` as well.

curl 7.88 (Debian 12) fails a second transfer on a prior-knowledge connection ("Error in the HTTP2 framing
layer"), and half of its uploads when nginx answers before reading the body and resets the stream (exit 92), so
the multiplexed streams and the upload come from nghttp2's own client, a curl per GET otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.support.netns import Lab
from tests.support.recorder import Recorder
from tests.support.requirements import require_binary, require_root
from tests.support.scenarios import nginx_binary, wait_for_port
from tests.support.service import requests_json, stored, wait_until

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


HYPERCORN_LOG_FORMAT = "%(m)s %(U)s %(q)s %(s)s %(H)s"
"""Method, path, query, status and the protocol hypercorn answered in ("2" once the connection was upgraded)."""


def hypercorn_log(path: Path) -> Counter:
    """The access log's requests as (method, target, status, protocol); hypercorn prefixes "[time] [pid] [INFO] "."""
    requests: Counter = Counter()
    for line in path.read_text().splitlines():
        method, url_path, query, status, protocol = line.rsplit("] ", 1)[-1].split(" ")
        requests[(method, url_path + (f"?{query}" if query not in ("", "-") else ""), status, protocol)] += 1
    return requests


def test_an_h2c_upgrade_is_followed_live_and_read_back_as_the_server_logged_it(tmp_path, undocked):
    require_root()
    tcpdump = require_binary("tcpdump", "tcpdump")
    tshark = require_binary("tshark", "tshark")
    curl = require_binary("curl", "curl")
    pcap, access_log, db = tmp_path / "upgrade.pcap", tmp_path / "access.log", tmp_path / "exchanges.db"
    lab = Lab()
    try:
        bridge = lab.bridge()
        server = lab.host("s", 2, bridge=bridge)
        client = lab.host("c", 3, bridge=bridge)
        lab.processes.append(server.spawn(
            sys.executable, "-m", "hypercorn", "--bind", f"0.0.0.0:{PORT}", "--access-logfile", str(access_log),
            "--access-logformat", HYPERCORN_LOG_FORMAT, "tests.support.h2c_app:app",
            cwd=str(Path(__file__).parents[2])))
        wait_for_port(server, PORT)
        run = undocked(db, "-i", bridge, "--ports", str(PORT), "--no-follow-docker-ports")
        base = f"http://{server.address}:{PORT}"
        upgrade = (curl, "-s", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "--http2")
        with Recorder(bridge, pcap, tcpdump=tcpdump) as recorder:
            client.run(*upgrade, f"{base}/one")
            # One connection: the first request upgrades it (stream 1), the next two are its streams 3 and 5.
            client.run(*upgrade, f"{base}/two?token=SECRET", f"{base}/missing", f"{base}/three")
            client.run(*upgrade, "-d", "a=1", f"{base}/form")  # curl does not offer h2c with a body: HTTP/1.1
        logged = hypercorn_log(access_log)
        assert sum(logged.values()) == 5 and Counter(line[3] for line in logged.elements()) == {"2": 4, "1.1": 1}
        wait_until(lambda: stored(db, "SELECT count(*) FROM exchanges")[0][0] >= 5, what="5 stored")
        assert run.stop() == 0, run.log
    finally:
        lab.close()
    assert "\n0 packets dropped by kernel" in recorder.stderr, recorder.stderr

    def as_logged(exchanges: list[dict]) -> Counter:
        return Counter((x["method"], x["target"].replace("REDACTED", "SECRET"), str(x["status"]), x["http_version"])
                       for x in exchanges)

    live = requests_json(db)
    assert as_logged(live) == logged, "run saw every request hypercorn logged, in the protocol it answered in"
    result = subprocess.run([sys.executable, "-m", "eyes_devine", "read", str(pcap), "--json", "--ports", str(PORT)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    read_back = [json.loads(line) for line in result.stdout.splitlines()]
    assert as_logged(read_back) == logged
    flags = Counter((x["target"], tuple(x["flags"])) for x in read_back)
    assert flags == {("/one", ("upgrade",)): 1, ("/two?token=REDACTED", ("upgrade",)): 1, ("/missing", ()): 1,
                     ("/three", ()): 1, ("/form", ()): 1}
    assert len({x["client_port"] for x in read_back if x["target"] != "/one" and x["http_version"] == "2"}) == 1

    paths = subprocess.run([tshark, "-r", str(pcap), "-d", f"tcp.port=={PORT},http", "-Y",
                            "http.request or http2.headers.path", "-T", "fields", "-e", "http.request.uri",
                            "-e", "http2.headers.path"], capture_output=True, text=True, timeout=120)
    assert paths.returncode == 0, paths.stderr
    tshark_paths = Counter(path for line in paths.stdout.split() for path in line.split(","))
    assert Counter(x["target"].replace("REDACTED", "SECRET") for x in read_back) == tshark_paths
