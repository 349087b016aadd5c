"""How `run` and capturing `watch` end: the last line says what was stored and what was lost, and the exit code
is 3 when anything was.  Real traffic between namespaces, a real full filesystem, a real pipe nobody reads; no
Docker (DOCKER_HOST points at nothing)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.disks import fill, small_disk
from tests.support.load import hammer
from tests.support.scenarios import wait_for_port
from tests.support.service import EYES_DEVINE, Service, requests_json, stored, wait_until

pytestmark = pytest.mark.netns

PORT = 8000


@pytest.fixture
def server(lab):
    """A Python HTTP server in a namespace behind a veth; the host reaches it directly, capture is on the veth."""
    ns = lab.host("s", 2)
    lab.processes.append(ns.spawn(sys.executable, "-m", "http.server", str(PORT), "--bind", "0.0.0.0"))
    wait_for_port(ns, PORT)
    return ns


def no_docker(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}


def start_run(server, db: Path, tmp_path: Path, *extra: str, read_stdout: bool = True) -> Service:
    run = Service(db, no_docker(tmp_path), "-i", server.link, "--ports", str(PORT), "--no-follow-docker-ports",
                  *extra, read_stdout=read_stdout)
    run.wait_for("capturing")
    return run


def send(server, targets: list[str]) -> None:
    assert hammer(server.address, PORT, targets, threads=4) == len(targets)


def test_a_clean_stop_says_nothing_was_lost_and_exits_0(server, tmp_path):
    db = tmp_path / "data" / "x.db"
    run = start_run(server, db, tmp_path)
    send(server, [f"/clean/{i}" for i in range(20)])
    wait_until(lambda: stored(db, "SELECT count(*) FROM exchanges")[0][0] == 20, what="20 stored")
    assert run.stop() == 0
    final = run.log[-1]
    assert final["msg"] == "stopped: 20 exchanges stored; nothing lost", run.log
    assert final["level"] == "info" and final["lost"] == 0 and final["stored"] == 20


def test_a_full_disk_ends_with_exit_3_the_counts_and_the_stored_rows_still_readable(server, tmp_path):
    with small_disk(tmp_path / "disk", "256k") as disk:
        db = disk / "x.db"
        run = start_run(server, db, tmp_path, "--keep", "1000000")
        sent = 0
        while not run.messages("could not store a batch"):  # the database grows until the disk is full
            assert sent < 20_000, "the disk never filled"
            send(server, [f"/fill/{sent + i}" for i in range(100)])
            sent += 100
        send(server, [f"/fill/{sent + i}" for i in range(100)])  # and more, on a disk that stays full
        sent += 100
        time.sleep(1)  # the last packets reach the sniffers
        assert run.stop() == 3, run.log
        final = run.log[-1]
        assert final["msg"].startswith("stopped") and final["level"] == "warning", run.log
        kept, lost = final["stored"], final["store_drops"]
        assert final["exchanges"] == sent and kept + lost == sent and kept > 0 and lost >= 100
        batches = f"{final['failed_batches']:,} failed batch" + ("es" if final["failed_batches"] > 1 else "")
        assert final["msg"] == (f"stopped: {kept:,} exchanges stored; {lost:,} not stored "
                                f"(in {batches}: {db}: database or disk is full)")
        assert final["lost"] == lost
        assert len(run.messages("could not store a batch")) == 1, "one line for the kind of error, not one per batch"
        rows = requests_json(db, "--limit", "1000000")
        assert len(rows) == kept and {row["target"] for row in rows} <= {f"/fill/{i}" for i in range(sent)}


def test_json_into_an_unread_pipe_exits_3_naming_what_stdout_dropped_even_after_a_second_signal(server, tmp_path):
    db = tmp_path / "data" / "x.db"
    run = start_run(server, db, tmp_path, "--json", "--keep", "5000", read_stdout=False)
    send(server, [f"/unread/{i}" for i in range(2000)])
    wait_until(lambda: stored(db, "SELECT count(*) FROM exchanges")[0][0] == 2000, timeout=30, what="2000 stored")
    run.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # now stdout, blocked, has 3 s to take the rest
    assert run.stop(signal.SIGINT) == 3, "a second signal (an impatient Ctrl-C) does not cut the writing short"
    assert run.messages("stopping: writing what is still queued first"), run.log
    final = run.log[-1]
    assert final["stored"] == 2000 and final["store_drops"] == 0
    dropped = final["stdout_drops"]
    assert dropped > 0 and final["stdout_written"] + dropped == 2000, "a 64 KiB pipe does not hold 2000 exchanges"
    assert final["msg"] == (f"stopped: 2,000 exchanges stored; {dropped:,} not printed on stdout "
                            "(still queued 3 s after stop)")


def test_capturing_watch_prints_the_final_line_after_the_screen_and_exits_3_on_a_full_disk(server, tmp_path):
    with small_disk(tmp_path / "disk", "512k") as disk:
        db = disk / "x.db"
        watch = subprocess.Popen(
            [*EYES_DEVINE, "watch", "-i", server.link, "--ports", str(PORT), "--no-follow-docker-ports",
             "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=no_docker(tmp_path))
        frames: list[str] = []
        errors: list[str] = []
        readers = [threading.Thread(target=lambda: frames.extend(watch.stdout), daemon=True),
                   threading.Thread(target=lambda: errors.extend(watch.stderr), daemon=True)]
        for reader in readers:
            reader.start()
        try:
            # A plain frame every 2 s; "packets" is in its header once capture runs.
            wait_until(lambda: any("packets" in line for line in frames), what="a frame of a running capture")
            fill(disk)  # another program takes the rest of the disk
            send(server, [f"/watch/{i}" for i in range(30)])
            time.sleep(1.5)  # the exchanges reach the writer, whose batches fail
            watch.send_signal(signal.SIGTERM)
            watch.wait(60)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
        for reader in readers:
            reader.join(5)
        assert watch.returncode == 3, errors
        lines = [line.rstrip("\n") for line in errors]
        assert re.fullmatch(rf"stopped: 0 exchanges stored; 30 not stored \(in \d failed batch(es)?: "
                            rf"{re.escape(str(db))}: database or disk is full\)", lines[-1]), lines
        assert not any("Traceback" in line for line in lines)
