"""Suspicious requests through a real container: each rule fires where expected and nowhere in ordinary traffic.

`eyes-devine run --json` captures on docker0 while crafted and ordinary requests
reach busybox httpd in a container, from the host and, for the burst of 404s,
from a second container; then `eyes-devine alerts` and the log are checked.
The real test capture (tests/integration/conftest.py) and any capture under
tests/pcaps go through the same annotator and must stay clean.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys

import pytest

from eyes_devine.app.pipeline import Stages, read_capture
from eyes_devine.config import Settings
from eyes_devine.core.http.framing import HttpLimits
from eyes_devine.core.tls.keylog import KeyLog
from eyes_devine.enrich.annotator import build_annotator
from eyes_devine.enrich.rules import BURST_THRESHOLD
from tests.pcaps import hostile
from tests.support.captures import PCAPS
from tests.support.records import Collected
from tests.support.service import wait_until

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"

# target, User-Agent, the rules it must match (exactly)
CRAFTED = [
    ("/?id=1%27%20OR%201%3D1--", BROWSER, ["sql-injection"]),
    ("/../../etc/passwd", BROWSER, ["path-traversal"]),
    ("/?q=<script>alert(1)</script>", BROWSER, ["xss"]),
    ("/?from=crafted-agent", "sqlmap/1.7.2#stable (https://sqlmap.org)", ["scanner-user-agent"]),
    ("/.env", BROWSER, ["sensitive-path"]),
    ("/.git/config", BROWSER, ["sensitive-path"]),
]
ORDINARY = [
    ("/", BROWSER), ("/index.html", BROWSER), ("/index.html?page=2&sort=name", BROWSER),
    ("/search?q=red+shoes&lang=fr", BROWSER), ("/search?q=caf%C3%A9+o%27reilly", "curl/8.5.0"),
    ("/no-such-page", BROWSER), ("/static/app.3f2a1b.js", "Go-http-client/1.1"), ("/?ref=ordinary", None),
]
BURST = 25


def send(address: str, target: str, agent: str | None) -> int:
    """One request with the target exactly as given (http.client does not normalise ../)."""
    connection = http.client.HTTPConnection(address, 80, timeout=5)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        if agent is not None:
            connection.putheader("User-Agent", agent)
        connection.endheaders()
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.mark.docker
def test_each_rule_fires_on_its_request_and_nowhere_else(service, web, docker_engine, busybox_image):  # noqa: F811
    run = service("-i", "docker0", "--json")
    run.wait_for("Docker: connected")
    for target, agent, _ in CRAFTED:
        send(web.address, target, agent)
    for target, agent in ORDINARY:
        send(web.address, target, agent)
    loop = (f"i=0; while [ $i -lt {BURST} ]; do i=$((i+1)); "
            f"wget -q -O /dev/null http://{web.address}/burst/$i; done; sleep 600")
    scanner = docker_engine.client.containers.run(busybox_image, ["sh", "-c", loop], name=f"edt-burst-{os.getpid()}",
                                                  detach=True)
    try:
        expected = len(CRAFTED) + len(ORDINARY) + BURST
        wait_until(lambda: len(run.stdout) >= expected, 30, f"{expected} exchanges on stdout")
        seen = {x["target"]: x for x in map(json.loads, run.stdout)}
        for target, _, rules in CRAFTED:
            assert seen[target]["alerts"] == rules, (target, seen[target])
        for target, _ in ORDINARY:
            assert seen[target]["alerts"] == [], (target, seen[target])
        burst = [seen[f"/burst/{i}"] for i in range(1, BURST + 1)]
        scanner.reload()
        scanner_ip = scanner.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        assert {x["status"] for x in burst} == {404} and {x["client_ip"] for x in burst} == {scanner_ip}
        assert [x["alerts"] for x in burst] == [[]] * (BURST_THRESHOLD - 1) \
            + [["burst-4xx"]] * (BURST - BURST_THRESHOLD + 1)
        alerting = {t for t, x in seen.items() if x["alerts"]}

        def listed() -> list[dict]:
            result = subprocess.run([*EYES_DEVINE, "alerts", "--db", str(run.db), "--json", "-n", "1000"],
                                    capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
            return [json.loads(line) for line in result.stdout.splitlines()]

        wait_until(lambda: len(listed()) >= len(alerting), 20, "the alerts stored")
        assert {x["target"]: x["alerts"] for x in listed()} == {t: seen[t]["alerts"] for t in alerting}
        by_rule = subprocess.run([*EYES_DEVINE, "alerts", "--db", str(run.db), "--json", "--rule", "xss"],
                                 capture_output=True, text=True, timeout=60)
        assert [json.loads(line)["target"] for line in by_rule.stdout.splitlines()] == ["/?q=<script>alert(1)</script>"]
    finally:
        scanner.remove(force=True)
    assert run.stop() == 0
    logged = [line for line in run.log if line["msg"] in ("alert", "alert answered")]  # answered: an error line
    assert sorted(line["target"] for line in logged) == sorted(alerting)
    assert all((line["msg"] == "alert answered") == (line["outcome"] == "answered" and line["rules"]
                                                      not in ("scanner-user-agent", "burst-4xx")) for line in logged)
    traversal = next(line for line in logged if line["target"] == "/../../etc/passwd")
    assert traversal["level"] == "warning" and traversal["rules"] == "path-traversal"
    assert traversal["container"] == web.name and traversal["method"] == "GET" and traversal["client"]
    found = [line for line in run.log if line["msg"] == f"Found {line.get('count')} malicious requests"]
    assert sum(line["count"] for line in found) == len(alerting)


def test_the_real_test_captures_stay_clean():
    annotate = build_annotator(Settings.build({}), lambda line: None)
    captures = sorted(path for path in PCAPS.glob("*.pcap*") if path.name not in hostile.CAPTURES)
    try:
        for capture in captures:
            collected = Collected()
            keys = capture.with_suffix(".keys")  # HTTPS, read with the key log recorded beside it
            limits = None
            if keys.exists():
                log = KeyLog()
                log.feed(keys.read_text())
                limits = HttpLimits(tls_keys=log)
            read_capture(str(capture), (80, 8080, 8000, 443), Stages([collected], annotate), http_limits=limits)
            exchanges = collected.exchanges
            assert exchanges, capture
            assert [(x.target, x.alerts) for x in exchanges if x.alerts] == [], capture
    finally:
        annotate.close()


@pytest.mark.docker
def test_an_attack_a_container_answers_shows_as_answered_and_is_logged_as_an_error(service, leaky):
    """A container that serves its .env file: the probe for it worked, and eyes-devine says so."""
    run = service("-i", "docker0")
    run.wait_for("Docker: connected")
    assert send(leaky.address, "/.env", "curl/8.5") == 200
    assert send(leaky.address, "/.git/config", "curl/8.5") == 404

    def listed(*args: str) -> list[dict]:
        result = subprocess.run([*EYES_DEVINE, "alerts", "--db", str(run.db), "--json", *args],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    wait_until(lambda: len(listed()) == 2, 20, "both probes stored")
    assert {x["target"]: x["outcome"] for x in listed()} == {"/.env": "answered", "/.git/config": "refused"}
    assert [x["target"] for x in listed("--answered")] == ["/.env"]
    table = subprocess.run([*EYES_DEVINE, "alerts", "--db", str(run.db)], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "COLUMNS": "160"})
    assert any("/.env" in line and line.rstrip().endswith("answered") for line in table.stdout.splitlines())
    assert run.stop() == 0
    [answered] = [line for line in run.log if line["msg"] == "alert answered"]
    assert (answered["level"], answered["target"], answered["status"]) == ("error", "/.env", 200)
    [refused] = [line for line in run.log if line["msg"] == "alert"]
    assert (refused["level"], refused["outcome"]) == ("warning", "refused")
