"""`run` and its database as deployed: one writer per database, and a `--user` drop that gives nothing away.

Real `run` processes capturing on a bridge between network namespaces, with
Docker out of reach (attribution is not what is tested here).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import SERVED_PORT as PORT
from tests.support.install import log_until_capturing, open_to_nobody, run_as
from tests.support.service import EYES_DEVINE, Service, stored, wait_until

pytestmark = pytest.mark.netns

NO_DOCKER = {"PATH": "/usr/bin:/bin", "HOME": "/root", "DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def fetch(served, path: str) -> None:
    _, server, client = served
    client.run("curl", "-s", "-o", "/dev/null", f"http://{server.address}:{PORT}{path}")


def targets(db: Path) -> list[str]:
    return [row[0] for row in stored(db, "SELECT target FROM exchanges ORDER BY id")]


def test_a_second_run_on_the_same_database_exits_1_naming_the_first_which_keeps_storing(served, tmp_path):
    bridge = served[0]
    db = tmp_path / "data" / "exchanges.db"
    first = Service(db, NO_DOCKER, "-i", bridge)
    try:
        first.wait_for("capturing")
        fetch(served, "/before")
        wait_until(lambda: targets(db) == ["/before"], what="the first run's exchange stored")
        second = subprocess.run([*EYES_DEVINE, "run", "-i", bridge, "--db", str(db)], capture_output=True,
                                text=True, env=NO_DOCKER, timeout=60)
        lines = second.stderr.splitlines()
        assert second.returncode == 1 and len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
        assert lines[0].endswith(f"ERROR: {db} is being written by another eyes-devine (pid {first.process.pid}); "
                                 "stop it or use another --db")
        fetch(served, "/after")
        wait_until(lambda: targets(db) == ["/before", "/after"], what="the first run still storing")
        reader = subprocess.run([*EYES_DEVINE, "requests", "--db", str(db), "--json"], capture_output=True,
                                text=True, env=NO_DOCKER, timeout=60)
        assert reader.returncode == 0 and [json.loads(line)["target"] for line in reader.stdout.splitlines()] == \
            ["/before", "/after"], "readers are unaffected by the lock"
    finally:
        code = first.stop()
    assert code == 0 and first.messages("stopped")[0]["stored"] == 2
    assert stored(db, "PRAGMA integrity_check") == [("ok",)]


def test_after_user_nobody_the_database_stays_roots_and_is_written_through_open_descriptors(served, shared,
                                                                                              tmp_path_factory):
    bridge = served[0]
    folder = Path(tmp_path_factory.mktemp("dropped"))
    open_to_nobody(folder)
    data = folder / "data"
    db = data / "exchanges.db"
    run = subprocess.Popen([str(shared.command), "run", "--user", "nobody", "-i", bridge, "--db", str(db),
                            "--log-format", "json"], stderr=subprocess.PIPE, text=True, env=NO_DOCKER)
    try:
        log = log_until_capturing(run)
        assert any(line["msg"] == "privileges dropped" and line["user"] == "nobody" for line in log)
        fetch(served, "/dropped")
        wait_until(lambda: targets(db) == ["/dropped"], what="the exchange stored after the drop")
        status = Path(f"/proc/{run.pid}/status").read_text()
        assert "Uid:\t65534\t65534\t65534\t65534" in status
        planted = run_as("nobody", "ln", "-s", "/etc/shadow", str(data / "planted"))
        assert planted.returncode != 0 and "Permission denied" in planted.stderr
    finally:
        run.send_signal(signal.SIGTERM)
        code = run.wait(30)
    assert code == 0
    for path in (data, *data.iterdir()):
        assert path.stat().st_uid == 0 and path.stat().st_gid == 0, path
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert {path.name for path in data.iterdir()} <= {"exchanges.db", "exchanges.db-wal", "exchanges.db-shm",
                                                       "exchanges.db.lock"}
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    again = Service(db, NO_DOCKER, "-i", bridge)  # the next start as root takes the same database as it is
    try:
        reloaded = again.wait_for("store opened")["reloaded"]
        again.wait_for("capturing")
    finally:
        code = again.stop()
    assert code == 0 and reloaded == 1
