"""The container map: ownership of addresses and published ports over time."""

from __future__ import annotations

import pytest

from eyes_devine.enrich.attribution import ContainerMap
from eyes_devine.records import Attribution, ContainerInfo, Exchange, PublishedPort

WEB = ContainerInfo(id="a" * 64, name="web", image="nginx", addresses=("172.17.0.2", "fd00::2"),
                    gateways=("172.17.0.1",), published=(PublishedPort("0.0.0.0", 8080, 80),
                                                         PublishedPort("::", 8080, 80)), ports=(80,))
CLIENT = ContainerInfo(id="b" * 64, name="client", image="busybox", addresses=("172.18.0.5",))
REUSER = ContainerInfo(id="c" * 64, name="reuser", image="busybox", addresses=("172.17.0.2",))


def exchange(ts: float, client: str = "10.0.0.9", server: str = "172.17.0.2", port: int = 80) -> Exchange:
    return Exchange(ts=ts, interface="docker0", client_ip=client, client_port=40000, server_ip=server,
                    server_port=port, method="GET", target="/", host=None, http_version="1.1", status=200,
                    reason="OK", latency_ms=1.0, duration_ms=1.0, request_bytes=0, response_bytes=0, user_agent=None,
                    content_type=None)


def test_both_ends_are_attributed_by_address() -> None:
    containers = ContainerMap()
    containers.replace_all([WEB, CLIENT], 100.0)
    x = containers.attribute(exchange(150.0, client="172.18.0.5"))
    assert x.attribution == Attribution(container="web", client_container="client", container_id="a" * 12,
                                        client_container_id="b" * 12)
    assert containers.attribute(exchange(150.0, server="fd00::2")).attribution.container == "web"


def test_unknown_ends_stay_null_and_the_record_is_untouched() -> None:
    containers = ContainerMap()
    containers.replace_all([WEB], 100.0)
    original = exchange(150.0, server="192.0.2.1")
    assert containers.attribute(original) is original


def test_an_address_passed_to_a_new_container_is_never_attributed_to_the_old_one() -> None:
    containers = ContainerMap()
    containers.replace_all([WEB], 100.0)
    containers.remove(WEB.id, 200.0)
    containers.upsert(REUSER, 300.0)
    assert containers.attribute(exchange(150.0)).attribution.container == "web"  # completed late, still the old owner
    assert containers.attribute(exchange(250.0)).attribution.container == "reuser"  # racing the start event
    assert containers.attribute(exchange(350.0)).attribution.container == "reuser"


def test_a_missed_death_hands_the_address_over_at_the_next_listing() -> None:
    containers = ContainerMap()
    containers.replace_all([WEB], 100.0)
    containers.replace_all([REUSER], 400.0)  # daemon was away meanwhile
    assert containers.attribute(exchange(399.0)).attribution.container == "web"
    assert containers.attribute(exchange(400.0)).attribution.container == "reuser"
    assert len(containers) == 1


def test_a_rename_applies_from_its_time_on() -> None:
    containers = ContainerMap()
    containers.replace_all([WEB], 100.0)
    containers.upsert(ContainerInfo(**{**_fields(WEB), "name": "web-renamed"}), 200.0)
    assert containers.attribute(exchange(150.0)).attribution.container == "web"
    assert containers.attribute(exchange(250.0)).attribution.container == "web-renamed"


def test_a_removed_container_is_forgotten_after_the_history_window() -> None:
    containers = ContainerMap(history_seconds=60)
    containers.replace_all([WEB], 100.0)
    containers.remove(WEB.id, 200.0)
    containers.upsert(CLIENT, 1000.0)  # any later change prunes
    assert containers.lookup("172.17.0.2", 150.0) is None


@pytest.mark.parametrize("server_ip", ["127.0.0.1", "::1", "172.17.0.1", "192.168.1.20"])
def test_a_published_port_on_a_host_address_leads_to_its_container(server_ip: str) -> None:
    containers = ContainerMap(host_addresses=["192.168.1.20"])
    containers.replace_all([WEB], 100.0)
    x = containers.attribute(exchange(150.0, client=server_ip, server=server_ip, port=8080))
    assert x.attribution.container == "web" and x.attribution.client_container is None


def test_a_published_port_on_another_machine_is_not_ours() -> None:
    containers = ContainerMap(host_addresses=["192.168.1.20"])
    containers.replace_all([WEB], 100.0)
    assert containers.attribute(exchange(150.0, server="192.168.1.99", port=8080)).attribution.container is None


def test_a_port_published_on_one_host_address_matches_only_that_address() -> None:
    local = ContainerInfo(id="d" * 64, name="local", image="x", published=(PublishedPort("127.0.0.1", 9000, 80),))
    containers = ContainerMap(host_addresses=["192.168.1.20"])
    containers.replace_all([local], 100.0)
    assert containers.attribute(exchange(150.0, server="127.0.0.1", port=9000)).attribution.container == "local"
    assert containers.attribute(exchange(150.0, server="192.168.1.20", port=9000)).attribution.container is None


def test_followed_ports_are_exposed_and_published_ports_of_running_containers() -> None:
    containers = ContainerMap()
    containers.replace_all([WEB, CLIENT], 100.0)
    assert containers.follow_ports() == {80, 8080}
    containers.remove(WEB.id, 200.0)
    assert containers.follow_ports() == frozenset()


def _fields(info: ContainerInfo) -> dict[str, object]:
    return {name: getattr(info, name) for name in info.__dataclass_fields__}
