"""`eyes-devine run` and `eyes-devine requests` as a user runs them: real capture, real Docker, real SQLite."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support.load import get, hammer
from tests.support.service import EYES_DEVINE, count_for, requests_json, stored, wait_until

pytestmark = pytest.mark.docker

def test_the_newest_1000_per_container_are_kept_across_a_restart(service, web, tmp_path):
    run = service("-i", "docker0")
    run.wait_for("Docker: connected")
    for index in range(600):
        get(web.address, 80, f"/ring/{index}")
    wait_until(lambda: count_for(run.db, web.id) == 600, what="600 stored")
    assert run.stop() == 0
    again = service("-i", "docker0")
    assert again.wait_for("store opened")["reloaded"] == 600
    again.wait_for("Docker: connected")
    for index in range(600, 1100):
        get(web.address, 80, f"/ring/{index}")
    wait_until(lambda: stored(again.db, "SELECT max(target) FROM exchanges WHERE target = '/ring/1099'")[0][0],
               what="the last request stored")
    assert again.stop() == 0
    targets = [row[0] for row in stored(again.db, "SELECT target FROM exchanges WHERE container_id = ? ORDER BY id",
                                        web.id[:12])]
    assert targets == [f"/ring/{index}" for index in range(100, 1100)]
    listed = requests_json(again.db, "--container", web.name, "--limit", "5000")
    assert [x["target"] for x in listed] == targets
    assert {x["container"] for x in listed} == {web.name} and {x["container_id"] for x in listed} == {web.id[:12]}


def test_sigterm_writes_everything_and_exits_0(service, web):
    run = service("-i", "docker0", "--json")
    run.wait_for("Docker: connected")
    assert hammer(web.address, 80, [f"/term/{index}" for index in range(300)], threads=4) == 300
    wait_until(lambda: len(run.stdout) >= 300, what="300 exchanges seen")
    assert run.stop(signal.SIGTERM) == 0  # at once: some are still queued for the writer
    assert stored(run.db, "SELECT count(*) FROM exchanges WHERE target LIKE '/term/%'")[0][0] == 300
    final = run.messages("stopped")[0]
    assert final["stored"] == 300 and final["store_drops"] == 0
    assert stored(run.db, "PRAGMA integrity_check") == [("ok",)]


def test_run_json_into_a_pipe_nobody_reads_stores_everything_and_counts_what_stdout_dropped(service, web):
    run = service("-i", "docker0", "--json", "--keep", "5000", read_stdout=False)
    run.wait_for("Docker: connected")
    assert hammer(web.address, 80, [f"/unread/{index}" for index in range(2000)], threads=4) == 2000
    wait_until(lambda: stored(run.db, "SELECT count(*) FROM exchanges WHERE target LIKE '/unread/%'")[0][0] == 2000,
               timeout=30, what="2000 stored")
    assert run.stop(signal.SIGTERM) == 3, "exchanges asked for on stdout were lost"
    final = run.messages("stopped")[0]
    assert final["stored"] == 2000 and final["store_drops"] == 0
    assert final["queue_drops"] == 0 and final["kernel_drops"] == 0, "capture never waited for stdout"
    assert final["stdout_drops"] > 0, "a pipe nobody reads holds about 64 KiB, not 2000 exchanges"
    assert final["stdout_written"] + final["stdout_drops"] == 2000


def test_requests_reads_while_run_writes_under_load(service, web):
    run = service("-i", "docker0", "--batch-size", "50")
    run.wait_for("Docker: connected")
    stop = threading.Event()
    loader = threading.Thread(target=hammer, args=(web.address, 80, [f"/load/{i}" for i in range(100_000)], 4,
                                                  stop.is_set))
    loader.start()
    try:
        seen = []
        for _ in range(15):
            result = subprocess.run([*EYES_DEVINE, "requests", "--db", str(run.db), "--json", "--limit", "50",
                                     "--path-contains", "/load/"], capture_output=True, text=True, timeout=60)
            assert result.returncode == 0 and result.stderr == "", result.stderr
            seen.append(len(result.stdout.splitlines()))
            table = subprocess.run([*EYES_DEVINE, "requests", "--db", str(run.db), "-c", web.name, "-n", "20"],
                                   capture_output=True, text=True, timeout=60)
            assert table.returncode == 0 and "locked" not in table.stderr, table.stderr
    finally:
        stop.set()
        loader.join()
    assert seen[-1] == 50 and len(run.messages("batch stored")) > 5
    assert run.stop() == 0


def test_kill_9_under_load_loses_at_most_the_last_batch_window(service, web):
    run = service("-i", "docker0", "--batch-size", "100")
    run.wait_for("Docker: connected")
    stop = threading.Event()
    loader = threading.Thread(target=hammer, args=(web.address, 80, [f"/kill/{i}" for i in range(100_000)], 4,
                                                  stop.is_set))
    loader.start()
    try:
        wait_until(lambda: sum(line["rows"] for line in run.messages("batch stored")) > 1500, 60, "load stored")
        acknowledged = sum(line["rows"] for line in run.messages("batch stored"))
        run.process.send_signal(signal.SIGKILL)
        run.process.wait(10)
    finally:
        stop.set()
        loader.join()
    assert stored(run.db, "PRAGMA integrity_check") == [("ok",)]
    # Every batch reported written is there, up to the ring bound.  All rows count: under load a request whose
    # first segment the kernel dropped is stored too (flagged gap, without its target), and "rows" counted it.
    kept = stored(run.db, "SELECT count(*) FROM exchanges")[0][0]
    assert kept >= min(acknowledged, 1000)
    again = service("-i", "docker0")
    assert again.wait_for("store opened")["reloaded"] == stored(again.db, "SELECT count(*) FROM exchanges")[0][0]
    assert again.stop() == 0


def test_data_directory_is_0700_and_database_files_0600(service, web, tmp_path):
    run = service("-i", "docker0", db=tmp_path / "private" / "sub" / "x.db")
    get(web.address, 80, "/modes")
    wait_until(lambda: os.path.exists(run.db) and stored(run.db, "SELECT count(*) FROM exchanges")[0][0] >= 1)
    files = [run.db, Path(f"{run.db}-wal"), Path(f"{run.db}-shm")]
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in files if path.exists()}
    assert stat.S_IMODE(run.db.parent.stat().st_mode) == 0o700
    assert modes and set(modes.values()) == {0o600}, modes
    assert run.stop() == 0


def test_without_docker_capture_goes_on_with_one_warning(service, web, tmp_path, docker_engine):
    env = {**docker_engine.env, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    run = service("-i", "docker0", "--json", env=env)
    for index in range(3):
        get(web.address, 80, f"/no-docker/{index}")
        time.sleep(1.2)  # across several reconnection attempts
    wait_until(lambda: len(run.stdout) >= 3, what="exchanges without Docker")
    assert run.stop() == 0
    warnings = [line for line in run.log if "Docker" in line["msg"]]
    assert len(warnings) == 1 and "no Docker Engine at" in warnings[0]["msg"], warnings
    assert all(json.loads(line)["container"] is None for line in run.stdout)


@pytest.mark.parametrize(("args", "code", "text"), [
    (["-i", "edt-no-such0"], 2, "unknown interface"),
    (["--keep", "0"], 2, "--keep"),
    (["--ports", "http"], 2, "--ports"),
    (["--filter", "tcp and ("], 2, "BPF"),
    (["-i", "lo", "--db", "/proc/eyes-devine/x.db"], 1, "/proc/eyes-devine/x.db"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(args, code, text, docker_engine, tmp_path):
    env = {**docker_engine.env, "EYES_DEVINE_DB": str(tmp_path / "x.db")}
    result = subprocess.run([*EYES_DEVINE, "run", *args], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert text in lines[-1] and "Traceback" not in result.stderr, result.stderr
