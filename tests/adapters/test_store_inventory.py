"""The container inventory in the store: tenures round-trip through SQLite and PostgreSQL, once each, bounded."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
import uuid

import pytest

from eyes_devine.adapters.store import inventory
from eyes_devine.adapters.store.errors import StoreError
from eyes_devine.adapters.store.opener import open_database
from eyes_devine.adapters.store.schema import MIGRATIONS
from eyes_devine.adapters.store.spool import Batch, Spool
from eyes_devine.adapters.store.writer import StoreWriter
from eyes_devine.records import ContainerInfo, ContainerTenure, PublishedPort
from tests.support.records import make

WEB = ContainerInfo(id="a" * 64, name="web", image="nginx:1.25", compose_project="shop", compose_service="web",
                    addresses=("172.17.0.2", "fd00::2"), gateways=("172.17.0.1", "fd00::1"),
                    published=(PublishedPort("0.0.0.0", 8080, 80), PublishedPort("::", 8080, 80),
                               PublishedPort("", 9000, 9000), PublishedPort("127.0.0.1", 8443, 443)),
                    ports=(80, 443, 9000))
BARE = ContainerInfo(id="b" * 64, name="bare", image="busybox")
"""No network, no ports, no compose labels: every list empty, every optional None."""


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "x.db")
    return request.getfixturevalue("postgres").new_database()


async def stored(target: str, observer: str | None = None, open_only: bool = False) -> list[ContainerTenure]:
    reader = await open_database(target, 10, readonly=True)
    try:
        return await reader.inventory(observer, open_only)
    finally:
        await reader.close()


def test_every_field_of_a_tenure_survives_the_round_trip(database):
    tenures = [ContainerTenure(WEB, 100.25, None, "edge"), ContainerTenure(BARE, 50.125, 75.5, "edge")]

    async def scenario():
        store = await open_database(database, 10, observer="edge")
        await store.write([], (), None, tenures=tenures)
        await store.close()
        return await stored(database)

    assert run(scenario()) == [tenures[1], tenures[0]], "oldest first, as they were"


def test_a_closed_tenure_replaces_its_open_row_and_a_batch_sent_again_changes_nothing(database):
    opened = ContainerTenure(WEB, 100.0, None, "edge")
    closed = dataclasses.replace(opened, ended=200.0)
    after = ContainerTenure(dataclasses.replace(WEB, name="web-renamed"), 200.0, None, "edge")

    async def scenario():
        store = await open_database(database, 10, observer="edge")
        await store.write([make(1, observer="edge")], (), (uuid.uuid4(), 0), tenures=[opened])
        for _ in range(2):  # the second time: a retry after a commit whose outcome was lost
            await store.write([], (), None, tenures=[closed, after])
        await store.close()
        return await stored(database), await stored(database, open_only=True)

    everything, still_open = run(scenario())
    assert everything == [closed, after] and still_open == [after]


def test_each_observer_has_its_own_inventory(database):
    async def scenario():
        for observer in ("edge-a", "edge-b"):
            store = await open_database(database, 10, observer=observer)
            await store.write([], (), None, tenures=[ContainerTenure(WEB, 100.0, None, observer)])
            await store.close()
        reader = await open_database(database, 10, readonly=True)
        try:
            return await reader.inventory_observers(), await reader.inventory("edge-b")
        finally:
            await reader.close()

    observers, only_b = run(scenario())
    assert observers == {"edge-a": 1, "edge-b": 1}
    assert only_b == [ContainerTenure(WEB, 100.0, None, "edge-b")]


def test_ended_tenures_are_bounded_by_retain_and_by_count_and_open_ones_never(database, monkeypatch):
    monkeypatch.setattr("eyes_devine.adapters.store.sqlite.MAX_ENDED_TENURES", 3)
    monkeypatch.setattr("eyes_devine.adapters.store.postgres.MAX_ENDED_TENURES", 3)
    now = time.time()
    long_ago = ContainerTenure(BARE, now - 7200, now - 3600, "edge")  # ended an hour ago: past --retain 10m
    ended = [ContainerTenure(dataclasses.replace(WEB, id=f"{i:064d}"), now - 100 + i, now - 50 + i, "edge")
             for i in range(5)]
    running = ContainerTenure(WEB, now - 7200, None, "edge")

    async def scenario():
        store = await open_database(database, 10, observer="edge", retain=600)
        await store.write([], (), None, tenures=[long_ago, running, *ended])
        await store.close()
        return await stored(database)

    assert run(scenario()) == [running, *ended[2:]], "the newest three ended, and the running one"


def test_an_older_database_says_it_has_no_inventory(tmp_path):
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as connection:  # schema 7, as the eyes-devine before the inventory left it
        for migration in MIGRATIONS[:7]:
            for statement in migration:
                connection.execute(statement)
        connection.execute("PRAGMA user_version = 7")
    with pytest.raises(StoreError, match="has no container inventory: it is written by an eyes-devine older"):
        run(stored(str(db)))


def test_tenures_go_through_the_writer_with_the_records(database):
    writer = StoreWriter(database, 10, observer="edge")
    writer.start()
    writer.accept(make(1, observer="edge"))
    writer.accept_tenure(ContainerTenure(WEB, 100.0, None, "edge"))
    writer.accept_tenure(ContainerTenure(WEB, 100.0, 150.0, "edge"))
    writer.close()
    assert (writer.written, writer.tenures_written, writer.counters()) == (1, 2, (3, 3, 0))
    assert run(stored(database)) == [ContainerTenure(WEB, 100.0, 150.0, "edge")]


def test_a_queue_full_of_records_leaves_room_for_tenures_and_counts_past_it(tmp_path, monkeypatch):
    monkeypatch.setattr("eyes_devine.adapters.store.writer.TENURE_HEADROOM", 2)
    writer = StoreWriter(tmp_path / "x.db", 10, max_pending=5)
    for i in range(6):  # before the writer's thread runs, so the queue only fills
        writer.accept(make(i))
    for started in range(3):
        writer.accept_tenure(ContainerTenure(WEB, float(started), None, "edge"))
    assert (writer.dropped, writer.tenures_dropped, writer.pending) == (1, 1, 7)
    assert writer.losses() == {"queue full": 2}


def test_a_spooled_batch_keeps_its_tenures(tmp_path):
    spool = Spool(memory_records=1, path=tmp_path / "spool.jsonl")
    batch = Batch((uuid.uuid4(), 0), [make(1)], [], [ContainerTenure(WEB, 1.5, 2.5, "edge")])
    assert spool.to_file(batch)
    assert [kept for _, kept in spool.file_batches()] == [batch]


def test_published_ports_read_as_docker_shows_them():
    row = inventory.tenure_row(ContainerTenure(WEB, 1.0, None, "edge"))
    assert row[inventory.TENURE_FIELDS.index("published")] == \
        "0.0.0.0:8080->80 [::]:8080->80 :9000->9000 127.0.0.1:8443->443"
    with pytest.raises(ValueError, match="not a published port"):
        inventory.tenure_of((*row[:8], "8080", *row[9:]))
