"""Docker attribution against a real Docker Engine: both ends of every exchange, as they were at its time.

Each test starts containers from the busybox test image, captures on the
Docker bridges with the live pipeline, makes requests, and checks the
``container`` / ``client_container`` of what comes out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import docker
import pytest

from eyes_devine.app.pipeline import Monitor
from eyes_devine.config import Settings
from eyes_devine.records import Attribution, Exchange
from tests.support.dockerd import DockerEngine, restart_private_dockerd
from tests.support.netns import Lab, sh
from tests.support.records import Collected
from tests.support.requirements import missing, require_binary, require_root

pytestmark = pytest.mark.docker


class Containers:
    """Containers and networks made by one test, removed at its end."""

    def __init__(self, engine: DockerEngine, image: str) -> None:
        self.client = engine.client
        self.image = image
        self.made: list[str] = []
        self.networks: list[str] = []

    def run(self, name: str, command: list[str] | None = None, network: str | None = None, **kwargs):
        container = self.client.containers.run(self.image, command, name=name, detach=True, network=network,
                                               **kwargs)
        self.made.append(container.id)
        return container

    def network(self, name: str, subnet: str | None = None):
        ipam = None
        if subnet:
            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
        network = self.client.networks.create(name, driver="bridge", ipam=ipam)
        self.networks.append(network.id)
        return network

    def close(self) -> None:
        for container_id in self.made:
            try:
                self.client.api.remove_container(container_id, force=True)
            except docker.errors.NotFound:
                pass
        for network_id in self.networks:
            try:
                self.client.api.remove_network(network_id)
            except docker.errors.NotFound:
                pass


@pytest.fixture
def containers(docker_engine: DockerEngine, busybox_image: str) -> Iterator[Containers]:
    require_root()
    made = Containers(docker_engine, busybox_image)
    yield made
    made.close()


class Watch:
    """A running Monitor and everything it emitted and logged."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.collected = Collected()
        self.exchanges: list[Exchange] = self.collected.exchanges
        self.log: list[str] = []

    def matching(self, marker: str) -> list[Exchange]:
        return [x for x in self.exchanges if marker in x.target]

    def wait_for(self, marker: str, count: int = 1, timeout: float = 15.0) -> list[Exchange]:
        wait_until(lambda: len(self.matching(marker)) >= count, timeout, f"{count} exchange(s) for {marker}")
        return self.matching(marker)

    def knows(self, name: str) -> bool:
        return any(info.name == name for info in self.monitor.containers.current())


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def watch(docker_engine: DockerEngine) -> Iterator[Callable[..., Watch]]:
    started: list[Watch] = []

    def start(interfaces: tuple[str, ...], *, follow: bool = True, ports: str | None = None) -> Watch:
        settings = Settings.build(docker_engine.env, interfaces=interfaces, ports=ports, follow_docker_ports=follow)
        watch = Watch(None)  # type: ignore[arg-type]
        lock = threading.Lock()

        def log(line: str) -> None:
            with lock:
                watch.log.append(line)

        watch.monitor = Monitor(settings, settings.interfaces, [watch.collected], log)
        watch.monitor.start()
        started.append(watch)
        wait_until(watch.monitor.docker.connected.is_set, 20, "the Docker watcher to connect")
        return watch

    yield start
    for watch in started:
        watch.monitor.stop()


def bridge_of(network) -> str:
    network.reload()
    return network.attrs["Options"].get("com.docker.network.bridge.name") or "br-" + network.id[:12]


def address_of(container, network: str = "bridge") -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def host_side_veth(container) -> str:
    """The host end of a container's eth0: the interface whose ifindex is eth0's iflink."""
    peer_index = container.exec_run(["cat", "/sys/class/net/eth0/iflink"]).output.decode().strip()
    for path in os.listdir("/sys/class/net"):
        with open(f"/sys/class/net/{path}/ifindex") as handle:
            if handle.read().strip() == peer_index:
                return path
    raise AssertionError(f"no host interface with ifindex {peer_index}")


def curl(url: str, *extra: str) -> None:
    binary = require_binary("curl", "curl")
    subprocess.run([binary, "-s", "-o", "/dev/null", "--max-time", "5", *extra, url], check=True)


def serving(container, port: int = 80) -> None:
    """Wait until busybox httpd in ``container`` accepts connections."""
    container.reload()
    address = address_of(container, next(iter(container.attrs["NetworkSettings"]["Networks"])))
    binary = require_binary("curl", "curl")
    wait_until(lambda: subprocess.run([binary, "-s", "-o", "/dev/null", "--max-time", "1",
                                       f"http://{address}:{port}/probe"]).returncode == 0, 15, "httpd")


def test_containers_on_docker0_and_a_user_network_are_attributed_by_address(containers, watch):
    user = containers.network("edt-attr-user")
    web = containers.run("edt-web0")
    api = containers.run("edt-api", network=user.name)
    observed = watch(("docker0", bridge_of(user)))
    wait_until(lambda: observed.knows("edt-web0") and observed.knows("edt-api"))
    serving(web)
    serving(api)
    curl(f"http://{address_of(web)}/on-docker0")
    curl(f"http://{address_of(api, user.name)}/on-user-network")
    [first] = observed.wait_for("/on-docker0")
    [second] = observed.wait_for("/on-user-network")
    assert first.attribution == Attribution(container="edt-web0", container_id=web.id[:12])
    assert second.attribution == Attribution(container="edt-api", container_id=api.id[:12])
    assert first.interface == "docker0" and second.interface == bridge_of(user)


def test_container_to_container_by_name_names_both_ends(containers, watch):
    user = containers.network("edt-attr-c2c")
    containers.run("edt-backend", network=user.name)
    observed = watch((bridge_of(user),))
    backend = containers.client.containers.get("edt-backend")
    serving(backend)
    caller = containers.run("edt-caller", ["sh", "-c", "sleep 1; wget -q -O - http://edt-backend/by-name; sleep 60"],
                            network=user.name)
    [exchange] = observed.wait_for("/by-name")
    assert exchange.attribution == Attribution("edt-backend", "edt-caller", backend.id[:12], caller.id[:12])


def test_a_published_port_reached_via_loopback_is_attributed_to_the_container_behind_it(containers, watch):
    web = containers.run("edt-published", ports={"80/tcp": ("127.0.0.1", 18481)})
    # On lo the request goes to 127.0.0.1:18481 (followed as a published port, no flag needed);
    # on docker0 the userland proxy's connection comes from the bridge gateway.
    observed = watch(("lo", "docker0"))
    wait_until(lambda: observed.knows("edt-published") and 18481 in observed.monitor.ports)
    serving(web)
    curl("http://127.0.0.1:18481/via-published-port")
    seen = observed.wait_for("/via-published-port", count=2)
    by_interface = {x.interface: x for x in seen}
    assert set(by_interface) == {"lo", "docker0"}
    assert by_interface["lo"].server_port == 18481 and by_interface["lo"].attribution.container == "edt-published"
    assert by_interface["docker0"].server_ip == address_of(web)
    assert by_interface["docker0"].attribution.container == "edt-published"
    assert all(x.attribution.client_container is None for x in seen)


def test_a_new_owner_of_an_address_is_never_confused_with_the_old_one(containers, watch):
    net = containers.network("edt-attr-reuse", subnet="172.29.7.0/24")
    first = containers.run("edt-first", network=net.name)
    observed = watch((bridge_of(net),))
    wait_until(lambda: observed.knows("edt-first"))
    address = address_of(first, net.name)
    serving(first)
    curl(f"http://{address}/owner-first")
    observed.wait_for("/owner-first")
    # The first container stops; a second takes its address; the first comes back on a new one.
    first.stop(timeout=1)
    second = containers.run("edt-second", network=net.name)
    assert address_of(second, net.name) == address
    first.start()
    new_address = address_of(first, net.name)
    assert new_address != address
    wait_until(lambda: observed.knows("edt-second") and observed.knows("edt-first"))
    serving(second)
    serving(first)
    curl(f"http://{address}/owner-second")
    curl(f"http://{new_address}/first-restarted")
    # Removed, and its address taken by a container created with that address.
    containers.client.api.remove_container(second.id, force=True)
    third = containers.client.containers.create(containers.image, name="edt-third")
    containers.made.append(third.id)
    containers.client.api.disconnect_container_from_network(third.id, "bridge")
    containers.client.api.connect_container_to_network(third.id, net.id, ipv4_address=address)
    third.start()
    wait_until(lambda: observed.knows("edt-third") and not observed.knows("edt-second"))
    serving(third)
    curl(f"http://{address}/owner-third")
    assert [x.attribution.container for x in observed.wait_for("/owner-first")] == ["edt-first"]
    assert [x.attribution.container for x in observed.wait_for("/owner-second")] == ["edt-second"]
    assert [x.attribution.container for x in observed.wait_for("/first-restarted")] == ["edt-first"]
    assert [x.attribution.container for x in observed.wait_for("/owner-third")] == ["edt-third"]


def test_a_service_on_a_non_default_exposed_port_is_captured_with_no_flag(containers, watch):
    odd = containers.run("edt-port9000", ["httpd", "-f", "-p", "9000", "-h", "/www"], ports={"9000/tcp": None})
    observed = watch(("docker0",))
    wait_until(lambda: 9000 in observed.monitor.ports, 15, "port 9000 in the capture filter")
    assert "port 9000" in observed.monitor.bpf
    serving(odd, 9000)
    curl(f"http://{address_of(odd)}:9000/odd-port")
    [exchange] = observed.wait_for("/odd-port")
    assert exchange.attribution.container == "edt-port9000" and exchange.server_port == 9000


def test_without_following_docker_ports_a_non_default_port_stays_out(containers, watch):
    odd = containers.run("edt-nofollow", ["httpd", "-f", "-p", "9001", "-h", "/www"], ports={"9001/tcp": None})
    observed = watch(("docker0",), follow=False)
    wait_until(lambda: observed.knows("edt-nofollow"))
    serving(odd, 9001)
    curl(f"http://{address_of(odd)}:9001/not-followed")
    curl(f"http://{address_of(odd)}:9001/not-followed-2")
    time.sleep(1.0)
    assert observed.matching("/not-followed") == [] and "9001" not in observed.monitor.bpf


def test_bridge_and_container_veth_together_record_each_request_once(containers, watch):
    web = containers.run("edt-once")
    serving(web)
    observed = watch(("docker0", host_side_veth(web)))
    wait_until(lambda: observed.knows("edt-once"))
    for index in range(5):
        curl(f"http://{address_of(web)}/once-{index}")
    seen = observed.wait_for("/once-", count=5)
    time.sleep(0.5)
    assert sorted(x.target for x in observed.matching("/once-")) == [f"/once-{index}" for index in range(5)]
    assert {x.attribution.container for x in seen} == {"edt-once"}


def test_capture_goes_on_while_the_daemon_is_down_and_attribution_resumes(docker_engine, containers, watch):
    if docker_engine.process is None:
        missing("a private dockerd to stop and start (unset DOCKER_HOST so the tests start their own)")
    dockerd = shutil.which("dockerd")
    web = containers.run("edt-survivor", restart_policy={"Name": "always"})
    observed = watch(("docker0",))
    wait_until(lambda: observed.knows("edt-survivor"))
    serving(web)
    curl(f"http://{address_of(web)}/before-stop")
    assert [x.attribution.container for x in observed.wait_for("/before-stop")] == ["edt-survivor"]
    docker_engine.stop_daemon()
    wait_until(lambda: not observed.monitor.docker.connected.is_set(), 20, "the watcher to notice")
    try:
        # The bridge outlives the daemon: a server of our own on it is still captured, with no container.
        outsider = _outsider_on_docker0()
        curl(f"http://{outsider.address}/while-down")
        [down] = observed.wait_for("/while-down")
        assert down.attribution.container is None and down.status == 404  # http.server has no such file
    finally:
        _stop_outsider()
        restart_private_dockerd(docker_engine, dockerd)
    wait_until(observed.monitor.docker.connected.is_set, 60, "the watcher to reconnect")
    wait_until(lambda: observed.knows("edt-survivor"), 30)
    web.reload()
    serving(web)
    curl(f"http://{address_of(web)}/after-restart")
    assert [x.attribution.container for x in observed.wait_for("/after-restart")] == ["edt-survivor"]
    assert sum("Docker: lost" in line or "retrying" in line for line in observed.log) >= 1
    assert any("Docker: connected" in line for line in observed.log[1:])


_outsiders: list = []


def _outsider_on_docker0():
    """A namespace plugged into docker0 at an address Docker does not hand out, serving HTTP."""
    lab = Lab()
    _outsiders.append(lab)
    ns = lab.host("o", 2)
    sh("ip", "addr", "flush", "dev", ns.link)
    sh("ip", "link", "set", ns.link, "master", "docker0")
    ns.run("ip", "addr", "flush", "dev", "eth0")
    ns.run("ip", "addr", "add", "172.17.255.250/16", "dev", "eth0")
    ns.address = "172.17.255.250"
    lab.processes.append(ns.spawn(sys.executable, "-m", "http.server", "80", "--bind", "0.0.0.0"))
    binary = require_binary("curl", "curl")
    wait_until(lambda: subprocess.run([binary, "-s", "-o", "/dev/null", "--max-time", "1",
                                       "http://172.17.255.250/probe"]).returncode == 0, 15, "outsider server")
    return ns


def _stop_outsider() -> None:
    while _outsiders:
        _outsiders.pop().close()
