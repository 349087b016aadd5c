"""Shared fixtures: a real Docker Engine, the busybox test image, network labs and the committed captures."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.support import install as shared_install
from tests.support.captures import LAB_HTTP, LabCapture, lab_capture
from tests.support.dockerd import DockerEngine, answers, start_private_dockerd
from tests.support.images import ensure_image
from tests.support.install import Install
from tests.support.netns import Lab
from tests.support.postgres import PostgresServer
from tests.support.requirements import missing, require_binary, require_root


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    """The engine DOCKER_HOST or the default socket points at, else a private dockerd for this session."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    client = answers(host)
    if client is not None:
        engine = DockerEngine(host, client)
        yield engine
        engine.close()
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        missing("a Docker Engine (Debian package docker.io)")
    require_root()
    engine = start_private_dockerd(dockerd)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def busybox_image(docker_engine: DockerEngine) -> str:
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        missing("busybox (Debian package busybox-static)")
    return ensure_image(docker_engine.client, busybox)


@pytest.fixture(scope="session")
def lab_http() -> LabCapture:
    """The committed capture of real HTTP/1.x servers and clients (see tests/pcaps/record.py)."""
    return lab_capture(LAB_HTTP)


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Namespaces, veths and bridges for real packets, removed afterwards."""
    require_root()
    require_binary("ip", "iproute2")
    built = Lab()
    yield built
    built.close()


@pytest.fixture(scope="module")
def shared() -> Iterator[Install]:
    """eyes-devine installed where `nobody` can read it: a process that dropped to it still imports modules."""
    require_root()
    require_binary("setpriv", "util-linux")
    try:
        built = shared_install.build()
    except RuntimeError as error:
        missing(f"a world-readable install ({error})")
    yield built
    built.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the tests' own (initdb + pg_ctl), for the session; each test takes a new database."""
    server = PostgresServer()
    yield server
    server.close()
