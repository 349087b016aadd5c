"""`requests`, `alerts` and `flows` on read-only storage: a tmpfs remounted read-only, and files a user may only read.

Needs root (mount, and setpriv to become `nobody`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eyes_devine.adapters.store.sqlite import open_store
from tests.support.install import run_as
from tests.support.records import WEB, flow, make
from tests.support.requirements import require_binary, require_root

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]
ROOT = Path(__file__).resolve().parents[2]

KILLED_WRITER = """
import asyncio, os, signal, sys
from eyes_devine.adapters.store.sqlite import open_store
from tests.support.records import make

async def main():
    store = await open_store(sys.argv[1], 1000)
    for i in range(5):
        await store.write([make(i)])
    os.kill(os.getpid(), signal.SIGKILL)  # the -wal and -shm stay, as after a crash

asyncio.run(main())
"""


def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EYES_DEVINE, *argv], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin"})


def targets(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return [json.loads(line)["target"] for line in result.stdout.splitlines()]


@pytest.fixture
def media(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of its own, to be remounted read-only."""
    require_root()
    require_binary("mount", "mount")
    mountpoint = tmp_path / "media"
    mountpoint.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mountpoint)], check=True)
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def remount_read_only(mountpoint: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mountpoint)], check=True)
    with pytest.raises(OSError, match="Read-only file system"):
        (mountpoint / "probe").write_text("")


def test_a_database_closed_cleanly_is_read_on_read_only_storage(media):
    db = media / "x.db"

    async def fill() -> None:
        store = await open_store(db, 1000)
        await store.write([make(0, target="/plain"), make(1, target="/.env", alerts=("sensitive-path",))],
                          [flow(0, "dns", container="web", container_id=WEB)])
        await store.close()  # the last connection checkpoints and removes the -wal and -shm

    asyncio.run(fill())
    assert sorted(path.name for path in media.iterdir()) == ["x.db", "x.db.lock"]
    remount_read_only(media)
    assert targets(cli("requests", "--db", str(db), "--json")) == ["/plain", "/.env"]
    assert targets(cli("alerts", "--db", str(db), "--json")) == ["/.env"]
    flows = cli("flows", "--db", str(db), "--json")
    assert flows.returncode == 0 and [json.loads(line)["protocol"] for line in flows.stdout.splitlines()] == ["dns"]


def test_a_database_left_by_a_crash_is_read_with_what_its_wal_holds(media):
    db = media / "x.db"
    writer = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(db)], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert writer.returncode == -signal.SIGKILL, writer.stderr
    assert Path(f"{db}-wal").stat().st_size > 0 and Path(f"{db}-shm").exists()
    remount_read_only(media)
    assert targets(cli("requests", "--db", str(db), "--json")) == [f"/items/{i}" for i in range(5)]


def test_a_wal_that_cannot_be_read_on_read_only_storage_is_one_line_not_less_data(media):
    db = media / "x.db"
    writer = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(db)], capture_output=True, cwd=ROOT,
                            timeout=60)
    assert writer.returncode == -signal.SIGKILL
    os.unlink(f"{db}-shm")
    pending = Path(f"{db}-wal").stat().st_size
    remount_read_only(media)
    result = cli("requests", "--db", str(db), "--json")
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr == (f"eyes-devine: cannot read {db}: SQLite cannot create x.db-shm there (read-only "
                             f"storage?) and x.db-wal holds {pending} bytes not yet in the database; copy the "
                             "database with its -wal to writable storage and point --db at the copy\n")


def test_a_user_who_may_only_read_the_files_reads_them(shared, tmp_path_factory):
    folder = Path(tmp_path_factory.mktemp("readonly"))
    for parent in folder.parents:
        if str(parent).startswith("/tmp/"):
            parent.chmod(parent.stat().st_mode | 0o711)
    db = folder / "data" / "x.db"

    async def fill() -> None:
        store = await open_store(db, 1000)
        await store.write([make(7, target="/read-only")])
        await store.close()

    asyncio.run(fill())
    os.unlink(f"{db}.lock")
    db.chmod(0o444)
    db.parent.chmod(0o555)
    folder.chmod(0o755)
    result = run_as("nobody", str(shared.command), "requests", "--db", str(db), "--json")
    assert targets(result) == ["/read-only"]
    assert sorted(path.name for path in db.parent.iterdir()) == ["x.db"], "nobody could create nothing there"


def test_a_user_who_may_not_enter_the_directory_is_told_in_one_line(shared, tmp_path_factory):
    folder = Path(tmp_path_factory.mktemp("private"))
    for parent in folder.parents:
        if str(parent).startswith("/tmp/"):
            parent.chmod(parent.stat().st_mode | 0o711)
    folder.chmod(0o755)
    db = folder / "data" / "x.db"

    async def fill() -> None:
        store = await open_store(db, 1000)
        await store.close()

    asyncio.run(fill())
    result = run_as("nobody", str(shared.command), "requests", "--db", str(db))
    assert result.returncode == 1 and result.stderr == (
        f"eyes-devine: cannot read {db}: permission denied on {db.parent}; run as the user that runs "
        "`eyes-devine run` (root: sudo), or choose --db\n")
