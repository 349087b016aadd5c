"""Fixtures of the integration tests: `run` as a service and a busybox web container."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dockerd import DockerEngine
from tests.support.load import get
from tests.support.netns import Lab
from tests.support.requirements import require_binary, require_root
from tests.support.service import Service
from tests.support.terminal import terminal  # noqa: F401  (a fixture for the tests here)


@pytest.fixture
def service(docker_engine: DockerEngine, tmp_path: Path) -> Iterator:
    require_root()
    started: list[Service] = []

    def start(*extra: str, db: Path | None = None, env: dict[str, str] | None = None,
              read_stdout: bool = True) -> Service:
        run = Service(db or tmp_path / "data" / "exchanges.db", env or docker_engine.env, *extra,
                      read_stdout=read_stdout)
        started.append(run)
        run.wait_for("capturing")
        return run

    yield start
    _kill_left_running(started)


def _kill_left_running(started: list[Service]) -> None:
    """A failing test leaves its `run` capturing: it ends with the test."""
    for run in started:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


@pytest.fixture
def undocked(tmp_path: Path) -> Iterator:
    """`eyes-devine run` with no Docker Engine to ask (tests of capture alone), killed at the end if a failing
    test left it running."""
    require_root()
    started: list[Service] = []

    def start(db: Path, *extra: str) -> Service:
        run = Service(db, {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}, *extra)
        started.append(run)
        run.wait_for("capturing", timeout=60)
        return run

    yield start
    _kill_left_running(started)


def serving(container, path: str = "/probe", status: int | None = None):
    """``container`` with its bridge ``address``, once its httpd answers ``path`` (with ``status``, if given)."""
    container.reload()
    address = container.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    deadline = time.monotonic() + 15
    while True:
        try:
            answered: int | None = get(address, 80, path, timeout=1)
        except OSError:
            answered = None
        if answered is not None and status in (None, answered):
            break
        assert time.monotonic() < deadline, f"httpd did not answer {path} in 15 s"
        time.sleep(0.1)
    container.address = address
    return container


@pytest.fixture
def web(docker_engine: DockerEngine, busybox_image: str) -> Iterator:
    container = docker_engine.client.containers.run(busybox_image, name=f"edt-run-{os.getpid()}", detach=True)
    yield serving(container)
    container.remove(force=True)


@pytest.fixture
def leaky(docker_engine: DockerEngine, busybox_image: str) -> Iterator:
    """A busybox web container that serves its .env file: a probe for it works."""
    serve = "mkdir -p /www && echo DB_PASSWORD=hunter2 > /www/.env && exec httpd -f -p 80 -h /www"
    container = docker_engine.client.containers.run(busybox_image, ["sh", "-c", serve],
                                                    name=f"edt-leaky-{os.getpid()}", detach=True)
    yield serving(container, "/.env", 200)
    container.remove(force=True)


SERVED_PORT = 8000
"""The port of the lab's HTTP server (`served`)."""


@pytest.fixture
def served(lab: Lab):
    """A bridge with an HTTP server (port :data:`SERVED_PORT`) and a client namespace with curl on it."""
    require_binary("curl", "curl")
    bridge = lab.bridge()
    server = lab.host("s", 2, bridge=bridge)
    client = lab.host("c", 3, bridge=bridge)
    lab.processes.append(server.spawn(sys.executable, "-m", "http.server", str(SERVED_PORT), "--bind", "0.0.0.0"))
    probe = f"import socket; socket.create_connection(('{server.address}', {SERVED_PORT}), timeout=1).close()"
    deadline = time.monotonic() + 10
    while client.run(sys.executable, "-c", probe, check=False).returncode != 0:
        assert time.monotonic() < deadline, "http.server did not start"
        time.sleep(0.1)
    return bridge, server, client
