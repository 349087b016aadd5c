"""One writer per database: the lock beside it, held by a real second process; readers never wait for it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from eyes_devine.adapters.store.query import Query
from eyes_devine.adapters.store.sqlite import StoreError, open_store
from eyes_devine.adapters.store.writer import StoreWriter
from tests.support.records import make

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import sys, time
from eyes_devine.adapters.store.writer import StoreWriter

writer = StoreWriter(sys.argv[1], 1000)
writer.start()
print("holding", flush=True)
time.sleep(600)
"""


def refused(db: Path) -> str:
    with pytest.raises(StoreError) as raised:
        asyncio.run(open_store(db, 10))
    return str(raised.value)


def test_a_second_writer_in_the_same_process_is_refused_until_the_first_closes(tmp_path):
    db = tmp_path / "x.db"

    async def scenario() -> tuple[str, int]:
        first = await open_store(db, 10)
        await first.write([make(0)])
        try:
            await open_store(db, 10)
        except StoreError as error:
            message = str(error)
        else:
            raise AssertionError("a second writer opened the database")
        reader = await open_store(db, 10, readonly=True)  # readers are not affected
        found = len(await reader.query(Query()))
        await reader.close()
        await first.close()
        again = await open_store(db, 10)  # the lock went with the first writer
        await again.close()
        return message, found

    message, found = asyncio.run(scenario())
    assert message == f"{db} is being written by another eyes-devine (pid {os.getpid()}); stop it or use another --db"
    assert found == 1
    assert (tmp_path / "x.db.lock").read_text() == f"{os.getpid()}\n"


def test_a_writer_in_another_process_is_named_by_its_pid_and_its_death_frees_the_database(tmp_path):
    db = tmp_path / "x.db"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        assert refused(db) == (f"{db} is being written by another eyes-devine (pid {holder.pid}); stop it or use "
                               "another --db")
        writer = StoreWriter(db, 1000)
        with pytest.raises(StoreError, match=f"pid {holder.pid}"):
            writer.start()  # how `run` and a capturing `watch` meet it
        assert stored_count(db) == 0  # readers are not affected
    finally:
        holder.send_signal(signal.SIGKILL)  # no clean-up runs: the kernel lets go of the lock
        holder.wait(10)
    asyncio.run(write_one(db))
    assert stored_count(db) == 1


async def write_one(db: Path) -> None:
    store = await open_store(db, 10)
    await store.write([make(1)])
    await store.close()


def stored_count(db: Path) -> int:
    """Exchanges in the database, through the store opened read-only (as `requests` opens it)."""

    async def count() -> int:
        store = await open_store(db, 10, readonly=True)
        try:
            return sum((await store.counts()).values())
        finally:
            await store.close()

    return asyncio.run(count())
