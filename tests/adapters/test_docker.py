"""The Docker adapter's pure parts: where the engine is, and what `docker inspect` tells attribution."""

from __future__ import annotations

from eyes_devine.adapters.docker import WINDOWS_PIPE, container_info, docker_host
from eyes_devine.records import PublishedPort

INSPECT = {
    "Id": "f" * 64,
    "Name": "/shop-web-1",
    "Config": {
        "Image": "nginx:1.25",
        "Labels": {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"},
        "Env": ["DATABASE_PASSWORD=hunter2"],
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
    },
    "NetworkSettings": {
        "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
                  "9000/tcp": None},
        "Networks": {
            "bridge": {"IPAddress": "172.17.0.2", "Gateway": "172.17.0.1", "GlobalIPv6Address": "",
                       "IPv6Gateway": ""},
            "shop_default": {"IPAddress": "172.20.0.3", "Gateway": "172.20.0.1",
                             "GlobalIPv6Address": "fd00:20::3", "IPv6Gateway": "fd00:20::1"},
        },
    },
}


def test_inspect_output_becomes_what_attribution_needs_and_nothing_of_the_environment() -> None:
    info = container_info(INSPECT)
    assert (info.name, info.image, info.compose_project, info.compose_service) == ("shop-web-1", "nginx:1.25",
                                                                                   "shop", "web")
    assert info.addresses == ("172.17.0.2", "172.20.0.3", "fd00:20::3")
    assert info.gateways == ("172.17.0.1", "172.20.0.1", "fd00:20::1")
    assert info.published == (PublishedPort("0.0.0.0", 8080, 80), PublishedPort("::", 8080, 80))
    assert info.ports == (80, 9000) and info.short_id == "f" * 12
    assert "hunter2" not in repr(info)


def test_docker_host_comes_from_the_environment_else_the_platform_default() -> None:
    assert docker_host({"DOCKER_HOST": "tcp://10.0.0.5:2376"}) == "tcp://10.0.0.5:2376"
    assert docker_host({}, platform="linux") == "unix:///var/run/docker.sock"
    assert docker_host({}, platform="win32") == WINDOWS_PIPE
