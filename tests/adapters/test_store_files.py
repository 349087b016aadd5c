"""The store's files: never through a link, never in a directory others can change, exact modes, known versions.

Real files under tmp_path, the real `nobody` user (through setpriv) where a
test plays the attacker, and the real CLI where a test pins what a user sees.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from eyes_devine.adapters.store.schema import SCHEMA_VERSION
from eyes_devine.adapters.store.sqlite import StoreError, open_store
from tests.support.install import run_as
from tests.support.records import make
from tests.support.requirements import require_binary, require_root

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]
ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
SECRET = b"root:only\n"


def write_and_close(path: Path, rows: int = 1) -> None:
    async def scenario() -> None:
        store = await open_store(path, 10)
        await store.write([make(i) for i in range(rows)])
        await store.close()

    asyncio.run(scenario())


def refusal(path: Path, readonly: bool = False) -> str:
    """The one line open_store refuses ``path`` with (it must refuse)."""
    with pytest.raises(StoreError) as raised:
        asyncio.run(open_store(path, 10, readonly=readonly))
    message = str(raised.value)
    assert "\n" not in message
    return message


def cli(*argv: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent/docker.sock", "COLUMNS": "160"}
    return subprocess.run([*EYES_DEVINE, *argv], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)


def one_line(result: subprocess.CompletedProcess) -> str:
    """The only line on stderr, with no traceback before or after it."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture
def reachable(tmp_path_factory) -> Path:
    """A directory of root's that `nobody` may enter (the test's own tmp_path is root's alone)."""
    require_root()
    require_binary("setpriv", "util-linux")
    path = Path(tmp_path_factory.mktemp("reachable"))
    path.chmod(0o755)
    for parent in path.parents:
        if str(parent).startswith("/tmp/"):
            parent.chmod(parent.stat().st_mode | 0o711)
    return path


@pytest.fixture
def secret(reachable: Path) -> Path:
    """A file only root may read or write: what an attacker would point a link at."""
    path = reachable / "secret"
    path.write_bytes(SECRET)
    path.chmod(0o600)
    return path


def untouched(path: Path) -> bool:
    status = path.stat()
    return path.read_bytes() == SECRET and status.st_uid == 0 and stat.S_IMODE(status.st_mode) == 0o600


# The attack from issue 13, played by the real `nobody`


def test_nobody_who_owns_the_data_directory_cannot_point_a_root_start_at_a_root_file(reachable, secret):
    """`run --user nobody` used to leave nobody the data directory; nobody then swapped the database for a link."""
    data = reachable / "data"
    db = data / "exchanges.db"
    write_and_close(db)
    for path in (data, *data.iterdir()):
        os.chown(path, NOBODY, NOBODY)  # what the old hand-over did
    planted = run_as("nobody", "ln", "-sfn", str(secret), str(db))
    assert planted.returncode == 0 and db.is_symlink(), planted.stderr
    dangling = reachable / "root-only" / "created-by-root"
    (reachable / "root-only").mkdir(mode=0o700)
    assert run_as("nobody", "ln", "-sfn", str(dangling), f"{db}-wal").returncode == 0

    assert refusal(db) == (f"{data} belongs to nobody (uid {NOBODY}), who could replace the database with a link; "
                           f"as root, use a directory root owns (chown -R root: {data}), or choose another --db")
    assert refusal(db, readonly=True) == f"{db} is a symbolic link; remove it or point --db at a real file"
    run = cli("run", "-i", "lo", "--db", str(db))
    assert run.returncode == 1 and one_line(run).endswith(f"ERROR: {refusal(db)}")
    assert untouched(secret) and not dangling.exists()
    assert data.stat().st_uid == NOBODY, "nothing was chowned back and forth either"


def test_a_link_planted_in_a_directory_root_owns_is_refused_too(reachable, secret):
    data = reachable / "data"
    db = data / "exchanges.db"
    write_and_close(db)
    os.unlink(db)
    db.symlink_to(secret)
    assert refusal(db) == f"{db} is a symbolic link; remove it or point --db at a real file"
    requests = cli("requests", "--db", str(db))
    assert requests.returncode == 1
    assert one_line(requests) == f"eyes-devine: {db} is a symbolic link; remove it or point --db at a real file"
    assert untouched(secret)


@pytest.mark.parametrize("companion", ["-wal", "-shm", "-journal", ".lock"])
@pytest.mark.parametrize("readonly", [False, True])
def test_a_companion_that_is_a_link_is_refused_and_its_target_never_made(tmp_path, companion, readonly):
    db = tmp_path / "x.db"
    write_and_close(db)
    target = tmp_path / "elsewhere"
    Path(f"{db}{companion}").unlink(missing_ok=True)
    Path(f"{db}{companion}").symlink_to(target)
    assert refusal(db, readonly) == f"{db}{companion} is a symbolic link; remove it or point --db at a real file"
    assert not target.exists()


def test_a_dangling_link_as_the_database_is_refused_and_nothing_is_created(tmp_path):
    db = tmp_path / "x.db"
    target = tmp_path / "made-by-root"
    db.symlink_to(target)
    assert "is a symbolic link" in refusal(db)
    assert not target.exists()


def test_a_database_directory_that_is_a_link_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    assert refusal(tmp_path / "link" / "x.db") == (f"{tmp_path / 'link'} is a symbolic link; point --db into the "
                                                   "real directory")
    assert list(real.iterdir()) == []


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777, 0o720])
def test_a_directory_others_could_write_is_refused_sticky_or_not(tmp_path, mode):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    assert refusal(shared / "x.db") == (f"{shared} is writable by other users, who could replace the database with "
                                        f"a link; chmod go-w {shared}, or choose another --db")
    assert list(shared.iterdir()) == []


def test_as_root_files_another_user_owns_are_refused_for_writing_but_can_be_read(tmp_path):
    require_root()
    db = tmp_path / "x.db"
    write_and_close(db)
    os.chown(db, NOBODY, NOBODY)
    assert refusal(db) == (f"{db} belongs to nobody (uid {NOBODY}); as root, eyes-devine writes only files root "
                           f"owns: chown root: {db}, or choose another --db")

    async def read() -> int:
        store = await open_store(db, 10, readonly=True)
        try:
            return sum((await store.counts()).values())
        finally:
            await store.close()

    assert asyncio.run(read()) == 1  # `sudo eyes-devine requests` on a service user's database


def test_a_database_with_another_hard_link_is_refused(tmp_path):
    db = tmp_path / "x.db"
    write_and_close(db)
    os.link(db, tmp_path / "other-name")
    assert refusal(db) == (f"{db} has 2 hard links, so it is other files too; remove the other links, or choose "
                           "another --db")


@pytest.mark.parametrize("command", [["requests"], ["alerts"], ["flows"], ["run", "-i", "lo"], ["watch", "--attach"]])
def test_a_db_that_names_a_directory_is_bad_input_one_line_and_exit_2(tmp_path, command):
    folder = tmp_path / "folder"
    folder.mkdir(mode=0o700)
    result = cli(*command, "--db", str(folder))
    expected = f"--db: {folder} is a directory; point --db at a database file, such as {folder}/exchanges.db"
    assert result.returncode == 2 and one_line(result).endswith(expected)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("command", [["requests"], ["run", "-i", "lo"]])
def test_an_empty_db_name_is_bad_input_not_the_default(tmp_path, command):
    result = cli(*command, "--db", "")
    assert result.returncode == 2 and "--db: an empty name" in one_line(result)


def test_a_directory_moved_away_just_as_sqlite_opens_it_is_noticed(tmp_path, monkeypatch):
    """What the checks cannot see: someone who controls an ancestor swaps the judged directory for a moment."""
    from eyes_devine.adapters.store import connection

    parent = tmp_path / "parent"
    db = parent / "data" / "x.db"
    write_and_close(db)
    decoy = tmp_path / "decoy"
    write_and_close(decoy / "x.db")
    decoy_bytes = (decoy / "x.db").read_bytes()
    probed = connection._probed

    def swapped_first(uri: str) -> sqlite3.Connection:
        (parent / "data").rename(parent / "judged")
        decoy.rename(parent / "data")
        return probed(uri)

    monkeypatch.setattr(connection, "_probed", swapped_first)
    assert refusal(db) == (f"{db} changed while it was opened (the directory or the file was replaced); check who "
                           "else can write above it, then try again")
    assert (parent / "data" / "x.db").read_bytes() == decoy_bytes


@pytest.mark.parametrize("given", [".", "..", "sub/.."])
def test_a_db_that_ends_in_a_dot_name_is_a_directory_and_nothing_is_made(tmp_path, monkeypatch, given):
    (tmp_path / "here" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "here")
    assert refusal(Path(given)) == (f"{given} is a directory; point --db at a database file, such as "
                                    f"{Path(given) / 'exchanges.db'}")
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["here", "sub"]


# Modes, whatever the umask

UMASK_000 = """
import asyncio, os, sys
from eyes_devine.adapters.store.sqlite import open_store
from tests.support.records import make

os.umask(0)

async def main():
    store = await open_store(sys.argv[1], 10)
    await store.write([make(0)])
    await store.close()

asyncio.run(main())
"""


def test_under_umask_000_every_directory_made_is_0700_and_every_file_0600(tmp_path):
    db = tmp_path / "a" / "b" / "c" / "x.db"
    result = subprocess.run([sys.executable, "-c", UMASK_000, str(db)], capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    made = {str(path.relative_to(tmp_path)): stat.S_IMODE(path.stat().st_mode) for path in tmp_path.rglob("*")}
    assert made == {"a": 0o700, "a/b": 0o700, "a/b/c": 0o700, "a/b/c/x.db": 0o600, "a/b/c/x.db.lock": 0o600}


# Schema versions no eyes-devine writes


@pytest.mark.parametrize("readonly", [False, True])
@pytest.mark.parametrize("version", [-1, -(2**31), SCHEMA_VERSION + 1])
def test_a_schema_version_this_build_does_not_know_is_refused_and_left_alone(tmp_path, version, readonly):
    db = tmp_path / "x.db"
    write_and_close(db)
    with sqlite3.connect(db) as connection:
        connection.execute(f"PRAGMA user_version = {version}")
        before = connection.execute("SELECT count(*) FROM exchanges").fetchone()
    message = refusal(db, readonly)
    if version < 0:
        assert message == f"{db} has schema version {version}, which no eyes-devine writes; move it aside or " \
                          "choose another --db"
    else:
        assert "newer than this eyes-devine knows" in message
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (version,)
        assert connection.execute("SELECT count(*) FROM exchanges").fetchone() == before


def test_an_empty_file_at_version_minus_1_is_not_migrated(tmp_path):
    db = tmp_path / "x.db"
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA user_version = -1")
    assert "schema version -1" in refusal(db)
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
