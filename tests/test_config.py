"""Settings: flags over environment over defaults, and bad values named."""

from __future__ import annotations

import pytest

from eyes_devine.config import DEFAULT_PORTS, ConfigError, Settings, bpf_filter, default_db_path, port_filter


def test_defaults_when_nothing_is_set():
    settings = Settings.build({})
    assert settings.interfaces is None and settings.ports == DEFAULT_PORTS
    assert bpf_filter(settings) == "tcp and (port 80 or port 8080 or port 8000 or port 3000 or port 5000)"


def test_flags_win_over_the_environment():
    env = {"NETWORK_INTERFACES": "docker0", "EYES_DEVINE_PORTS": "81"}
    settings = Settings.build(env, interfaces=("br-1",), ports="9000")
    assert settings.interfaces == ("br-1",) and settings.interfaces_source == "-i"
    assert settings.ports == (9000,)


def test_environment_names_interfaces_and_ports():
    settings = Settings.build({"NETWORK_INTERFACES": " docker0, br-x ,docker0", "EYES_DEVINE_PORTS": "80, 9000"})
    assert settings.interfaces == ("docker0", "br-x")
    assert settings.interfaces_source == "NETWORK_INTERFACES"
    assert settings.ports == (80, 9000)


def test_capture_filter_replaces_the_port_filter():
    settings = Settings.build({"CAPTURE_FILTER": "tcp port 9999"})
    assert bpf_filter(settings) == "tcp port 9999"
    assert port_filter((80,)) == "tcp and (port 80)"


@pytest.mark.parametrize("value", ["http", "0", "70000", ",", "80;81"])
def test_bad_ports_are_rejected_with_the_offending_value(value):
    with pytest.raises(ConfigError, match="--ports"):
        Settings.build({}, ports=value)


def test_only_docker_variables_reach_the_docker_client():
    settings = Settings.build({"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1", "HOME": "/root"})
    assert dict(settings.docker_environment) == {"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1"}


def test_default_location_is_var_lib_for_root_and_the_xdg_data_dir_otherwise():
    assert default_db_path({"HOME": "/root"}, is_root=True) == "/var/lib/eyes-devine/exchanges.db"
    xdg = {"HOME": "/home/ann", "XDG_DATA_HOME": "/data"}
    assert default_db_path(xdg, is_root=False) == "/data/eyes-devine/exchanges.db"
    assert default_db_path({"HOME": "/home/ann"}, is_root=False) == "/home/ann/.local/share/eyes-devine/exchanges.db"
    relative_xdg_is_ignored = {"HOME": "/home/ann", "XDG_DATA_HOME": "data"}
    assert default_db_path(relative_xdg_is_ignored, is_root=False) == (
        "/home/ann/.local/share/eyes-devine/exchanges.db")


@pytest.mark.parametrize(("flag", "variable", "seconds"), [
    (None, None, None), ("7d", None, 7 * 86400), (None, "12h", 12 * 3600), ("90m", "7d", 5400), ("1.5h", None, 5400),
])
def test_retain_comes_from_the_flag_then_the_variable_and_is_off_by_default(flag, variable, seconds):
    environ = {"EYES_DEVINE_RETAIN": variable} if variable else {}
    assert Settings.build(environ, retain=flag).retain == seconds


@pytest.mark.parametrize(("flag", "variable", "message"), [
    ("7x", None, "--retain: '7x' is not a duration like 90s, 10m, 2h, 7d"),
    ("30s", None, "--retain: '30s' is outside 60 s to 3650 days"),
    (None, "20y", "EYES_DEVINE_RETAIN: '20y' is not a duration like 90s, 10m, 2h, 7d"),
    (None, "9999d", "EYES_DEVINE_RETAIN: '9999d' is outside 60 s to 3650 days"),
])
def test_a_bad_retain_is_one_line_naming_where_it_came_from(flag, variable, message):
    environ = {"EYES_DEVINE_RETAIN": variable} if variable else {}
    with pytest.raises(ConfigError) as error:
        Settings.build(environ, retain=flag)
    assert str(error.value) == message


def test_network_interface_is_threatwatchs_name_for_network_interfaces():
    assert Settings.build({"NETWORK_INTERFACE": "any"}).interfaces == ("any",)
    assert Settings.build({"NETWORK_INTERFACE": "any", "NETWORK_INTERFACES": "eth0"}).interfaces == ("eth0",)
