"""The monitor as a container, for real: the image built by scripts/build-image.sh (its base made here from
Debian's packages, no registry), run as the README says, and the compose example brought up and down with
docker-compose, on a real Docker Engine.  Requests to sibling containers are read back from inside the monitor
container, attributed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dockerd import DockerEngine
from tests.support.load import get
from tests.support.requirements import missing, require_binary, require_root
from tests.support.service import wait_until

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "examples" / "compose"


def docker(engine: DockerEngine, *args: str, timeout: float = 120, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, env=engine.env, timeout=timeout)
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout


def socket_of(engine: DockerEngine) -> str:
    assert engine.host.startswith("unix://"), engine.host
    return engine.host.removeprefix("unix://")


@pytest.fixture(scope="module")
def image(docker_engine: DockerEngine) -> str:
    """eyes-devine:local, built with the documented script: the base from mmdebstrap, the wheels from the host."""
    require_root()
    require_binary("mmdebstrap", "mmdebstrap")
    require_binary("docker", "docker.io")
    started = time.monotonic()
    result = subprocess.run([str(REPO / "scripts" / "build-image.sh")], capture_output=True, text=True,
                            env=docker_engine.env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("built eyes-devine:local from eyes-devine-base:bookworm (Python 3."), line
    print(f"{line}, in {time.monotonic() - started:.0f} s")
    return "eyes-devine:local"


def logs(engine: DockerEngine, container: str) -> str:
    result = subprocess.run(["docker", "logs", container], capture_output=True, text=True, env=engine.env)
    return result.stdout + result.stderr


def stored_json(engine: DockerEngine, container: str, *args: str) -> list[dict]:
    out = docker(engine, "exec", container, "eyes-devine", "requests", "--json", *args, check=False)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture
def monitor(docker_engine: DockerEngine, image: str) -> Iterator[str]:
    """The image run as the README says: host network, NET_RAW and NET_ADMIN only, the Docker socket read-only, a
    volume for the database, a read-only root filesystem, the socket's group for the non-root user."""
    name, volume = f"edt-monitor-{os.getpid()}", f"edt-data-{os.getpid()}"
    socket = socket_of(docker_engine)
    docker(docker_engine, "run", "-d", "--name", name, "--network", "host", "--cap-add", "NET_RAW", "--cap-add",
           "NET_ADMIN", "--read-only", "-v", f"{socket}:/var/run/docker.sock:ro", "-v",
           f"{volume}:/var/lib/eyes-devine", "--group-add", str(os.stat(socket).st_gid), image)
    try:
        wait_until(lambda: " capturing " in logs(docker_engine, name), timeout=30, what="the monitor capturing")
        yield name
    finally:
        print(logs(docker_engine, name))
        docker(docker_engine, "rm", "-f", name, check=False)
        docker(docker_engine, "volume", "rm", volume, check=False)


def test_the_image_captures_a_sibling_as_a_non_root_user_and_reports_healthy(docker_engine, monitor, web):
    for i in range(10):
        assert get(web.address, 80, f"/index.html?n={i}", timeout=5) == 200
    def sent() -> list[dict]:
        return stored_json(docker_engine, monitor, "-c", web.name, "--path-contains", "/index.html?n=")

    wait_until(lambda: len(sent()) == 10, timeout=20,
               what="10 exchanges attributed to the sibling, read inside the monitor container")
    found = sent()
    assert {x["container"] for x in found} == {web.name} and all(x["status"] == 200 for x in found)

    user = docker(docker_engine, "exec", monitor, "sh", "-c", "id -un; grep CapEff /proc/1/status").split()
    assert user[0] == "eyes-devine" and user[-1] == "0000000000003000", user  # NET_ADMIN and NET_RAW, no more
    health = docker(docker_engine, "exec", monitor, "eyes-devine", "health")
    assert re.match(r"healthy: capturing on [^;]*\bdocker0\b", health), health
    wait_until(lambda: docker(docker_engine, "inspect", "-f", "{{.State.Health.Status}}", monitor).strip()
               == "healthy", timeout=60, what="Docker's HEALTHCHECK to say healthy")


def test_the_image_without_the_capabilities_refuses_capture_in_one_line_and_still_reads(docker_engine, image):
    result = subprocess.run(["docker", "run", "--rm", "--network", "host", image, "run"], capture_output=True,
                            text=True, env=docker_engine.env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == ("eyes-devine: capture needs NET_RAW and NET_ADMIN: start the container with "
                                     "--cap-add NET_RAW --cap-add NET_ADMIN (compose: cap_add)")
    helped = docker(docker_engine, "run", "--rm", image, "run", "--help")  # nothing captured: no capability asked
    assert helped.startswith("Usage: eyes-devine run")
    version = docker(docker_engine, "run", "--rm", "--cap-drop", "ALL", image, "--version")
    assert version.startswith("eyes-devine")


def test_the_compose_example_comes_up_watches_both_services_and_goes_down(docker_engine, image):
    compose = shutil.which("docker-compose")
    if compose is None:
        missing("docker-compose (Debian package docker-compose)")
    project = f"edt{os.getpid()}"
    socket = socket_of(docker_engine)
    env = {**docker_engine.env, "DOCKER_SOCKET": socket, "DOCKER_GID": str(os.stat(socket).st_gid)}

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([compose, "-p", project, *args], capture_output=True, text=True, env=env,
                              cwd=COMPOSE_DIR, timeout=timeout)

    up = run("up", "-d")
    try:
        assert up.returncode == 0, up.stderr
        monitor = f"{project}_monitor_1"

        def served_by_both() -> bool:
            found = stored_json(docker_engine, monitor)
            served = {(x["container"], x["client_container"]) for x in found}
            return {(f"{project}_web_1", f"{project}_caller_1"), (f"{project}_api_1", f"{project}_caller_1")} <= served

        wait_until(served_by_both, timeout=60, what="both services' requests, from the caller, in `requests`")
        shown = run("exec", "-T", "monitor", "timeout", "3", "eyes-devine", "watch", "--attach").stdout
        assert f"{project}_web_1" in shown and f"{project}_api_1" in shown, shown
    finally:
        down = run("down", "-v", timeout=180)
    assert down.returncode == 0, down.stderr
    left = docker(docker_engine, "ps", "-a", "--filter", f"label=com.docker.compose.project={project}", "-q")
    assert left.strip() == "", "containers left after down"
