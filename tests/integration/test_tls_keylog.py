"""HTTPS decrypted with a key log, against real peers: nginx with TLS 1.2 and 1.3 (HTTP/1.1 and h2, AES-GCM and
ChaCha20-Poly1305), curl writing SSLKEYLOGFILE.  `run` follows the key log as curl writes it; tcpdump records the
same traffic for `read`; both are held against nginx's access log, and the paths against tshark's own decryption
of the capture with the same key log."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from tests.support.recorder import Recorder
from tests.support.requirements import require_binary, require_root
from tests.support.service import requests_json, stored, wait_until
from tests.support.tls_lab import BIG, PORT, REQUESTS, UPLOAD, start_tls_lab

pytestmark = pytest.mark.netns
EXPECTED = sum(len(paths) for _, paths in REQUESTS)


def as_logged(exchanges: list[dict]) -> Counter:
    """Our exchanges in the access log's terms (nginx logs HTTP/2 as HTTP/2.0, and the query as sent)."""
    protocols = {"1.1": "HTTP/1.1", "2": "HTTP/2.0"}
    return Counter((x["method"], x["target"].replace("REDACTED", "SECRET"), str(x["status"]),
                    protocols[x["http_version"]]) for x in exchanges)


def test_https_is_decrypted_live_and_from_a_capture_as_nginx_logged_it(tmp_path, undocked):
    require_root()
    tcpdump = require_binary("tcpdump", "tcpdump")
    tshark = require_binary("tshark", "tshark")
    pcap, db = tmp_path / "tls.pcap", tmp_path / "exchanges.db"
    lab = start_tls_lab(tmp_path)
    try:
        run = undocked(db, "-i", lab.bridge, "--ports", str(PORT), "--no-follow-docker-ports", "--tls-keylog",
                       str(lab.key_log))
        assert run.messages("--tls-keylog"), "the key log does not exist before curl's first connection: said so"
        with Recorder(lab.bridge, pcap, tcpdump=tcpdump) as recorder:
            lab.send_all()
        logged = lab.logged()
        assert sum(logged.values()) == EXPECTED
        assert {line[4] for line in logged} == {"TLSv1.2", "TLSv1.3"}
        wait_until(lambda: stored(db, "SELECT count(*) FROM exchanges")[0][0] >= EXPECTED, what="all stored")
        assert run.stop() == 0, run.log
    finally:
        lab.close()
    assert "\n0 packets dropped by kernel" in recorder.stderr, recorder.stderr
    logged_requests = Counter({line[:4]: count for line, count in logged.items()})

    live = requests_json(db)
    assert as_logged(live) == logged_requests, "run decrypted every request nginx logged, as it logged it"
    assert all("tls" in x["flags"] for x in live)

    result = subprocess.run([sys.executable, "-m", "eyes_devine", "read", str(pcap), "--json", "--ports", str(PORT),
                             "--tls-keylog", str(lab.key_log)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    read_back = [json.loads(line) for line in result.stdout.splitlines()]
    assert as_logged(read_back) == logged_requests
    assert f"{len(REQUESTS)} TLS decrypted" in result.stderr and "(" not in result.stderr.split("non-HTTP")[1][:4]
    by_target = {x["target"]: x for x in read_back}
    assert by_target["/big"]["response_bytes"] == BIG and by_target["/big"]["http_version"] == "2"
    assert by_target["/upload"]["request_bytes"] == UPLOAD
    assert by_target["/h2-tls13"]["client_port"] == by_target["/missing"]["client_port"]
    assert all(x["flags"] == ["tls"] and x["host"].startswith("web.test") for x in read_back), read_back

    without_keys = subprocess.run([sys.executable, "-m", "eyes_devine", "read", str(pcap), "--json", "--ports",
                                   str(PORT)], capture_output=True, text=True, timeout=120)
    assert without_keys.returncode == 0 and without_keys.stdout == ""
    assert f"({len(REQUESTS)} TLS)" in without_keys.stderr

    paths = subprocess.run([tshark, "-r", str(pcap), "-o", f"tls.keylog_file:{lab.key_log}", "-Y",
                            "http.request or http2.headers.path", "-T", "fields", "-e", "http.request.uri",
                            "-e", "http2.headers.path"], capture_output=True, text=True, timeout=120)
    assert paths.returncode == 0, paths.stderr
    tshark_paths = Counter(path for line in paths.stdout.split() for path in line.split(","))
    assert Counter(x["target"].replace("REDACTED", "SECRET") for x in read_back) == tshark_paths
