"""Running eyes-devine as a host would: capabilities on the interpreter, dropping root, shipped configs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration.conftest import SERVED_PORT as PORT
from tests.support.install import run_as
from tests.support.requirements import missing, require_binary, require_root

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534


@pytest.fixture
def shared_dir(tmp_path_factory) -> Path:
    """A directory anyone may write in (the test's own tmp_path is root's alone)."""
    path = Path(tmp_path_factory.mktemp("shared"))
    path.chmod(0o777)
    for parent in path.parents:
        if str(parent).startswith("/tmp/"):
            parent.chmod(parent.stat().st_mode | 0o711)
    return path


def capture_one_request(argv: list[str], served, as_user: str | None, env: dict[str, str]):
    """Start `run --json` (maybe as another user), send one request, stop it.

    Returns (exit code, stdout, stderr, the /proc status of each of its threads while it ran).
    """
    bridge, server, client = served
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all"] \
        if as_user else []
    process = subprocess.Popen([*prefix, *argv, "-i", bridge, "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True)
    reader.start()
    threads: list[dict[str, str]] = []
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and not any("capturing" in line for line in errors):
            assert time.monotonic() < deadline, "run did not start capturing: " + "".join(errors)
            time.sleep(0.1)
        if process.poll() is None:
            time.sleep(1.0)  # the Docker watcher's first attempt
            client.run("curl", "-s", "-o", "/dev/null", f"http://{server.address}:{PORT}/deployed")
            time.sleep(1.0)
            threads = _thread_status(process.pid)
            process.send_signal(signal.SIGTERM)
        out = process.stdout.read()
        process.wait(30)
        reader.join(10)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, out, "".join(errors), threads


def _thread_status(pid: int) -> list[dict[str, str]]:
    """Uid, Gid, Groups, CapEff and NoNewPrivs of every thread of ``pid``."""
    threads = []
    for task in os.listdir(f"/proc/{pid}/task"):
        fields = {}
        with open(f"/proc/{pid}/task/{task}/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        threads.append(fields)
    return threads


def exchanges(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_setcap_grants_the_interpreter_so_a_plain_user_can_capture(shared, served, shared_dir):
    require_binary("setcap", "libcap2-bin")
    script = str(REPO / "scripts" / "setcap.sh")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(shared_dir)}
    argv = [str(shared.command), "run", "--db", str(shared_dir / "before" / "x.db")]
    code, _, err, _ = capture_one_request(argv, served, "nobody", env)
    assert code == 1 and "permission denied capturing on" in err.strip().splitlines()[-1]

    check = run_as("nobody", script, "--check", str(shared.command))
    assert check.returncode == 0 and f"interpreter: {shared.python}" in check.stdout and "none" in check.stdout
    refused = run_as("nobody", script, str(shared.command))
    assert refused.returncode == 1 and "needs root" in refused.stderr

    granted = subprocess.run([script, str(shared.command)], capture_output=True, text=True, check=True)
    assert f"granted cap_net_raw,cap_net_admin to {shared.python}" in granted.stdout
    assert "EVERY script this interpreter runs" in granted.stdout and "--remove" in granted.stdout
    getcap = subprocess.run(["getcap", str(shared.python)], capture_output=True, text=True).stdout
    assert "cap_net_admin,cap_net_raw=eip" in getcap
    assert not subprocess.run(["getcap", "/usr/bin/python3"], capture_output=True, text=True).stdout.strip(), \
        "the capability is on the venv's own copy, not the system interpreter"

    argv = [str(shared.command), "run", "--db", str(shared_dir / "after" / "x.db")]
    code, out, err, _ = capture_one_request(argv, served, "nobody", env)
    assert code == 0, err
    assert [x["target"] for x in exchanges(out)] == ["/deployed"]

    removed = subprocess.run([script, "--remove", str(shared.command)], capture_output=True, text=True, check=True)
    assert "removed" in removed.stdout
    assert not subprocess.run(["getcap", str(shared.python)], capture_output=True, text=True).stdout.strip()
    argv = [str(shared.command), "run", "--db", str(shared_dir / "removed" / "x.db")]
    code, _, err, _ = capture_one_request(argv, served, "nobody", env)
    assert code == 1 and "permission denied" in err


def test_user_drops_root_after_opening_the_capture_and_capture_goes_on(shared, served, tmp_path, docker_engine):
    db = tmp_path / "data" / "x.db"
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "DOCKER_HOST": docker_engine.host}
    argv = [str(shared.command), "run", "--user", "nobody", "--db", str(db), "--log-format", "json"]
    code, out, err, threads = capture_one_request(argv, served, None, env)
    assert code == 0, err
    assert [x["target"] for x in exchanges(out)] == ["/deployed"]
    assert len(threads) >= 3, "the sniffer, engine and Docker threads are all checked"
    for status in threads:
        assert status["Uid"].split() == [str(NOBODY)] * 4, status["Name"]
        assert status["Gid"].split()[1] == str(NOBODY) and status["CapEff"] == "0" * 16, status["Name"]
        assert status["NoNewPrivs"] == "1" and status["Groups"] in ("", str(NOBODY)), status["Name"]
    log = [json.loads(line) for line in err.splitlines()]
    assert any(line["msg"] == "privileges dropped" and line["user"] == "nobody" for line in log)
    docker = [line["msg"] for line in log if line["msg"].startswith("Docker:")]
    assert len(docker) == 1 and "permission denied" in docker[0], "nobody may not use the Docker socket"
    assert db.stat().st_uid == 0 and db.parent.stat().st_uid == 0, "nothing is handed over: it writes through " \
        "the descriptors it opened as root"
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT target FROM exchanges").fetchall() == [("/deployed",)]


def test_user_that_does_not_exist_is_one_line_and_exit_2():
    require_root()
    result = subprocess.run([sys.executable, "-m", "eyes_devine", "run", "--user", "edt-no-such-user", "-i", "lo"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.strip() == "eyes-devine: --user edt-no-such-user: no such user"


def test_compose_example_validates():
    compose = shutil.which("docker-compose")
    if compose is None:
        missing("docker-compose (Debian package docker-compose)")
    folder = REPO / "examples" / "compose"
    for file in ("docker-compose.yml", "docker-compose.socket-proxy.yml"):
        result = subprocess.run([compose, "-f", str(folder / file), "config"], capture_output=True, text=True,
                                cwd=folder, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "eyes-devine run" in result.stdout or "- run" in result.stdout


def test_systemd_unit_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing("systemd-analyze (Debian package systemd)")
    shipped = (REPO / "examples" / "systemd" / "eyes-devine.service").read_text()
    assert "ExecStart=/usr/local/bin/eyes-devine run" in shipped
    assert "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN" in shipped and "StateDirectory=eyes-devine" in shipped
    unit = tmp_path / "eyes-devine.service"  # the same unit, started from this machine's install
    unit.write_text(shipped.replace("/usr/local/bin/eyes-devine run", f"{sys.executable} -m eyes_devine run"))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "eyes-devine.service" not in result.stderr, result.stderr
