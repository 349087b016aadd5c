"""The Docker Engine adapter: the only module that imports the Docker SDK.

Read-only: only GET endpoints (and, later, the event stream), so eyes-devine
works behind a socket proxy that allows just CONTAINERS, NETWORKS and EVENTS.
A DOCKER_HOST that cannot be an address is bad input, refused by
:func:`check_docker_host` before anything starts; every other failure becomes a
:class:`DockerStatus` carrying a line a person can act on, never an exception
escaping to the user.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import docker
import docker.errors
import docker.utils
import requests.exceptions

from eyes_devine.records import ContainerInfo, PublishedPort

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
DESKTOP_SOCKETS = ("~/.docker/run/docker.sock", "~/.docker/desktop/docker.sock")
"""Where Docker Desktop for Mac puts its socket when /var/run/docker.sock is not linked to it."""
WINDOWS_PIPE = "npipe:////./pipe/docker_engine"


def docker_host(environment: Mapping[str, str], platform: str = sys.platform) -> str:
    """DOCKER_HOST, else the platform's default socket (Docker Desktop's own on a Mac that lacks the usual one)."""
    if environment.get("DOCKER_HOST"):
        return environment["DOCKER_HOST"]
    if platform == "win32":
        return WINDOWS_PIPE
    if platform == "darwin" and not os.path.exists("/var/run/docker.sock"):
        for candidate in DESKTOP_SOCKETS:
            path = os.path.expanduser(candidate)
            if os.path.exists(path):
                return "unix://" + path
    return DEFAULT_SOCKET


_PASSWORD = re.compile(r"(//[^/@:]*:)[^/@]*@")
"""The password of ``scheme://user:password@host`` (the SDK refuses one, and the refusal is logged)."""


class DockerHostError(ValueError):
    """DOCKER_HOST is set to something that cannot be a Docker Engine's address: bad input, not an outage."""


def check_docker_host(environment: Mapping[str, str], platform: str = sys.platform) -> None:
    """Raise DockerHostError when DOCKER_HOST is not an address the SDK accepts, with what is wrong in it.

    Checked with the SDK's own parser, so an address is refused exactly when
    the SDK would refuse it, but before anything starts.  Empty counts as unset, as for
    the docker CLI.  An address that parses but where no Engine answers is left
    to :func:`connect`: that is an outage, reported while capture goes on.
    """
    host = environment.get("DOCKER_HOST")
    if not host:
        return
    try:
        docker.utils.parse_host(host, platform == "win32", tls=bool(environment.get("DOCKER_TLS_VERIFY")))
    except (docker.errors.DockerException, ValueError) as error:
        shown = _PASSWORD.sub(r"\1***@", host)
        detail = str(error).replace(host, shown)
        raise DockerHostError(
            f"DOCKER_HOST={shown!r} is not a Docker Engine address ({detail}): use unix:///PATH, tcp://HOST:PORT, "
            "ssh://[USER@]HOST or npipe:////./pipe/NAME, or unset it for the default socket"
        ) from None


@dataclass(frozen=True, slots=True)
class DockerStatus:
    reachable: bool
    host: str
    version: str | None = None
    api_version: str | None = None
    error: str | None = None
    """What went wrong and how to fix it, when not reachable."""


def connect(environment: Mapping[str, str], timeout: float = 3.0) -> tuple[docker.DockerClient | None, DockerStatus]:
    """A client from DOCKER_HOST and the TLS variables (else the default socket), and whether it answers."""
    host = docker_host(environment)
    try:
        client = docker.from_env(environment={**environment, "DOCKER_HOST": host}, timeout=timeout)
        version = client.version()
    except docker.errors.DockerException as error:
        return None, DockerStatus(False, host, error=explain(error, host))
    except (requests.exceptions.RequestException, OSError, ValueError) as error:  # ValueError: a malformed host
        return None, DockerStatus(False, host, error=explain(error, host))
    return client, DockerStatus(True, host, version.get("Version"), version.get("ApiVersion"))


def explain(error: BaseException, host: str) -> str:
    """Turn the SDK's nested connection errors into one line with the fix."""
    text = str(error)
    if "Permission denied" in text or isinstance(error, PermissionError):
        return (
            f"permission denied on {host}: run as root or add this user to the 'docker' group "
            "(then log in again)"
        )
    if "No such file or directory" in text or "Connection refused" in text or "FileNotFoundError" in text:
        return f"no Docker Engine at {host}: start it (systemctl start docker) or set DOCKER_HOST"
    if "timed out" in text.lower():
        return f"Docker Engine at {host} did not answer in time: check the daemon, or DOCKER_HOST"
    first_line = text.splitlines()[0] if text else type(error).__name__
    return f"Docker Engine at {host} is not usable ({first_line}); check DOCKER_HOST and the TLS variables"


def bridge_networks(client: docker.DockerClient) -> dict[str, str]:
    """Map each Docker bridge's Linux interface name to its network name.

    The default network is ``docker0`` unless the daemon was configured
    otherwise; user-defined ones are ``br-`` and the first 12 characters of the
    id, unless ``com.docker.network.bridge.name`` names them.
    """
    names: dict[str, str] = {}
    try:
        networks = client.api.networks(filters={"driver": "bridge"})
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        return names
    for network in networks:
        options = network.get("Options") or {}
        bridge = options.get("com.docker.network.bridge.name")
        if not bridge:
            bridge = "docker0" if network.get("Name") == "bridge" else "br-" + network["Id"][:12]
        names[bridge] = network.get("Name", "")
    return names


def container_veths(client: docker.DockerClient, proc: str = "/proc", sys_net: str = "/sys/class/net"
                    ) -> dict[str, str]:
    """Host veth name → container name (Linux; empty elsewhere or without the rights to look).

    A container's interface's ``iflink`` is the ifindex of its host-side peer.
    The container's own sysfs is readable at /proc/<pid>/root/sys, so no
    namespace switching is needed: one inspect and a few small reads each.
    """
    if not os.path.isdir(sys_net):
        return {}
    by_index: dict[str, str] = {}
    for name in os.listdir(sys_net):
        with contextlib.suppress(OSError):
            by_index[_read(f"{sys_net}/{name}/ifindex")] = name
    veths: dict[str, str] = {}
    try:
        summaries = client.api.containers()
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return {}
    for summary in summaries:
        try:
            attrs = client.api.inspect_container(summary["Id"])
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            continue
        pid = (attrs.get("State") or {}).get("Pid")
        inside = f"{proc}/{pid}/root/sys/class/net"
        try:
            names = os.listdir(inside) if pid else []
        except OSError:
            continue
        for name in names:
            with contextlib.suppress(OSError):
                host_name = by_index.get(_read(f"{inside}/{name}/iflink"))
                if host_name and name != "lo" and host_name.startswith("veth"):
                    veths[host_name] = (attrs.get("Name") or "").lstrip("/")
    return veths


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read().strip()


def container_info(attrs: dict) -> ContainerInfo:
    """Reduce `docker inspect` output to what attribution needs; the environment is never read."""
    config = attrs.get("Config") or {}
    labels = config.get("Labels") or {}
    settings = attrs.get("NetworkSettings") or {}
    addresses: list[str] = []
    gateways: list[str] = []
    for network in (settings.get("Networks") or {}).values():
        for key in ("IPAddress", "GlobalIPv6Address"):
            if network.get(key):
                addresses.append(network[key])
        for key in ("Gateway", "IPv6Gateway"):
            if network.get(key):
                gateways.append(network[key])
    published: list[PublishedPort] = []
    ports: set[int] = set()
    for spec in config.get("ExposedPorts") or {}:
        number, _, proto = spec.partition("/")
        if proto in ("", "tcp") and number.isdigit():
            ports.add(int(number))
    for spec, bindings in (settings.get("Ports") or {}).items():
        number, _, proto = spec.partition("/")
        if proto not in ("", "tcp") or not number.isdigit():
            continue
        ports.add(int(number))
        for binding in bindings or ():
            host_port = binding.get("HostPort") or ""
            if host_port.isdigit():
                published.append(PublishedPort(binding.get("HostIp") or "", int(host_port), int(number)))
    return ContainerInfo(
        id=attrs["Id"],
        name=(attrs.get("Name") or "").lstrip("/"),
        image=config.get("Image") or attrs.get("Image", ""),
        compose_project=labels.get("com.docker.compose.project"),
        compose_service=labels.get("com.docker.compose.service"),
        addresses=tuple(dict.fromkeys(addresses)),
        gateways=tuple(dict.fromkeys(gateways)),
        published=tuple(dict.fromkeys(published)),
        ports=tuple(sorted(ports)),
    )


def running_containers(client: docker.DockerClient) -> list[ContainerInfo]:
    """Every running container, inspected (GET /containers/json, GET /containers/{id}/json)."""
    infos = []
    for summary in client.api.containers():
        try:
            infos.append(container_info(client.api.inspect_container(summary["Id"])))
        except docker.errors.NotFound:
            continue  # gone between the list and the inspect
    return infos


def current_containers(environment: Mapping[str, str], timeout: float = 3.0
                       ) -> tuple[list[ContainerInfo] | None, DockerStatus]:
    """The containers running now, once (`read` names a capture file's ends with them); None when no Engine
    answers, with the status saying why."""
    client, status = connect(environment, timeout)
    if client is None:
        return None, status
    try:
        return running_containers(client), status
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as error:
        return None, DockerStatus(False, status.host, error=explain(error, status.host))
    finally:
        client.close()


class ContainerListener(Protocol):
    """What the watcher reports of the containers it sees, with the time of each change (the attribution map)."""

    def replace_all(self, infos: Iterable[ContainerInfo], ts: float) -> None: ...

    def upsert(self, info: ContainerInfo, ts: float) -> None: ...

    def remove(self, container_id: str, ts: float) -> None: ...


CONTAINER_STARTS = frozenset({"start", "rename", "restart", "update"})
CONTAINER_ENDS = frozenset({"die", "destroy"})
"""A paused or signalled container still owns its addresses; only death or removal ends them."""


class DockerWatcher:
    """Keeps a listener (the attribution map) current from the Docker Engine: list once, follow the events.

    Runs on its own thread, as ctop's connector does: when the daemon goes away
    the map keeps what it knew, one line says so, and the watcher reconnects with
    backoff; on reconnect a fresh listing replaces what changed meanwhile.
    ``update`` (a callable taking the map-changing function) serialises changes
    with the readers of the map.
    """

    def __init__(
        self,
        environment: Mapping[str, str],
        update: Callable[[Callable[[], None]], None],
        container_map: ContainerListener,
        log: Callable[[str], None],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._environment = dict(environment)
        self._update = update
        self._map = container_map
        self._log = log
        self._on_change = on_change
        self._stopping = threading.Event()
        self._stream: object | None = None
        self._thread = threading.Thread(target=self._run, name="eyes-devine-docker", daemon=True)
        self.status = DockerStatus(False, docker_host(self._environment),
                                   error="not connected yet")
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()  # type: ignore[attr-defined]
        self._thread.join(timeout=10)

    def _run(self) -> None:
        backoff = 1.0
        warned = False
        while not self._stopping.is_set():
            client, status = connect(self._environment)
            if client is None:
                self.status = status
                if not warned:
                    self._log(f"Docker: {status.error}; capturing without container names, retrying")
                    warned = True
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            try:
                self._follow(client, status)
                backoff = 1.0
            except (docker.errors.DockerException, requests.exceptions.RequestException, OSError, ValueError) as error:
                if not self._stopping.is_set():
                    self._log(f"Docker: lost the event stream ({explain(error, status.host)}); reconnecting")
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    client.close()
            if not self._stopping.is_set():
                self.status = DockerStatus(False, status.host, error="reconnecting to the Docker Engine")
                warned = False
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _follow(self, client: docker.DockerClient, status: DockerStatus) -> None:
        # Subscribe before listing, so nothing that happens in between is missed.
        self._stream = stream = client.api.events(decode=True, filters={"type": ["container", "network"]})
        listed = running_containers(client)
        now = time.time()
        self._update(lambda: self._map.replace_all(listed, now))
        self._on_change()
        self.status = status
        self.connected.set()
        self._log(f"Docker: connected to Engine {status.version} at {status.host}, {len(listed)} containers running")
        for event in stream:
            if self._stopping.is_set():
                return
            self._apply(client, event)
        if not self._stopping.is_set():
            raise OSError("the Docker Engine closed the event stream")

    def _apply(self, client: docker.DockerClient, event: dict) -> None:
        kind, action = event.get("Type"), (event.get("Action") or "").split(":")[0]
        ts = event.get("timeNano", 0) / 1e9 or event.get("time", time.time())
        actor = event.get("Actor") or {}
        if kind == "container":
            container_id = actor.get("ID") or event.get("id")
            if action in CONTAINER_ENDS:
                self._update(lambda: self._map.remove(container_id, ts))
                self._on_change()
                return
            if action not in CONTAINER_STARTS:
                return
        elif kind == "network" and action in ("connect", "disconnect"):
            container_id = (actor.get("Attributes") or {}).get("container")
        else:
            return
        if not container_id:
            return
        try:
            attrs = client.api.inspect_container(container_id)
        except docker.errors.NotFound:
            self._update(lambda: self._map.remove(container_id, ts))
        else:
            if (attrs.get("State") or {}).get("Running"):
                info = container_info(attrs)
                self._update(lambda: self._map.upsert(info, ts))
            else:
                self._update(lambda: self._map.remove(container_id, ts))
        self._on_change()
