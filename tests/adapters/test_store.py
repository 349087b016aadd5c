"""The store: bounded rings and database, private files, versioned schema, queries, and writes that never block capture.

Every test uses a real SQLite file under tmp_path; the concurrency and
durability tests use separate processes, as `requests` and a killed `run` would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eyes_devine.adapters.store.memory import RingBuffers
from eyes_devine.adapters.store.query import Query
from eyes_devine.adapters.store.schema import MIGRATIONS, SCHEMA_VERSION
from eyes_devine.adapters.store.sqlite import StoreError, open_store
from eyes_devine.adapters.store.writer import StoreWriter
from eyes_devine.config import parse_since, parse_status
from eyes_devine.records import EXCHANGE_FIELDS, UNATTRIBUTED, Exchange, MonitorStatus, bucket_of
from tests.support.records import API, T0, WEB, WORKER, flow, make

MAKE_EXCHANGE = """
from tests.support.records import make as make_exchange

def make(i, container_id=None):
    return make_exchange(i, container="web" if container_id else None, container_id=container_id)
"""


def served_by_web(i: int, **changes: object) -> Exchange:
    return make(i, container="web", container_id=WEB, **changes)


async def write_and_close(path: Path, keep: int, *batches: list[Exchange]) -> None:
    store = await open_store(path, keep)
    for batch in batches:
        await store.write(batch)
    await store.close()


async def read_back(path: Path, keep: int = 1000, q: Query | None = None) -> tuple[dict[str, int], list[Exchange]]:
    store = await open_store(path, keep, readonly=True)
    try:
        return await store.counts(), await store.query(q or Query(limit=None))
    finally:
        await store.close()


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# Buckets and default location


def test_an_exchange_belongs_to_the_server_then_the_caller_then_unattributed():
    both = make(0, container="web", container_id=WEB, client_container="worker", client_container_id=WORKER)
    assert bucket_of(both) == WEB
    assert bucket_of(make(0, client_container="worker", client_container_id=WORKER)) == WORKER
    assert bucket_of(make(0)) == UNATTRIBUTED


# Ring buffers


def test_ring_buffers_keep_the_newest_per_bucket_and_the_latest_name():
    rings = RingBuffers(keep=3)
    rings.add_many(served_by_web(i) for i in range(5))
    rings.add(make(5, container="web-v2", container_id=WEB))
    rings.add(make(6, client_container="worker", client_container_id=WORKER))
    rings.add(make(7))
    assert [x.target for x in rings.get(WEB)] == ["/items/3", "/items/4", "/items/5"]
    assert rings.container_name(WEB) == "web-v2" and rings.container_name(WORKER) == "worker"
    assert rings.container_name(UNATTRIBUTED) == UNATTRIBUTED
    assert set(rings.buckets()) == {WEB, WORKER, UNATTRIBUTED}
    assert rings.total == 5
    assert rings.get("nothing-here") == ()


def test_ring_buffer_snapshots_do_not_change_under_the_reader():
    rings = RingBuffers(keep=2)
    rings.add(served_by_web(0))
    snapshot = rings.buckets()
    rings.add(served_by_web(1))
    assert len(snapshot[WEB]) == 1


# Trimming and reloading


def test_database_keeps_the_newest_keep_per_bucket_across_close_and_reopen(tmp_path):
    db = tmp_path / "x.db"
    written = [served_by_web(i) for i in range(1100)]

    async def scenario():
        await write_and_close(db, 1000, written[:600], written[600:])
        store = await open_store(db, 1000)
        try:
            return await store.counts(), await store.recent(1000)
        finally:
            await store.close()

    counts, recent = asyncio.run(scenario())
    assert counts == {WEB: 1000}
    assert recent[WEB] == written[100:]
    rings = RingBuffers(keep=1000)
    for exchanges in recent.values():
        rings.add_many(exchanges)
    assert rings.get(WEB) == tuple(written[100:])
    assert rings.container_name(WEB) == "web"


def test_one_batch_larger_than_keep_leaves_only_the_newest(tmp_path):
    db = tmp_path / "x.db"
    written = [served_by_web(i) for i in range(1100)]
    asyncio.run(write_and_close(db, 1000, written))
    counts, stored = asyncio.run(read_back(db))
    assert counts == {WEB: 1000}
    assert stored[-1] == written[100] and stored[0] == written[-1]


def test_unattributed_exchanges_are_bounded_like_a_container(tmp_path):
    db = tmp_path / "x.db"
    asyncio.run(write_and_close(db, 50, [make(i) for i in range(80)] + [served_by_web(i) for i in range(10)]))
    counts, _ = asyncio.run(read_back(db))
    assert counts == {UNATTRIBUTED: 50, WEB: 10}


def test_a_smaller_keep_at_start_trims_what_is_stored(tmp_path):
    db = tmp_path / "x.db"
    asyncio.run(write_and_close(db, 100, [served_by_web(i) for i in range(100)]))
    asyncio.run(write_and_close(db, 10))
    counts, stored = asyncio.run(read_back(db))
    assert counts == {WEB: 10} and stored[-1].target == "/items/90"


def test_retain_deletes_what_is_older_at_open_on_each_write_and_while_idle(tmp_path):
    db = tmp_path / "x.db"
    now = time.time()
    old, recent = now - 7200, now - 60
    aged = [served_by_web(i, ts=old + i) for i in range(5)] + [served_by_web(i, ts=recent) for i in range(5, 8)]
    asyncio.run(write_and_close(db, 1000, aged))  # no time bound yet: all eight stay

    def stored(table: str = "exchanges") -> int:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    assert stored() == 8

    async def with_retain() -> None:
        store = await open_store(db, 1000, retain=3600)  # at open: the five older than an hour go
        try:
            assert stored() == 3
            await store.write([served_by_web(9, ts=old)], [flow(1, ts=old), flow(2, ts=recent)])
            assert stored() == 3 and stored("flows") == 1, "on each write too, flows included"
            with sqlite3.connect(db) as other:  # rows that aged while nothing was written
                other.execute("UPDATE exchanges SET ts = ?", (old,))
            await store.write_status(MonitorStatus(now, now, 1, "h", "v", (("lo", "up"),)))
            assert stored() == 0, "the status row, written every few seconds, expires them while idle"
        finally:
            await store.close()

    asyncio.run(with_retain())


def test_every_field_survives_the_round_trip(tmp_path):
    db = tmp_path / "x.db"
    full = make(
        1,
        ts=T0 + 0.123456,
        client_ip="fd00::3",
        host=None,
        status=None,
        reason=None,
        latency_ms=None,
        user_agent=None,
        content_type=None,
        flags=("pipelined", "gap", "no_response"),
        container="web",
        container_id=WEB,
        client_container="worker",
        client_container_id=WORKER,
    )
    plain = make(2, latency_ms=12.345678, request_bytes=2**40, target="/ünïcode?q=REDACTED")
    asyncio.run(write_and_close(db, 1000, [full, plain]))
    _, stored = asyncio.run(read_back(db))
    assert sorted(stored, key=lambda x: x.ts) == sorted([full, plain], key=lambda x: x.ts)


def test_the_table_has_one_column_per_exchange_field(tmp_path):
    db = tmp_path / "x.db"
    asyncio.run(write_and_close(db, 10))
    with sqlite3.connect(db) as connection:
        columns = tuple(row[1] for row in connection.execute("PRAGMA table_info(exchanges)"))
    assert columns[:2] == ("id", "bucket")  # later migrations append columns: the set, not the order, is the contract
    assert sorted(columns[2:]) == sorted(EXCHANGE_FIELDS) and len(columns) == len(EXCHANGE_FIELDS) + 2


# Files, schema, damage


def test_data_directory_is_0700_and_database_files_0600(tmp_path):
    db = tmp_path / "new" / "dir" / "x.db"
    before = mode(tmp_path)
    old_umask = os.umask(0o022)
    try:

        async def scenario():
            store = await open_store(db, 10)
            await store.write([served_by_web(0)])
            files = {path.name: mode(path) for path in db.parent.iterdir()}
            await store.close()
            return files

        files = asyncio.run(scenario())
    finally:
        os.umask(old_umask)
    assert mode(db.parent) == 0o700
    assert files == {"x.db": 0o600, "x.db-wal": 0o600, "x.db-shm": 0o600, "x.db.lock": 0o600}
    assert mode(tmp_path) == before  # a directory that existed is left as it was


def test_schema_version_is_recorded(tmp_path):
    db = tmp_path / "x.db"
    asyncio.run(write_and_close(db, 10))
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 1


@pytest.mark.parametrize("readonly", [False, True])
def test_a_database_from_a_newer_version_is_refused(tmp_path, readonly):
    db = tmp_path / "x.db"
    asyncio.run(write_and_close(db, 10))
    with sqlite3.connect(db) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this eyes-devine") as raised:
        asyncio.run(open_store(db, 10, readonly=readonly))
    assert "\n" not in str(raised.value)


def test_another_programs_sqlite_database_is_refused(tmp_path):
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(StoreError, match="not an eyes-devine one"):
        asyncio.run(open_store(db, 10))
    with sqlite3.connect(db) as connection:  # refused before anything was changed
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert connection.execute("PRAGMA user_version").fetchone() == (0,)


@pytest.mark.parametrize("readonly", [False, True])
def test_a_file_that_is_not_sqlite_is_refused_in_one_line(tmp_path, readonly):
    db = tmp_path / "x.db"
    db.write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(StoreError, match="damaged or not an eyes-devine database") as raised:
        asyncio.run(open_store(db, 10, readonly=readonly))
    assert "\n" not in str(raised.value)


def test_a_damaged_database_is_refused(tmp_path):
    db = tmp_path / "x.db"
    asyncio.run(write_and_close(db, 5000, [served_by_web(i) for i in range(3000)]))
    with db.open("r+b") as damaged:
        damaged.seek(8192)
        damaged.write(os.urandom(db.stat().st_size - 8192))

    async def scenario():
        store = await open_store(db, 5000, readonly=True)
        try:
            await store.query(Query(limit=None))
        finally:
            await store.close()

    with pytest.raises(StoreError, match="damaged"):
        asyncio.run(scenario())


def test_reading_a_missing_database_says_to_start_run_and_creates_nothing(tmp_path):
    db = tmp_path / "missing" / "x.db"
    with pytest.raises(StoreError, match="eyes-devine run"):
        asyncio.run(open_store(db, 10, readonly=True))
    assert not db.parent.exists()


def test_a_read_only_store_refuses_to_write(tmp_path):
    db = tmp_path / "x.db"
    asyncio.run(write_and_close(db, 10))

    async def scenario():
        store = await open_store(db, 10, readonly=True)
        try:
            await store.write([make(0)])
        finally:
            await store.close()

    with pytest.raises(StoreError, match="read-only"):
        asyncio.run(scenario())


def test_a_path_that_cannot_be_created_is_a_store_error(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StoreError, match="choose another --db"):
        asyncio.run(open_store(tmp_path / "a-file" / "x.db", 10))


# Queries

STORED = [
    make(
        0, container="web", container_id=WEB, client_container="worker", client_container_id=WORKER, target="/api/users"
    ),
    make(1, container="web", container_id=WEB, method="POST", target="/api/orders", status=503),
    make(2, container="api", container_id=API, target="/health", status=404),
    make(3, client_container="worker", client_container_id=WORKER, target="/external%20x", method="get"),
    make(4, target="/unattributed", status=500),
]


@pytest.fixture(scope="module")
def query_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("query") / "x.db"
    asyncio.run(write_and_close(db, 1000, STORED))
    return db


def found(db: Path, **filters: object) -> list[str]:
    _, exchanges = asyncio.run(read_back(db, q=Query(**filters)))
    return [x.target for x in exchanges]


def test_a_query_returns_newest_first(query_db):
    assert found(query_db) == [x.target for x in reversed(STORED)]


@pytest.mark.parametrize(
    ("container", "targets"),
    [
        ("web", ["/api/orders", "/api/users"]),
        ("worker", ["/external%20x", "/api/users"]),  # the caller matches too
        ("0b0b", ["/health"]),
        ("0B0B0B", ["/health"]),
        (API + "f" * 52, ["/health"]),  # a full 64-character id
        ("we", []),  # names match exactly, not by prefix
        ("nothing", []),
    ],
)
def test_container_matches_either_end_by_name_or_id_prefix(query_db, container, targets):
    assert found(query_db, container=container) == targets


def test_status_filters_by_class_and_by_code(query_db):
    assert found(query_db, status=parse_status("5xx")) == ["/unattributed", "/api/orders"]
    assert found(query_db, status=parse_status("404")) == ["/health"]


def test_method_is_case_insensitive(query_db):
    assert found(query_db, method="post") == ["/api/orders"]
    assert found(query_db, method="GET") == ["/unattributed", "/external%20x", "/health", "/api/users"]


def test_path_contains_is_a_plain_substring(query_db):
    assert found(query_db, path_contains="/api/") == ["/api/orders", "/api/users"]
    assert found(query_db, path_contains="%20") == ["/external%20x"]
    assert found(query_db, path_contains="%") == ["/external%20x"]  # not a LIKE wildcard
    assert found(query_db, path_contains="_") == []


def test_since_and_limit(query_db):
    assert found(query_db, since=T0 + 0.003) == ["/unattributed", "/external%20x"]
    assert found(query_db, limit=2) == ["/unattributed", "/external%20x"]
    assert found(query_db, container="web", status=(500, 599), limit=1) == ["/api/orders"]


def test_a_limit_below_one_is_refused():
    with pytest.raises(ValueError, match="limit"):
        Query(limit=0)


@pytest.mark.parametrize(("text", "expected"), [("5xx", (500, 599)), ("4XX", (400, 499)), ("404", (404, 404))])
def test_parse_status(text, expected):
    assert parse_status(text) == expected


@pytest.mark.parametrize("text", ["", "6xx", "600", "40", "4040", "5x", "abc", "200,201"])
def test_parse_status_names_what_it_refuses(text):
    with pytest.raises(ValueError, match="neither a code like 404 nor a class like 5xx") as raised:
        parse_status(text)
    assert repr(text) in str(raised.value)


@pytest.mark.parametrize(("text", "ago"), [("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1.5h", 5400)])
def test_parse_since_durations(text, ago):
    assert parse_since(text, now=T0) == T0 - ago


def test_parse_since_timestamps():
    assert parse_since("2024-05-01T12:00:00+00:00", now=0) == T0
    assert parse_since("2024-05-01T12:00:00Z", now=0) == T0
    naive = datetime(2024, 5, 1, 12, 0, 0)
    assert parse_since("2024-05-01T12:00:00", now=0) == naive.timestamp()  # local time
    assert parse_since("2024-05-01", now=0) == datetime(2024, 5, 1).timestamp()
    assert datetime.fromtimestamp(T0, UTC).hour == 12


@pytest.mark.parametrize("text", ["", "10", "10x", "-5m", "yesterday", "2024-13-01"])
def test_parse_since_names_what_it_refuses(text):
    with pytest.raises(ValueError, match="neither a duration like 90s") as raised:
        parse_since(text, now=T0)
    assert "\n" not in str(raised.value)


# The batch writer


def test_a_record_reaches_disk_within_the_batch_window(tmp_path, record_property):
    db = tmp_path / "x.db"
    writer = StoreWriter(db, 1000)
    writer.start()

    async def scenario() -> list[float]:
        reader = await open_store(db, 1000, readonly=True)
        latencies = []
        for n in range(4):
            await asyncio.sleep(0.07 * n)  # land at different points of the flush rhythm
            started = time.perf_counter()
            await asyncio.to_thread(writer.accept, make(n, target=f"/probe/{n}"))  # from another thread, as capture
            while not await reader.query(Query(path_contains=f"/probe/{n}")):
                assert time.perf_counter() - started < 1.0, "a record took more than a second to reach the database"
                await asyncio.sleep(0.005)
            latencies.append(time.perf_counter() - started)
        await reader.close()
        return latencies

    latencies = asyncio.run(scenario())
    writer.close()
    record_property("max_latency_ms", round(max(latencies) * 1000, 1))
    print(f"accept-to-visible latencies (ms): {[round(s * 1000, 1) for s in latencies]}")


def test_records_beyond_the_queue_bound_are_dropped_and_counted(tmp_path):
    db = tmp_path / "x.db"
    writer = StoreWriter(db, 1000, max_pending=100, batch_size=40)
    for i in range(250):  # before the writer's thread runs, so the queue only fills
        writer.accept(served_by_web(i))
    assert writer.pending == 100 and writer.dropped == writer.dropped_full == 150
    writer.start()
    writer.close()
    assert writer.written == 100 and writer.dropped == 150 and writer.pending == 0
    assert writer.counters() == (250, 100, 150)
    counts, stored = asyncio.run(read_back(db))
    assert counts == {WEB: 100} and stored[-1].target == "/items/0"


def test_close_writes_everything_still_queued(tmp_path):
    db = tmp_path / "x.db"
    batches: list[int] = []
    writer = StoreWriter(db, 10_000, on_batch=lambda exchanges, flows, seconds: batches.append(exchanges))
    writer.start()
    for i in range(1234):
        writer.accept(served_by_web(i))
    writer.close()
    assert writer.written == 1234 and writer.dropped == 0
    assert sum(batches) == 1234 and max(batches) <= 500 and writer.batches == len(batches)
    counts, _ = asyncio.run(read_back(db))
    assert counts == {WEB: 1234}


def test_exchanges_and_flows_share_one_writer_and_are_counted_apart(tmp_path):
    db = tmp_path / "x.db"
    writer = StoreWriter(db, 1000)
    writer.start()
    for i in range(3):
        writer.accept(served_by_web(i))
        writer.accept(flow(i, "dns", container="web", container_id=WEB))
    writer.close()
    assert (writer.written, writer.flows_written, writer.dropped, writer.flows_dropped) == (3, 3, 0, 0)
    assert sqlite3.connect(db).execute("SELECT count(*) FROM flows").fetchone() == (3,)


def test_a_database_that_cannot_be_opened_fails_start_with_one_line(tmp_path):
    (tmp_path / "x.db").write_bytes(b"not a database at all" * 100)
    writer = StoreWriter(tmp_path / "x.db", 1000)
    with pytest.raises(StoreError, match="damaged or not an eyes-devine database"):
        writer.start()


def wait_for(condition, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"the writer did not get there in {seconds} s"
        time.sleep(0.01)


def test_failed_writes_are_counted_by_kind_told_once_and_writing_goes_on(tmp_path):
    db = tmp_path / "x.db"
    errors: list[str] = []
    recovered: list[tuple[int, int]] = []
    writer = StoreWriter(db, 1000, on_error=errors.append,
                         on_recovered=lambda batches, records: recovered.append((batches, records)))
    writer.start()
    with sqlite3.connect(db) as other:  # another process breaking the database under us
        other.execute("DROP TABLE exchanges")
    for failed in range(1, 4):
        for i in range(10):
            writer.accept(served_by_web(i))
        wait_for(lambda failed=failed: writer.failed_batches == failed)
    with sqlite3.connect(db) as other:
        for migration in (*MIGRATIONS[:2], MIGRATIONS[3], MIGRATIONS[5][:1], MIGRATIONS[6]):  # the exchanges table
            for statement in migration:
                other.execute(statement)
    for i in range(5):
        writer.accept(served_by_web(i))
    wait_for(lambda: writer.written)
    writer.close()
    assert writer.failed_batches == 3 and writer.dropped_failed == 30 and writer.dropped == 30
    assert writer.written == 5 and writer.counters() == (35, 5, 30)
    assert errors == [f"{db}: no such table: exchanges"], "one line for the kind, not one per batch"
    assert recovered == [(3, 30)]
    assert writer.losses() == {f"in 3 failed batches: {db}: no such table: exchanges": 30}


def test_a_batch_still_being_written_when_close_gives_up_counts_as_not_written_once(tmp_path):
    db = tmp_path / "x.db"
    writer = StoreWriter(db, 1000)
    writer.start()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock: the batch waits for it
    for i in range(10):
        writer.accept(served_by_web(i))
    wait_for(lambda: not writer.pending)
    writer.close(0.5)
    assert writer.counters() == (10, 0, 10), "every record is written or counted, even one in flight"
    assert writer.losses() == {"not written within 0.5 s of stop": 10}
    other.execute("ROLLBACK")  # the stuck write goes through now, too late to count
    wait_for(lambda: other.execute("SELECT count(*) FROM exchanges").fetchone() == (10,), 5)
    other.close()
    assert writer.counters() == (10, 0, 10)


def test_a_database_that_fails_at_open_in_an_unforeseen_way_fails_start_in_one_line(tmp_path):
    db = tmp_path / "x.db"
    asyncio.run(write_and_close(db, 10, [served_by_web(0)]))
    writer = StoreWriter(db, 2**70)  # trimming at open passes a number SQLite cannot hold: OverflowError
    with pytest.raises(StoreError, match="OverflowError"):
        writer.start()


READER_SCRIPT = """
import asyncio, sys
from eyes_devine.adapters.store.query import Query
from eyes_devine.adapters.store.sqlite import open_store

async def main(path, expected):
    store = await open_store(path, 1000, readonly=True)
    print("ready", flush=True)
    queries = 0
    while sum((await store.counts()).values()) < expected:
        await store.query(Query(limit=100))
        await store.query(Query(container="000000000001", status=(200, 299), path_contains="/items/"))
        queries += 1
    await store.close()
    print(queries, flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def test_another_process_reads_while_20k_rows_are_written_without_lock_errors(tmp_path):
    db = tmp_path / "x.db"
    rows = 20_000

    async def scenario() -> tuple[int, bytes, StoreWriter]:
        await (await open_store(db, 100_000)).close()  # created and migrated before the reader starts
        reader = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            READER_SCRIPT,
            str(db),
            str(rows),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert reader.stdout is not None
        assert await asyncio.wait_for(reader.stdout.readline(), 10) == b"ready\n"
        writer = StoreWriter(db, 100_000)
        await asyncio.to_thread(writer.start)

        def produce() -> None:
            for i in range(rows):
                writer.accept(make(i, container="web", container_id=f"{i % 4:012x}"))
                if i % 1000 == 999:
                    time.sleep(0.02)  # a steady load over about half a second, not one burst

        await asyncio.to_thread(produce)
        await asyncio.to_thread(writer.close)
        out, err = await asyncio.wait_for(reader.communicate(), 15)
        return int(out), err, writer

    queries, err, writer = asyncio.run(scenario())
    assert err == b"", err.decode()
    assert queries > 0 and writer.written == rows and writer.dropped == 0
    counts, _ = asyncio.run(read_back(db, q=Query(limit=1)))
    assert sum(counts.values()) == rows


WRITER_SCRIPT = (
    MAKE_EXCHANGE
    + """
import sys, time
from eyes_devine.adapters.store.writer import StoreWriter

written = 0

def on_batch(exchanges, flows, seconds):
    global written
    written += exchanges
    print(written, flush=True)  # after the commit: everything up to here is on disk

writer = StoreWriter(sys.argv[1], 1_000_000, batch_size=200, on_batch=on_batch)
writer.start()
i = 0
while True:
    writer.accept(make(i, container_id=f"{i % 8:012x}"))
    i += 1
    if i % 100 == 0:
        time.sleep(0.001)
"""
)


def test_after_kill_9_under_load_the_database_is_intact_and_holds_every_acknowledged_batch(tmp_path):
    db = tmp_path / "x.db"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first, "the writer died before its first batch"
        time.sleep(0.6)  # under load; the kill lands wherever the writer happens to be
    finally:
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate()
    assert child.returncode == -signal.SIGKILL, err
    complete = [first] + [line for line in out.splitlines(keepends=True) if line.endswith("\n")]
    acknowledged = int(complete[-1])
    assert acknowledged >= 2000, "the writer made too little progress to test anything"

    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        (stored,) = connection.execute("SELECT count(*) FROM exchanges").fetchone()
    # Every acknowledged batch is there; at most the one committed as the kill landed is extra.
    assert acknowledged <= stored <= acknowledged + 200

    async def restart() -> int:
        store = await open_store(db, 1_000_000)
        try:
            return sum(len(exchanges) for exchanges in (await store.recent()).values())
        finally:
            await store.close()

    assert asyncio.run(restart()) == stored


def test_a_version_1_database_is_migrated_and_keeps_its_rows(tmp_path):
    db = tmp_path / "v1.db"
    with sqlite3.connect(db) as old:
        for statement in MIGRATIONS[0]:
            old.execute(statement)
        old.execute("INSERT INTO exchanges (bucket, ts, interface, client_ip, client_port, server_ip, server_port,"
                    " method, target, http_version, request_bytes, response_bytes, flags)"
                    " VALUES ('unattributed', 1.0, 'docker0', '10.0.0.1', 40000, '10.0.0.2', 80, 'GET', '/old',"
                    " '1.1', 0, 0, '')")
        old.execute("PRAGMA user_version = 1")

    async def reopen() -> list:
        store = await open_store(db)
        try:
            return await store.query(Query())
        finally:
            await store.close()

    [row] = asyncio.run(reopen())
    assert (row.target, row.alerts, row.peer.country, row.peer.reputation) == ("/old", (), None, None)
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_keep_holds_per_observer_and_container_and_queries_filter_by_observer(tmp_path):
    db = tmp_path / "x.db"
    first = [served_by_web(i, observer="host-a") for i in range(30)]
    second = [served_by_web(i, observer="host-b") for i in range(30, 45)]
    asyncio.run(write_and_close(db, 20, first, second))
    _counts, stored = asyncio.run(read_back(db))
    assert sorted(stored, key=lambda x: x.ts) == first[10:] + second, "each host's newest 20, not the newest 20"
    _counts, only_b = asyncio.run(read_back(db, q=Query(limit=None, observer="host-b")))
    assert sorted(only_b, key=lambda x: x.ts) == second


def test_a_database_an_older_run_writes_is_read_with_no_observer(tmp_path):
    db = tmp_path / "x.db"
    with sqlite3.connect(db) as connection:  # schema 5, as the eyes-devine before observers left it
        for migration in MIGRATIONS[:5]:
            for statement in migration:
                connection.execute(statement)
        connection.execute("PRAGMA user_version = 5")
        connection.execute("INSERT INTO exchanges (bucket, ts, interface, client_ip, client_port, server_ip, "
                           "server_port, method, target, http_version, request_bytes, response_bytes, flags) "
                           f"VALUES ('{UNATTRIBUTED}', 1.5, 'lo', '10.0.0.1', 1, '10.0.0.2', 80, 'GET', '/', '1.1', "
                           "0, 0, '')")
    _counts, [x] = asyncio.run(read_back(db))
    assert x.target == "/" and x.observer is None
    _counts, none = asyncio.run(read_back(db, q=Query(limit=None, observer="vm")))
    assert none == []

    async def upgrade() -> None:
        store = await open_store(db, observer="vm")  # the file's one writer: its rows were this host's
        await store.close()

    asyncio.run(upgrade())
    _counts, [x] = asyncio.run(read_back(db, q=Query(limit=None, observer="vm")))
    assert x.target == "/" and x.observer == "vm"
