"""GeoIP and reputation as installed and as run: the wheel ships the built-in list; `run --json` live.

The live test's client namespace holds 81.2.69.160 (a public address, in the
test GeoIP database) on a lab bridge; the traffic never leaves the host.
AbuseIPDB is a local fake reached through ABUSEIPDB_URL: it hangs, then answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from tests.support.fake_abuseipdb import KEY, FakeAbuseIPDB
from tests.support.mmdb import city_record, write_database
from tests.support.requirements import require_binary

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = "81.2.69.160"
PORT = 8080


class Lines:
    """A process's stdout lines as they arrive, each with its arrival time."""

    def __init__(self, stream) -> None:
        self.lines: list[tuple[float, dict]] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append((time.monotonic(), json.loads(line)))

    def wait_for(self, predicate, timeout: float) -> tuple[float, dict]:
        deadline = time.monotonic() + timeout
        while True:
            for arrived, record in list(self.lines):
                if predicate(record):
                    return arrived, record
            assert time.monotonic() < deadline, f"no such exchange; seen {[r for _, r in self.lines][-3:]}"
            time.sleep(0.02)


def test_the_wheel_ships_the_builtin_blocklist(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("eyes_devine-*.whl"))
    assert "eyes_devine/data/blocklist.txt" in zipfile.ZipFile(wheel).namelist()
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    probe = ("import ipaddress\nfrom eyes_devine.adapters.blocklist import Blocklist\nbuiltin = Blocklist.builtin()\n"
             "print(builtin.name, len(builtin), ipaddress.ip_address('192.88.99.1') in builtin)\n")
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r})\n" + probe],
                            cwd=tmp_path, capture_output=True, text=True, check=True)
    name, entries, listed = result.stdout.split()
    assert (name, listed) == ("builtin", "True") and int(entries) > 0


@pytest.mark.netns
def test_exchanges_are_prompt_during_an_abuseipdb_outage_and_carry_its_verdict_after(lab, tmp_path: Path):
    curl = require_binary("curl", "curl")
    bridge = lab.bridge()
    server = lab.host("s", 2, bridge=bridge)
    client = lab.host("c", 3, bridge=bridge)
    client.run("ip", "addr", "add", f"{PUBLIC}/32", "dev", "eth0")
    server.run("ip", "route", "add", f"{PUBLIC}/32", "dev", "eth0")
    lab.processes.append(server.spawn(sys.executable, "-m", "tests.support.http_peer", str(PORT),
                                      cwd=str(ROOT)))
    database = write_database(tmp_path / "city.mmdb", {"81.2.69.0/24": city_record(
        "GB", "United Kingdom", "London", 51.5142, -0.0931)})
    fake = FakeAbuseIPDB(scores={PUBLIC: 90}, delay=60.0)  # hangs: every check times out
    env = {**os.environ, "ABUSEIPDB_API_KEY": KEY, "ABUSEIPDB_URL": fake.url}
    run = subprocess.Popen([sys.executable, "-m", "eyes_devine", "run", "-i", bridge, "--ports", str(PORT), "--json",
                            "--db", str(tmp_path / "x.db"), "--geoip", str(database)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(run.stderr), daemon=True).start()
    lines = Lines(run.stdout)

    def request(target: str) -> float:
        client.run(curl, "-s", "-o", "/dev/null", "--retry", "20", "--retry-connrefused", "--retry-delay", "0",
                   "--interface", PUBLIC, f"http://{server.address}:{PORT}{target}", timeout=30)
        return time.monotonic()

    try:
        deadline = time.monotonic() + 20
        while not any("capturing" in line for line in stderr):
            assert run.poll() is None and time.monotonic() < deadline, "".join(stderr)
            time.sleep(0.05)
        delays = []
        for index in range(5):
            done = request(f"/outage/{index}")
            arrived, record = lines.wait_for(lambda r, i=index: r["target"] == f"/outage/{i}", timeout=10)
            delays.append(arrived - done)  # negative: printed before curl's process had exited
            assert (record["client_ip"], record["country"], record["city"]) == (PUBLIC, "GB", "London")
            assert record["reputation"] is None
        print(f"during the outage, exchanges reached stdout {max(delays) * 1000:+.0f} ms at worst from curl's exit")
        assert max(delays) < 1.0 and fake.seen and fake.seen[0].address == PUBLIC
        fake.delay = 0.0  # the API is back: after its backoff the worker asks again
        deadline = time.monotonic() + 30
        index = 0
        while not any(r["reputation"] == "abuseipdb:90" for _, r in lines.lines):
            assert time.monotonic() < deadline, "no AbuseIPDB verdict after the API came back"
            request(f"/back/{index}")
            index += 1
            time.sleep(0.2)
        assert any("AbuseIPDB unavailable" in line for line in stderr), "".join(stderr)
    finally:
        run.terminate()
        run.wait(30)
        fake.close()
    assert run.returncode == 0, "".join(stderr)
