"""Debian's Prometheus server, started for a test in a temp dir, scraping one target every second."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.support.requirements import require_binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Prometheus:
    """``prometheus`` scraping ``target`` (host:port) as job "eyes-devine"; :meth:`query` runs PromQL."""

    def __init__(self, workdir: Path, target: str) -> None:
        binary = require_binary("prometheus", "prometheus")
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"scrape_configs:\n  - job_name: eyes-devine\n    static_configs:\n      - targets: ['{target}']\n"
        )
        self.port = free_port()
        self.log = workdir / "prometheus.log"
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=self.log.open("w"))
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert self.process.poll() is None, f"prometheus exited: {self.log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "prometheus did not become ready in 30 s"
            time.sleep(0.2)

    def query(self, promql: str) -> list[dict]:
        """The instant vector ``promql`` evaluates to now (``[]`` when empty)."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, promql: str) -> float | None:
        """The one number ``promql`` evaluates to, or None when it has no sample (yet)."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, promql: str, expected: float, timeout: float = 30.0) -> None:
        """Until ``promql`` is ``expected`` (scrapes come every second)."""
        deadline = time.monotonic() + timeout
        while (value := self.value(promql)) != expected:
            assert time.monotonic() < deadline, f"{promql} = {value}, expected {expected}, after {timeout} s"
            time.sleep(0.5)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
