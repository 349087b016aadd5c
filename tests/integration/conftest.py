"""Fixtures of the integration tests: `run` as a service and a busybox web container."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dockerd import DockerEngine
from tests.support.load import get
from tests.support.requirements import require_root
from tests.support.service import Service


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
    for run in started:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


@pytest.fixture
def web(docker_engine: DockerEngine, busybox_image: str) -> Iterator:
    container = docker_engine.client.containers.run(busybox_image, name=f"edt-run-{os.getpid()}", detach=True)
    container.reload()
    address = container.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    deadline = time.monotonic() + 15
    while True:
        try:
            get(address, 80, "/probe", timeout=1)
            break
        except OSError:
            assert time.monotonic() < deadline, "httpd did not start"
            time.sleep(0.1)
    container.address = address
    yield container
    container.remove(force=True)
