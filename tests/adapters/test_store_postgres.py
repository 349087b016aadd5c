"""The PostgreSQL store against a real server: the same record as SQLite's, many observers, idempotent batches."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
import uuid
from pathlib import Path

import pytest

from eyes_devine.adapters.store.errors import StoreError, StoreUnavailable
from eyes_devine.adapters.store.opener import open_database
from eyes_devine.adapters.store.postgres import migrate
from eyes_devine.adapters.store.query import FlowQuery, Query
from eyes_devine.adapters.store.writer import StoreWriter
from eyes_devine.records import ContainerInfo, ContainerTenure, MonitorStatus
from tests.support.postgres import wait_until
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


def test_the_readme_roles_write_and_read_with_least_privilege(postgres):
    url = postgres.new_database()
    dbname = url.rsplit("/", 1)[1]
    empty = postgres.new_database()
    run(migrate(url))
    postgres.execute("DROP ROLE IF EXISTS eyes_writer; DROP ROLE IF EXISTS eyes_reader")
    postgres.execute(Path(__file__).resolve().parents[2].joinpath("examples/postgres/roles.sql").read_text(), url)
    postgres.execute("ALTER ROLE eyes_writer PASSWORD 'w'; ALTER ROLE eyes_reader PASSWORD 'r'")
    writer_url = postgres.url("eyes_writer", "w", dbname)
    reader_url = postgres.url("eyes_reader", "r", dbname)

    async def scenario():
        store = await open_database(writer_url, 5, observer="edge", retain=600)
        now = time.time()  # within --retain
        tenure = ContainerTenure(ContainerInfo("c" * 64, "web", "nginx", addresses=("172.17.0.2",)), now, None, "edge")
        await store.write([served(i, "edge", ts=now + i) for i in range(10)], [flow(1, ts=now, observer="edge")],
                          tenures=[tenure])
        await store.write([], tenures=[dataclasses.replace(tenure, ended=now + 1)])  # an update of its row
        await store.write_status(MonitorStatus(1.0, 0.5, 7, "edge", "0.1", (("eth0", "up"),)))
        await store.close()
        reader = await open_database(reader_url, 5, readonly=True, observer="edge")
        try:
            return await reader.query(Query(limit=None)), await reader.status(), await reader.inventory()
        finally:
            await reader.close()

    stored, status, tenures = run(scenario())
    assert len(stored) == 5 and status.host == "edge", "the writer inserted, trimmed and reported"
    assert [t.ended for t in tenures] == [pytest.approx(time.time(), abs=60)], "and kept the inventory"

    async def reader_writes():
        store = await open_database(reader_url, 5, observer="edge")
        try:
            await store.write([served(99, "edge")])
        finally:
            await store.close()

    with pytest.raises(StoreError, match="permission denied for table exchanges; grant the role"):
        run(reader_writes())
    with pytest.raises(StoreError, match="cannot migrate .*permission denied for schema public; run `eyes-devine db "
                                         "migrate` as the database's owner"):
        postgres.execute(f"GRANT TEMPORARY ON DATABASE {empty.rsplit('/', 1)[1]} TO eyes_writer")
        run(open_database(postgres.url("eyes_writer", "w", empty.rsplit("/", 1)[1]), 5, observer="edge"))


def test_sslmode_require_stores_over_tls_and_verify_full_without_the_ca_is_one_line(postgres):
    url = postgres.new_database()

    async def over_tls():
        store = await open_database(url + "?sslmode=require", 10, observer="edge")
        try:
            await store.write([served(1, "edge")])
            return postgres.execute("SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
                                    "WHERE application_name = 'eyes-devine' AND ssl")
        finally:
            await store.close()

    assert run(over_tls()) == [(1,)]
    with pytest.raises(StoreError, match="cannot connect to postgresql://owner@127.0.0.1:.*root certificate"):
        run(open_database(url + "?sslmode=verify-full&sslrootcert=/nonexistent.crt", 10, observer="edge"))


def test_a_spool_fills_while_the_server_is_down_and_is_sent_once_when_it_is_back(postgres, tmp_path):
    url = postgres.new_database()
    with_file = StoreWriter(url, 100_000, batch_size=10, spool_records=50, observer="spooled", flush_interval=0.05,
                            spool=tmp_path / "spool.jsonl")
    memory_only = StoreWriter(url, 100_000, batch_size=10, spool_records=50, observer="memory", flush_interval=0.05)
    errors: list[str] = []
    memory_only.on_error = errors.append
    for writer in (with_file, memory_only):
        writer.start()
    postgres.stop()
    try:
        for i in range(300):
            with_file.accept(served(i, "spooled"))
            memory_only.accept(served(i, "memory"))
            time.sleep(0.001)
        wait_until(lambda: memory_only.losses() and (tmp_path / "spool.jsonl").exists(), 10, "the spools fill")
    finally:
        postgres.start()
    wait_until(lambda: with_file.written == 300, 30, "the file spool sent")
    wait_until(lambda: memory_only.written + memory_only.dropped == 300 and not memory_only.pending, 30, "sent")
    for writer in (with_file, memory_only):
        writer.close()
    assert per_target(postgres, url, "spooled") == 300, "every record, once"
    # The newest batches the memory held (50 records at most, in batches of up to 10), and what came after.
    assert 30 <= memory_only.written == per_target(postgres, url, "memory") <= 60
    assert memory_only.losses() == {"spool full while the database was unreachable": 300 - memory_only.written}
    assert errors == ["the spool is full while the database is unreachable: its oldest batches are dropped; give "
                      "--spool FILE to keep more"]
    assert not (tmp_path / "spool.jsonl").stat().st_size, "emptied once stored"


def per_target(postgres, url: str, observer: str) -> int:
    [(rows, distinct)] = postgres.execute(
        f"SELECT count(*), count(DISTINCT target) FROM exchanges WHERE observer = '{observer}'", url)
    assert rows == distinct, "nothing stored twice"
    return rows


def test_a_nul_byte_in_one_request_keeps_neither_it_nor_its_batch_out(postgres):
    url = postgres.new_database()

    async def scenario():
        store = await open_database(url, 100, observer="edge")
        await store.write([served(1, "edge", target="/a\x00b", user_agent="x\x00"), served(2, "edge")])
        found = await store.query(Query(limit=None))
        await store.close()
        return found

    assert sorted(x.target for x in run(scenario())) == ["/a\ufffdb", "/items/2"]


def test_another_observers_spooled_rows_do_not_count_against_this_ones_keep(postgres):
    url = postgres.new_database()

    async def scenario():
        store = await open_database(url, 5, observer="new")
        await store.write([served(i, "new") for i in range(5)])
        await store.write([served(i, "old") for i in range(5, 10)])  # spooled before --observer changed
        counts = postgres.execute("SELECT observer, count(*) FROM exchanges GROUP BY 1 ORDER BY 1", url)
        await store.close()
        return counts

    assert run(scenario()) == [("new", 5), ("old", 5)]


def test_close_counts_what_the_spool_holds_when_the_database_hangs(postgres):
    url = postgres.new_database()
    writer = StoreWriter(url, 1000, batch_size=10, flush_interval=0.05, observer="edge")
    writer.start()
    postgres.stop()
    silent = socket.socket()  # where the server was: connections are taken, and never answered
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    silent.bind(("127.0.0.1", postgres.port))
    silent.listen(64)
    try:
        for i in range(40):
            writer.accept(served(i, "edge"))
        time.sleep(1.5)  # spooled, and a retry is waiting for an answer that does not come
        writer.close(timeout=0.5)
    finally:
        silent.close()
        postgres.start()
    assert writer.written == 0 and writer.dropped == 40, "every record is stored or counted as not stored"
    assert writer.losses() == {"not written within 0.5 s of stop": 40}


def test_a_stop_while_the_server_is_down_leaves_the_batches_in_the_spool_file_for_the_next_run(postgres, tmp_path):
    url = postgres.new_database()
    spool = tmp_path / "spool.jsonl"
    first = StoreWriter(url, 1000, batch_size=10, flush_interval=0.05, observer="edge", spool=spool)
    first.start()
    postgres.stop()
    try:
        for i in range(25):
            first.accept(served(i, "edge"))
        first.close(timeout=10)  # what is queued goes to the spool, then the spool to its file
    finally:
        postgres.start()
    assert (first.written, first.dropped, first.spooled_at_stop, first.spool_path) == (0, 0, 25, spool)
    again = StoreWriter(url, 1000, observer="edge", spool=spool)
    again.start()
    wait_until(lambda: again.written == 25, 20, "the next run sent them")
    again.close()
    assert per_target(postgres, url, "edge") == 25 and spool.stat().st_size == 0
