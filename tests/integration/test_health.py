"""`eyes-devine health` against a real `run`: healthy while it captures, unhealthy within the staleness bound when
its interface disappears or the process stops answering, healthy again when either comes back, and unhealthy
once it stopped.  Real veth interfaces; no Docker (DOCKER_HOST points at nothing)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.netns import sh
from tests.support.service import EYES_DEVINE, Service

pytestmark = pytest.mark.netns

MAX_AGE = 4.0


def health(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EYES_DEVINE, "health", "--db", str(db), "--max-age", str(MAX_AGE)],
                          capture_output=True, text=True, timeout=60)


def wait_for_health(db: Path, healthy: bool, within: float) -> tuple[str, float]:
    """The first line health printed with the wanted verdict, and the seconds it took."""
    started = time.monotonic()
    while True:
        result = health(db)
        assert result.returncode in (0, 1), result.stderr
        line = (result.stdout or result.stderr).strip()
        if (result.returncode == 0) == healthy:
            return line, time.monotonic() - started
        assert time.monotonic() - started < within, f"health still says {line!r} after {within} s"
        time.sleep(0.2)


def veth(name: str, peer: str) -> None:
    sh("ip", "link", "add", name, "type", "veth", "peer", "name", peer)
    sh("ip", "link", "set", name, "up")


def test_health_follows_the_sniffer_and_the_process(lab, tmp_path):
    name, peer = lab.name("hl"), lab.name("hlp")
    veth(name, peer)
    lab.links.append(name)
    db = tmp_path / "x.db"
    before = health(db)
    assert before.returncode == 1 and before.stderr.startswith("eyes-devine: unhealthy: no database at")
    run = Service(db, {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}, "-i", name)
    try:
        run.wait_for("capturing")
        line, _ = wait_for_health(db, True, 10)
        assert line.startswith(f"healthy: capturing on {name}; run {run.process.pid} on ")

        sh("ip", "link", "del", name)  # the interface disappears
        line, took = wait_for_health(db, False, MAX_AGE)
        assert line.startswith(f"unhealthy: not capturing on {name};"), line
        veth(name, peer)  # and comes back
        line, _ = wait_for_health(db, True, MAX_AGE)
        assert line.startswith(f"healthy: capturing on {name};")

        run.process.send_signal(signal.SIGSTOP)  # alive, but neither capturing nor writing
        try:
            line, took = wait_for_health(db, False, MAX_AGE + 6)
            assert "(stale after 4 s)" in line and took <= MAX_AGE + 6, line
        finally:
            run.process.send_signal(signal.SIGCONT)
        wait_for_health(db, True, 10)
    finally:
        assert run.stop() == 0, run.log
    line, _ = wait_for_health(db, False, 1)
    assert re.fullmatch(rf"unhealthy: run {run.process.pid} on \S+ stopped (just now|\d+ s ago)", line), line
