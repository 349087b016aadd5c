"""Names for captures read later: tcpdump records container traffic while `run` keeps the inventory, and
`read --db` names every exchange as the container that served it then, even after its address passed to another.

Real components throughout: a real dockerd, real tcpdump on the bridge, a real SQLite file and a real PostgreSQL
server; the truth is the busybox servers' own logs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import docker
import pytest

from eyes_devine.adapters.store.opener import open_database
from tests.support.load import get, hammer
from tests.support.recorder import Recorder
from tests.support.requirements import require_binary
from tests.support.service import EYES_DEVINE, wait_until

pytestmark = pytest.mark.docker

SUBNET, ADDRESS = "172.31.77.0/24", "172.31.77.10"
"""The address the second container takes over from the first."""
SERVE = ["httpd", "-f", "-vv", "-p", "80", "-h", "/www"]
"""busybox httpd in the foreground, logging each request (``IP:PORT: url:/path``) on stderr."""
LOGGED = re.compile(r"^(?:\[[^]]*\]|[\d.]+):(\d+): url:(\S+)$", re.MULTILINE)
"""A request's line in that log: ``[::ffff:172.31.77.1]:40312: url:/first/7`` (the port, and the path without its
query)."""


class Site:
    """A user network and the containers made on it, removed at the end."""

    def __init__(self, client, image: str) -> None:
        self.client = client
        self.image = image
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=SUBNET)])
        self.network = client.networks.create(f"edt-names-{os.getpid()}", driver="bridge", ipam=ipam)
        self.network.reload()
        self.bridge = "br-" + self.network.id[:12]
        self.made: list[str] = []

    def serve(self, name: str):
        """A busybox web server at :data:`ADDRESS`, answering."""
        api = self.client.api
        created = api.create_container(
            self.image, SERVE, name=name, host_config=api.create_host_config(network_mode=self.network.name),
            networking_config=api.create_networking_config(
                {self.network.name: api.create_endpoint_config(ipv4_address=ADDRESS)}))
        self.made.append(created["Id"])
        api.start(created["Id"])
        wait_until(lambda: _answers(ADDRESS), 15, f"{name} serving")
        return self.client.containers.get(created["Id"])

    def close(self) -> None:
        for container_id in self.made:
            try:
                self.client.api.remove_container(container_id, force=True)
            except docker.errors.NotFound:
                pass
        self.network.remove()


def _answers(address: str) -> bool:
    try:
        get(address, 80, "/probe", timeout=1)
        return True
    except OSError:
        return False


def logged(container) -> Counter:
    """(client port, path) of every request the container's server logged."""
    text = container.logs(stdout=False, stderr=True).decode()
    return Counter((int(port), path) for port, path in LOGGED.findall(text))


def read(capture: Path, *args: str, env: dict[str, str] | None = None) -> tuple[list[dict], str]:
    result = subprocess.run([*EYES_DEVINE, "read", "--json", *args, str(capture)], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


@pytest.fixture
def site(docker_engine, busybox_image):
    made = Site(docker_engine.client, busybox_image)
    yield made
    made.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_capture_read_back_with_the_database_names_each_container_as_it_was(backend, service, site, tmp_path,
                                                                              docker_engine, request):
    tcpdump = require_binary("tcpdump", "tcpdump")
    db = str(tmp_path / "data" / "exchanges.db") if backend == "sqlite" else \
        request.getfixturevalue("postgres").new_database()
    first_name, second_name = f"edt-first-{os.getpid()}", f"edt-second-{os.getpid()}"
    run = service("-i", site.bridge, "--observer", "edge", db=db)
    run.wait_for("Docker: connected")
    capture = tmp_path / "capture.pcap"
    with Recorder(site.bridge, capture, bpf="tcp port 80", tcpdump=tcpdump) as recorder:
        first = site.serve(first_name)
        # One request at a time: four senders on two cores starved tcpdump now and then (kernel drops).
        assert hammer(ADDRESS, 80, [f"/first/{i}" for i in range(300)], threads=1) == 300
        first.stop(timeout=1)  # its address is free: the second container gets it
        second = site.serve(second_name)
        assert hammer(ADDRESS, 80, [f"/second/{i}" for i in range(200)], threads=1) == 200
    assert "\n0 packets dropped by kernel" in recorder.stderr, recorder.stderr
    assert run.stop() == 0

    served = {first_name: logged(first), second_name: logged(second)}
    exchanges, note = read(capture, "--db", db)
    seen = {name: Counter((x["client_port"], x["target"]) for x in exchanges if x["container"] == name)
            for name in served}
    assert sum(served[first_name].values()) >= 300 and sum(served[second_name].values()) >= 200
    for name, requests in served.items():
        assert seen[name] - requests == Counter(), f"{name}: nothing it did not serve, nothing invented"
        found = sum((seen[name] & requests).values())
        print(f"{backend} {name}: {found} of {sum(requests.values())} logged requests read back under its name")
        assert found >= 0.99 * sum(requests.values()), f"{name}: {found} of {sum(requests.values())} logged"
    assert {x["container"] for x in exchanges} == set(served), "every exchange named, each by its server"
    assert {x["container_id"] for x in exchanges} == {first.id[:12], second.id[:12]}
    assert "naming containers" not in note

    # Docker alone knows only who holds the address now: everything would be the second's, and read says so.
    now, note = read(capture, env=docker_engine.env)
    assert {x["container"] for x in now} == {second_name}
    assert "naming containers as they are now" in note and "--db" in note

    # A later run carries on the second's tenure rather than adding one: the inventory holds two, once each.
    again = service("-i", site.bridge, "--observer", "edge", db=db)
    again.wait_for("Docker: connected")
    assert again.stop() == 0
    assert asyncio.run(ended(db)) == [(first_name, True), (second_name, False)]


async def ended(db: str) -> list[tuple[str, bool]]:
    """(name, whether it ended) of each tenure stored, oldest first."""
    store = await open_database(db, 10, readonly=True)
    try:
        return [(tenure.info.name, tenure.ended is not None) for tenure in await store.inventory("edge")]
    finally:
        await store.close()
