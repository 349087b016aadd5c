"""`eyes-devine requests` as a user runs it, on a database the store wrote (no capture needed)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eyes_devine.adapters.store.sqlite import open_store
from tests.support.records import WEB, WORKER, make

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "store" / "x.db"
    now = time.time()
    rows = [make(i, ts=now - 3600 + i, container="web", container_id=WEB, status=200 if i % 10 else 503)
            for i in range(50)]
    rows.append(make(99, ts=now, client_container="worker", client_container_id=WORKER, method="POST",
                     target="/outbound?x=1"))

    async def write() -> None:
        store = await open_store(path)
        await store.write(rows)
        await store.close()

    asyncio.run(write())
    return path


def requests(db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EYES_DEVINE, "requests", "--db", str(db), *args], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "COLUMNS": "160"})


def lines(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_filters_combine_and_the_newest_come_oldest_first(db: Path) -> None:
    errors = lines(requests(db, "--json", "-c", "web", "--status", "5xx"))
    assert [x["target"] for x in errors] == [f"/items/{i}" for i in range(0, 50, 10)]
    newest = lines(requests(db, "--json", "-n", "3"))
    assert [x["target"] for x in newest] == ["/items/48", "/items/49", "/outbound?x=1"]
    assert [x["target"] for x in lines(requests(db, "--json", "--method", "post"))] == ["/outbound?x=1"]
    assert len(lines(requests(db, "--json", "-c", WORKER[:6]))) == 1
    assert len(lines(requests(db, "--json", "--since", "30m"))) == 1
    assert len(lines(requests(db, "--json", "--path-contains", "items/4", "-n", "1000"))) == 11


def test_the_table_names_the_container_or_the_caller(db: Path) -> None:
    result = requests(db, "-n", "2")
    assert result.returncode == 0, result.stderr
    header, first, second = result.stdout.splitlines()
    assert "container" in header and "status" in header
    assert "web" in first and "/items/49" in first
    assert "worker →" in second and "POST" in second


@pytest.mark.parametrize(("args", "code", "text"), [
    (["--status", "6xx"], 2, "status '6xx'"),
    (["--since", "yesterday"], 2, "since 'yesterday'"),
    (["-n", "0"], 2, "-n"),
])
def test_bad_filters_are_one_line_and_exit_2(db: Path, args: list[str], code: int, text: str) -> None:
    result = requests(db, *args)
    assert result.returncode == code and text in result.stderr and "Traceback" not in result.stderr


def test_a_missing_or_damaged_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    missing = requests(tmp_path / "nothing.db")
    assert missing.returncode == 1 and "no database at" in missing.stderr
    assert not (tmp_path / "nothing.db").exists()
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"this is not sqlite" * 100)
    result = requests(damaged)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1 and "damaged" in result.stderr


def test_a_hostile_container_name_is_escaped_in_the_table_and_exact_in_json(tmp_path: Path) -> None:
    hostile = "\x1b[2J\u202e[red]x"  # escaped, it fits the 20-character container column
    path = tmp_path / "hostile.db"

    async def write() -> None:
        store = await open_store(path)
        await store.write([make(1, ts=time.time(), container=hostile, container_id=WEB, method="G\x9bET")])
        await store.close()

    asyncio.run(write())
    table = requests(path)
    assert table.returncode == 0, table.stderr
    row = table.stdout.splitlines()[1]
    assert row.isprintable() and " \\x1b[2J\\u202e[red]x " in row and "G\\x9bET" in row
    result = requests(path, "--json")
    assert result.stdout.isascii()
    [record] = lines(result)
    assert (record["container"], record["method"]) == (hostile, "G\x9bET")


@pytest.mark.parametrize("url", ["postgresql://u:se cret@h/db", "postgresql://u:p%zzsecret@h/db",
                                 "postgresql://u:secret@h/db?nosuch=1"])
def test_a_postgresql_url_libpq_cannot_read_is_one_line_without_its_password(url):
    result = requests(url)
    assert result.returncode == 2 and result.stderr.startswith("eyes-devine: --db: not a PostgreSQL URL")
    assert len(result.stderr.splitlines()) == 1 and "secret" not in result.stderr and "cret" not in result.stderr
