"""Interface discovery on recorded interface lists from each OS, with and without Docker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eyes_devine.adapters.host import HostInterface
from eyes_devine.app.discovery import UnknownInterfaceError, discover
from eyes_devine.app.profiles import load_profile

RECORDED = Path(__file__).resolve().parents[1] / "data" / "interfaces"


def recorded(name: str) -> list[HostInterface]:
    rows = json.loads((RECORDED / f"{name}.json").read_text())
    return [
        HostInterface(row["name"], row["up"], row["mtu"], tuple(row.get("addresses", ())), row.get("master"))
        for row in rows
    ]


def by_name(result):
    return {row.name: row for row in result.interfaces}


def test_linux_docker_host_selects_bridges_not_their_veths_or_eth0():
    result = discover(recorded("linux-docker"), load_profile("linux"),
                      docker_networks={"docker0": "bridge", "br-5a027110702c": "shop"})
    rows = by_name(result)
    assert result.mode == "docker"
    assert set(result.selected) == {"docker0", "br-5a027110702c"}
    assert rows["docker0"].kind == "docker_bridge"
    assert rows["br-5a027110702c"].kind == "docker_network"
    assert rows["br-5a027110702c"].docker_network == "shop"
    assert rows["veth444f83e"].kind == "container_veth" and not rows["veth444f83e"].selected
    assert "docker0" in rows["veth444f83e"].reason
    assert not rows["eth0"].selected and not rows["lo"].selected
    assert result.hint is None


def test_veth_on_an_unselected_bridge_is_captured_itself():
    hosts = [HostInterface("docker0", True, 1500), HostInterface("vethaaa", True, 1500, master="mybridge"),
             HostInterface("mybridge", True, 1500), HostInterface("vethbbb", True, 1500)]
    result = discover(hosts, load_profile("linux"))
    assert set(result.selected) == {"docker0", "vethaaa", "vethbbb"}


def test_bridge_named_by_docker_is_docker_even_without_br_prefix():
    hosts = [HostInterface("shopnet", True, 1500), HostInterface("eth0", True, 1500)]
    result = discover(hosts, load_profile("linux"), docker_networks={"shopnet": "shop_default"})
    assert result.selected == ("shopnet",)
    assert by_name(result)["shopnet"].kind == "docker_network"


def test_podman_and_kubernetes_cni_bridges_are_recognised():
    result = discover(recorded("linux-podman-k8s"), load_profile("linux"))
    rows = by_name(result)
    assert rows["cni-podman0"].kind == rows["podman1"].kind == "podman_bridge"
    assert rows["cni0"].kind == "cni_bridge"
    assert rows["flannel.1"].kind == "cni_overlay"
    assert rows["cali1a2b3c4d5e6"].kind == "cni_veth"
    assert set(result.selected) == {"cni-podman0", "podman1", "cni0", "cali1a2b3c4d5e6"}
    assert not rows["veth9f8e7d6c"].selected and not rows["ens3"].selected


def test_linux_host_without_docker_falls_back_to_a_common_default_and_says_how_to_choose():
    result = discover(recorded("linux-bare"), load_profile("linux"))
    assert result.mode == "fallback"
    assert result.selected == ("ens5",)
    assert "NETWORK_INTERFACES" in result.hint and "lo, ens5" in result.hint


def test_no_docker_and_no_common_default_selects_nothing_and_lists_every_interface():
    hosts = [HostInterface("lo", True, 65536), HostInterface("wg0", True, 1420)]
    result = discover(hosts, load_profile("linux"))
    assert result.mode == "none" and result.selected == ()
    assert "NETWORK_INTERFACES" in result.hint and "lo, wg0" in result.hint


def test_macos_docker_desktop_selects_bridge0_and_vmnet():
    result = discover(recorded("darwin-docker-desktop"), load_profile("darwin"))
    rows = by_name(result)
    assert set(result.selected) == {"bridge0", "vmnet1", "vmnet8"}
    assert rows["bridge0"].kind == "docker_bridge"
    assert rows["en0"].kind == "physical" and not rows["en0"].selected
    assert rows["lo0"].kind == "loopback"
    assert rows["utun0"].kind == "tunnel"


def test_macos_without_docker_falls_back_to_en0():
    result = discover(recorded("darwin-no-docker"), load_profile("darwin"))
    assert result.mode == "fallback" and result.selected == ("en0",)


def test_windows_docker_desktop_on_wsl_selects_the_wsl_switch():
    result = discover(recorded("windows-docker-desktop-wsl"), load_profile("windows"))
    rows = by_name(result)
    assert result.selected == ("vEthernet (WSL)",)
    assert rows["vEthernet (WSL)"].kind == "docker_vm_adapter"
    assert rows["vEthernet (Default Switch)"].kind == "vm_adapter"
    assert rows["Ethernet"].kind == "physical" and not rows["Ethernet"].selected
    assert rows["Loopback Pseudo-Interface 1"].kind == "loopback"


def test_windows_docker_desktop_on_hyperv_selects_dockernat():
    result = discover(recorded("windows-docker-desktop-hyperv"), load_profile("windows"))
    assert result.selected == ("DockerNAT",)


def test_windows_without_docker_falls_back_to_wifi():
    result = discover(recorded("windows-no-docker"), load_profile("windows"))
    assert result.mode == "fallback" and result.selected == ("Wi-Fi",)


def test_windows_names_match_case_insensitively_when_requested():
    result = discover(recorded("windows-docker-desktop-wsl"), load_profile("windows"),
                      requested=("ethernet",), requested_source="NETWORK_INTERFACES")
    assert result.selected == ("Ethernet",)


def test_requested_interfaces_override_discovery_in_the_order_given():
    result = discover(recorded("linux-docker"), load_profile("linux"), requested=("eth0", "docker0"),
                      requested_source="NETWORK_INTERFACES")
    assert result.mode == "requested"
    assert result.selected == ("eth0", "docker0")
    assert by_name(result)["eth0"].reason == "chosen by NETWORK_INTERFACES"
    assert not by_name(result)["br-5a027110702c"].selected


def test_unknown_requested_interface_names_it_and_lists_what_exists():
    with pytest.raises(UnknownInterfaceError) as error:
        discover(recorded("linux-docker"), load_profile("linux"), requested=("docker0", "nope0"),
                 requested_source="NETWORK_INTERFACES")
    message = str(error.value)
    assert "'nope0'" in message and "NETWORK_INTERFACES" in message
    assert "docker0" in message and "eth0" in message and "\n" not in message


def test_any_is_every_interface_on_linux_and_unknown_elsewhere():
    result = discover(recorded("linux-docker"), load_profile("linux"), requested=("any",))
    assert result.selected == ("any",)
    with pytest.raises(UnknownInterfaceError, match="unknown interface 'any'"):
        discover(recorded("darwin-docker-desktop"), load_profile("darwin"), requested=("any",))
