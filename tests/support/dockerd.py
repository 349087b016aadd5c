"""A Docker Engine for the tests: the reachable one, else a private dockerd started in a temp dir."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import requests.exceptions


@dataclass
class DockerEngine:
    host: str
    client: docker.DockerClient
    process: subprocess.Popen | None = None
    """The dockerd we started, if we started one."""
    workdir: Path | None = None
    log_path: Path | None = None
    _log: object = field(default=None, repr=False)

    @property
    def env(self) -> dict[str, str]:
        """The environment a child process needs to reach this engine."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_HOST"] = self.host
        return env

    def stop_daemon(self) -> None:
        """Stop our private dockerd (tests of daemon loss use this)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def close(self) -> None:
        self.client.close()
        self.stop_daemon()
        if self._log:
            self._log.close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def answers(host: str) -> docker.DockerClient | None:
    try:
        client = docker.DockerClient(base_url=host, timeout=5)
        client.ping()
        return client
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        return None


def start_private_dockerd(dockerd: str) -> DockerEngine:
    """Run dockerd on a socket in a fresh temp dir; short paths keep containerd's sockets under 108 bytes."""
    workdir = Path(tempfile.mkdtemp(prefix="edd-", dir="/tmp"))
    host = f"unix://{workdir}/docker.sock"
    log_path = workdir / "dockerd.log"
    log = open(log_path, "wb")  # noqa: SIM115 - kept open for the daemon's lifetime
    process = subprocess.Popen(
        [dockerd, "--host", host, "--data-root", str(workdir / "root"), "--exec-root", str(workdir / "exec"),
         "--pidfile", str(workdir / "docker.pid")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        client = answers(host)
        if client is not None:
            return DockerEngine(host, client, process, workdir, log_path, log)
        if process.poll() is not None:
            break
        time.sleep(0.3)
    process.kill()
    log.close()
    raise RuntimeError(f"dockerd did not start; its log: {log_path.read_text(errors='replace')[-2000:]}")


def restart_private_dockerd(engine: DockerEngine, dockerd: str) -> None:
    """Start our dockerd again on the same socket and data (for daemon-restart tests)."""
    assert engine.workdir is not None
    engine.stop_daemon()
    engine.process = subprocess.Popen(
        [dockerd, "--host", engine.host, "--data-root", str(engine.workdir / "root"),
         "--exec-root", str(engine.workdir / "exec"), "--pidfile", str(engine.workdir / "docker.pid")],
        stdout=engine._log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if answers(engine.host) is not None:
            return
        time.sleep(0.3)
    raise RuntimeError("dockerd did not come back")
