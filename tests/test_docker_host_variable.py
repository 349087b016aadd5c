"""DOCKER_HOST as a user sets it: a value that cannot be an address is bad input for every command that asks Docker.

No Docker Engine is needed: a malformed value is refused before anything is
opened.  Each command is given a way to fail differently if the check were
missing (`run` an interface that does not exist, `watch --attach` a database
that does not exist), so these tests cannot pass by accident or start a capture.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]
MALFORMED = ["tcp://127.0.0.1:x", "foo://", "tcp://[::1", "tcp://127.0.0.1:99999", "tcp://"]


def eyes_devine(docker_host: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EYES_DEVINE, *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": docker_host})


@pytest.mark.parametrize("docker_host", MALFORMED)
@pytest.mark.parametrize("command", [
    ["interfaces"],
    ["interfaces", "--json"],
    ["run", "-i", "no-such-if0", "--db", "{tmp}/x.db"],
    ["watch", "--attach", "--db", "{tmp}/x.db"],
])
def test_a_malformed_docker_host_is_one_line_naming_the_variable_and_exit_2(
        tmp_path: Path, docker_host: str, command: list[str]) -> None:
    result = eyes_devine(docker_host, *(part.format(tmp=tmp_path) for part in command))
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.startswith(f"eyes-devine: DOCKER_HOST={docker_host!r} is not a Docker Engine address (")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_an_empty_docker_host_means_the_default_socket_as_for_the_docker_cli() -> None:
    result = eyes_devine("", "interfaces", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["diagnostics"]["docker"]["host"] == "unix:///var/run/docker.sock"


def test_commands_that_do_not_ask_docker_ignore_it(tmp_path: Path) -> None:
    result = eyes_devine("tcp://127.0.0.1:x", "requests", "--db", str(tmp_path / "absent.db"))
    assert result.returncode == 1 and "no database at" in result.stderr
