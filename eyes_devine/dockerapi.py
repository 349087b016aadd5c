"""The Docker Engine adapter: the only module that imports the Docker SDK.

Read-only: only GET endpoints (and, later, the event stream), so eyes-devine
works behind a socket proxy that allows just CONTAINERS, NETWORKS and EVENTS.
Every failure becomes a :class:`DockerStatus` carrying a line a person can act
on, never an exception escaping to the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import docker
import docker.errors
import requests.exceptions

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


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
    host = environment.get("DOCKER_HOST") or DEFAULT_SOCKET
    try:
        client = docker.from_env(environment=dict(environment), timeout=timeout)
        version = client.version()
    except docker.errors.DockerException as error:
        return None, DockerStatus(False, host, error=explain(error, host))
    except (requests.exceptions.RequestException, OSError) as error:
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
