"""`eyes-devine interfaces` on the live host, against a real Docker Engine and real links."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.requirements import require_binary, require_root

pytestmark = pytest.mark.docker


def eyes(*args: str, env: dict[str, str], check: bool = False, prefix: tuple[str, ...] = ()):
    return subprocess.run([*prefix, sys.executable, "-m", "eyes_devine", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=check)


def interfaces_json(env: dict[str, str], *args: str) -> dict:
    result = eyes("interfaces", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def two_networks(docker_engine, busybox_image):
    """A container on docker0 and one on a user-defined network, as in the issue."""
    client = docker_engine.client
    network = client.networks.create("edt-shop")
    on_default = client.containers.run(busybox_image, detach=True, name="edt-web-default")
    on_network = client.containers.run(busybox_image, detach=True, name="edt-web-shop", network="edt-shop")
    yield network, on_default, on_network
    for container in (on_default, on_network):
        container.remove(force=True)
    network.remove()


def test_docker_bridges_and_veths_are_listed_and_bridges_selected_not_eth0(docker_engine, two_networks):
    network, _, _ = two_networks
    report = interfaces_json(docker_engine.env)
    rows = {row["name"]: row for row in report["interfaces"]}
    bridge = "br-" + network.id[:12]
    assert rows["docker0"]["kind"] == "docker_bridge" and rows["docker0"]["selected"]
    assert rows[bridge]["kind"] == "docker_network" and rows[bridge]["selected"]
    assert rows[bridge]["docker_network"] == "edt-shop"
    assert rows["docker0"]["docker_network"] == "bridge"
    veths = [row for row in rows.values() if row["kind"] == "container_veth"]
    masters = {row["master"] for row in veths}
    assert {"docker0", bridge} <= masters
    assert not any(row["selected"] for row in veths if row["master"] in ("docker0", bridge))
    by_container = {row["container"]: row for row in veths if row["container"]}
    assert by_container["edt-web-default"]["master"] == "docker0"
    assert by_container["edt-web-shop"]["master"] == bridge
    for name in ("eth0", "lo"):
        if name in rows:
            assert not rows[name]["selected"]
    diagnostics = report["diagnostics"]
    assert diagnostics["docker"]["reachable"] and diagnostics["docker"]["version"]
    assert diagnostics["capture"]["filter"].startswith("tcp and (port 80")
    assert diagnostics["capture"]["filter_ok"] and diagnostics["capture"]["libpcap"]


def test_network_interfaces_narrows_the_selection(docker_engine, two_networks):
    report = interfaces_json({**docker_engine.env, "NETWORK_INTERFACES": "docker0"})
    assert [row["name"] for row in report["interfaces"] if row["selected"]] == ["docker0"]
    assert report["diagnostics"]["selection"]["mode"] == "requested"


def test_repeated_interface_flag_selects_each(docker_engine, two_networks):
    network, _, _ = two_networks
    bridge = "br-" + network.id[:12]
    report = interfaces_json(docker_engine.env, "-i", "docker0", "-i", bridge)
    assert report["diagnostics"]["selection"]["selected"] == ["docker0", bridge]


def test_unknown_interface_exits_non_zero_with_one_line(docker_engine):
    result = eyes("interfaces", env={**docker_engine.env, "NETWORK_INTERFACES": "docker0,nosuch0"})
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nosuch0" in lines[0] and "docker0" in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_ports_flag_exits_non_zero_with_one_line(docker_engine):
    result = eyes("interfaces", "--ports", "80,http", env=docker_engine.env)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "'http'" in result.stderr


def test_bad_capture_filter_is_reported_not_raised(docker_engine):
    report = interfaces_json({**docker_engine.env, "CAPTURE_FILTER": "tcp and port 99999"})
    capture = report["diagnostics"]["capture"]
    assert not capture["filter_ok"] and not capture["ready"]
    assert "99999" in capture["detail"]


def test_without_docker_interfaces_exits_zero_and_says_what_to_set(tmp_path):
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/absent.sock"}
    report = interfaces_json(env)
    docker = report["diagnostics"]["docker"]
    assert docker["reachable"] is False
    assert "DOCKER_HOST" in docker["error"] and "absent.sock" in docker["error"]
    table = eyes("interfaces", env={**env, "COLUMNS": "200"})
    assert table.returncode == 0 and "no Docker Engine at" in table.stdout


def test_without_capture_privileges_exits_zero_and_names_the_fix(docker_engine):
    require_root()
    setpriv = require_binary("setpriv", "util-linux")
    prefix = (setpriv, "--bounding-set=-net_raw", "--inh-caps=-net_raw")
    result = eyes("interfaces", "--json", env=docker_engine.env, prefix=prefix)
    assert result.returncode == 0, result.stderr
    privileges = json.loads(result.stdout)["diagnostics"]["privileges"]
    assert privileges["can_capture"] is False and "NET_RAW" in privileges["fix"]
    table = eyes("interfaces", env={**docker_engine.env, "COLUMNS": "200"}, prefix=prefix)
    assert table.returncode == 0 and "not ready" in table.stdout and "NET_RAW" in table.stdout


def test_custom_docker_bridge_name_is_recognised_through_the_api(docker_engine, busybox_image):
    network = docker_engine.client.networks.create(
        "edt-custom", options={"com.docker.network.bridge.name": "edtcustom0"})
    try:
        container = docker_engine.client.containers.run(
            busybox_image, detach=True, network="edt-custom", name="edt-custom-web")
        try:
            rows = {row["name"]: row for row in interfaces_json(docker_engine.env)["interfaces"]}
            assert rows["edtcustom0"]["kind"] == "docker_network"
            assert rows["edtcustom0"]["docker_network"] == "edt-custom" and rows["edtcustom0"]["selected"]
        finally:
            container.remove(force=True)
    finally:
        network.remove()


def test_veth_on_a_non_docker_bridge_is_selected_with_its_master_read_from_sys(docker_engine, lab):
    bridge = lab.bridge()
    lab.host("a", 2, bridge=bridge, link_prefix="veth")
    link = lab.namespaces[0].link
    rows = {row["name"]: row for row in interfaces_json(docker_engine.env)["interfaces"]}
    assert rows[link]["kind"] == "container_veth" and rows[link]["master"] == bridge
    assert rows[link]["selected"] and "not on a captured bridge" in rows[link]["reason"]
    assert rows[bridge]["kind"] == "other" and not rows[bridge]["selected"]


def test_version_and_module_entry_point(docker_engine):
    result = eyes("--version", env=docker_engine.env, check=True)
    assert result.stdout.startswith("eyes-devine, version ")
