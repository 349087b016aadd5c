"""The PostgreSQL store against a real server: the same record as SQLite's, many observers, idempotent batches."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from eyes_devine.adapters.store.errors import StoreError, StoreUnavailable
from eyes_devine.adapters.store.opener import open_database
from eyes_devine.adapters.store.postgres import migrate
from eyes_devine.adapters.store.query import FlowQuery, Query
from eyes_devine.records import MonitorStatus
from tests.support.records import WEB, flow, make


def served(i: int, observer: str, **changes: object):
    return make(i, container="web", container_id=WEB, observer=observer, **changes)


def run(coroutine):
    return asyncio.run(coroutine)


def test_every_field_survives_the_round_trip_and_keep_holds_per_observer(postgres):
    url = postgres.new_database()
    a = [served(i, "host-a", flags=("gap", "pipelined"), alerts=("sql-injection",)) for i in range(30)]
    b = [served(i, "host-b") for i in range(30, 40)]

    async def scenario():
        first = await open_database(url, 20, observer="host-a")
        second = await open_database(url, 20, observer="host-b")
        await first.write(a[:15])
        await first.write(a[15:], [flow(1, observer="host-a")])
        await second.write(b)
        await first.close()
        await second.close()
        reader = await open_database(url, 20, readonly=True)
        try:
            return (await reader.query(Query(limit=None)), await reader.query(Query(limit=None, observer="host-b")),
                    await reader.query_flows(FlowQuery(limit=None)))
        finally:
            await reader.close()

    everything, only_b, flows = run(scenario())
    assert sorted(everything, key=lambda x: x.ts) == a[10:] + b, "each observer keeps its newest 20"
    assert sorted(only_b, key=lambda x: x.ts) == b
    assert flows == [flow(1, observer="host-a")]


def test_a_batch_sent_twice_is_stored_once(postgres):
    url = postgres.new_database()
    key = (uuid.uuid4(), 0)
    batch = [served(i, "vm") for i in range(10)]

    async def scenario():
        store = await open_database(url, 1000, observer="vm")
        await store.write(batch, (), key)
        await store.write(batch, (), key)  # a retry after a commit whose outcome was not known
        counts = await store.counts()
        await store.close()
        return counts

    assert run(scenario()) == {WEB: 10}


def test_status_rows_are_one_per_observer(postgres):
    url = postgres.new_database()

    async def scenario():
        for name in ("a", "b"):
            store = await open_database(url, 10, observer=name)
            await store.write_status(MonitorStatus(1.0, 0.5, 7, name, "0.1", (("eth0", "up"),)))
            await store.close()
        reader = await open_database(url, 10, readonly=True, observer="b")
        try:
            return await reader.status()
        finally:
            await reader.close()

    assert run(scenario()).host == "b"


def test_a_newer_schema_is_refused_and_another_programs_table_is_left_alone(postgres):
    url = postgres.new_database()
    run(migrate(url))
    postgres.execute("UPDATE eyes_devine_schema SET version = 99", url)
    with pytest.raises(StoreError, match="schema version 99, newer than this eyes-devine knows"):
        run(open_database(url, 10, observer="vm"))
    other = postgres.new_database()
    postgres.execute("CREATE TABLE exchanges (x int)", other)
    with pytest.raises(StoreError, match="not eyes-devine's"):
        run(open_database(other, 10, observer="vm"))


def test_an_unreachable_server_and_a_wrong_password_are_one_line(postgres):
    with pytest.raises(StoreUnavailable, match="cannot connect to postgresql://owner@127.0.0.1:1/postgres"):
        run(open_database(postgres.url().replace(f":{postgres.port}/", ":1/"), 10, observer="vm"))
    with pytest.raises(StoreError, match="password authentication failed") as raised:
        run(open_database(postgres.url(password="wrong"), 10, observer="vm"))
    assert "wrong" not in str(raised.value), "a password never reaches a message"
