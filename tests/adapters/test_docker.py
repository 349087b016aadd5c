"""The Docker adapter's parts that need no Engine: where the engine is, whether DOCKER_HOST can be an address,
and what `docker inspect` tells attribution."""

from __future__ import annotations

import pytest

from eyes_devine.adapters.docker import (
    WINDOWS_PIPE,
    DockerHostError,
    check_docker_host,
    connect,
    container_info,
    docker_host,
)
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


@pytest.mark.parametrize(("host", "why"), [
    ("tcp://127.0.0.1:x", "Port could not be cast to integer"),
    ("tcp://127.0.0.1:99999", "Port out of range"),
    ("tcp://[::1", "Invalid IPv6 URL"),
    ("foo://", "Invalid bind address protocol"),
    ("tcp://", "Invalid bind address format"),
    ("tcp://docker.example", "port is required"),
    ("fd://", "fd protocol is not implemented"),
])
def test_a_docker_host_that_cannot_be_an_address_is_refused_saying_why(host: str, why: str) -> None:
    with pytest.raises(DockerHostError) as caught:
        check_docker_host({"DOCKER_HOST": host}, platform="linux")
    assert str(caught.value).startswith(f"DOCKER_HOST={host!r} is not a Docker Engine address (")
    assert why in str(caught.value)


@pytest.mark.parametrize("host", ["", "unix:///var/run/docker.sock", "unix://", "tcp://10.0.0.5:2376",
                                  "tcp://[fd00::5]:2375", "tcp://:2375", "ssh://me@docker.example",
                                  "npipe:////./pipe/docker_engine"])
def test_addresses_the_docker_cli_accepts_pass_and_empty_means_unset(host: str) -> None:
    check_docker_host({"DOCKER_HOST": host}, platform="linux")


def test_a_password_in_a_refused_docker_host_is_not_repeated() -> None:
    with pytest.raises(DockerHostError) as caught:
        check_docker_host({"DOCKER_HOST": "tcp://admin:s3cret@docker.example:2376"}, platform="linux")
    assert "s3cret" not in str(caught.value) and "tcp://admin:***@docker.example:2376" in str(caught.value)


def test_connect_turns_a_malformed_docker_host_into_a_status_not_an_exception() -> None:
    client, status = connect({"DOCKER_HOST": "tcp://127.0.0.1:x"})
    assert client is None and not status.reachable
    assert status.error is not None and "check DOCKER_HOST" in status.error
