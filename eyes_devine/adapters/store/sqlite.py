"""Where exchanges are kept: ring buffers in memory, and SQLite on disk.

Two views of the same bound.  :class:`RingBuffers` holds the last ``keep``
exchanges of each bucket (a container, or ``unattributed``) for the live views;
:class:`ExchangeStore` persists them to one SQLite file, trimmed to the same
``keep`` per bucket, so a restart reloads the rings and `requests` can query
what a running monitor is writing.

Capture must never wait for the disk.  :class:`BatchWriter` sits between them:
the capture thread drops records into a bounded queue (counting what does not
fit), and one asyncio task writes them in batches, by count or at least every
``flush_interval`` seconds, each batch one transaction.  The database runs in WAL
mode, so readers (`requests`, read-only connections) never block the writer and
never see "database is locked"; with ``synchronous=NORMAL`` a committed batch
survives the process being killed (only an OS crash can lose the last batches).

Errors: everything this module raises on purpose is a :class:`StoreError` with
a one-line message that says what to do; :class:`ValueError` is for filters a
user typed (:func:`parse_status`, :func:`parse_since`, :class:`Query`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import aiosqlite

from eyes_devine.records import (
    EXCHANGE_FIELDS,
    FLOW_FIELDS,
    NO_ATTRIBUTION,
    NO_PEER,
    Exchange,
    Flow,
    bucket_of,
    exchange_from_values,
    exchange_values,
    flow_from_values,
    flow_values,
)

T = TypeVar("T")

DEFAULT_KEEP = 1000
DEFAULT_BATCH_SIZE = 500
DEFAULT_MAX_PENDING = 100_000
DEFAULT_FLUSH_INTERVAL = 0.2
"""Seconds between flushes of a partial batch: 0.2 leaves room for the write itself within the 250 ms promise."""


log = logging.getLogger(__name__)


class StoreError(Exception):
    """The database cannot be used; the message is one line and carries the fix."""


class RingBuffers:
    """The last ``keep`` exchanges of each bucket, oldest first, for the live views.

    One thread adds (the one that owns the pipeline's sinks); any thread may read
    through :meth:`buckets`, :meth:`get` and :meth:`names`, which copy in C under
    the GIL and so hand out consistent snapshots without a lock.
    """

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, not {keep}")
        self.keep = keep
        self._rings: dict[str, deque[Exchange]] = {}
        self._names: dict[str, str] = {}

    def add(self, x: Exchange) -> str:
        """Append ``x`` to its bucket (the oldest falls out when full) and return the bucket."""
        bucket = bucket_of(x)
        ring = self._rings.get(bucket)
        if ring is None:
            ring = self._rings[bucket] = deque(maxlen=self.keep)
        ring.append(x)
        attribution = x.attribution
        name = (attribution.container if attribution.container_id
                else attribution.client_container if attribution.client_container_id else None)
        if name and self._names.get(bucket) != name:
            self._names[bucket] = name
        return bucket

    def add_many(self, exchanges: Iterable[Exchange]) -> None:
        """Add in order; used to reload from :meth:`ExchangeStore.recent` at start."""
        for x in exchanges:
            self.add(x)

    def buckets(self) -> dict[str, tuple[Exchange, ...]]:
        """A snapshot of every bucket, oldest exchange first."""
        return {bucket: tuple(ring) for bucket, ring in self._rings.copy().items()}

    def get(self, bucket: str) -> tuple[Exchange, ...]:
        """A snapshot of one bucket, oldest first; empty for a bucket never seen."""
        ring = self._rings.get(bucket)
        return tuple(ring) if ring is not None else ()

    def name(self, bucket: str) -> str:
        """The latest container name seen for a bucket's id (the id itself until a name was seen)."""
        return self._names.get(bucket, bucket)

    def names(self) -> dict[str, str]:
        """Bucket → latest container name, for the buckets that have one."""
        return self._names.copy()

    @property
    def total(self) -> int:
        return sum(len(ring) for ring in self._rings.copy().values())


# The schema: each entry brings the database from version N to N+1 and is never
# edited once released; add a new entry instead.  Columns mirror Exchange, with
# flags space-joined (they are identifiers from a fixed vocabulary) and a bucket
# column so trimming and reloading walk one index.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE exchanges (
            id INTEGER PRIMARY KEY,
            bucket TEXT NOT NULL,
            ts REAL NOT NULL,
            interface TEXT NOT NULL,
            client_ip TEXT NOT NULL,
            client_port INTEGER NOT NULL,
            server_ip TEXT NOT NULL,
            server_port INTEGER NOT NULL,
            method TEXT NOT NULL,
            target TEXT NOT NULL,
            host TEXT,
            http_version TEXT NOT NULL,
            status INTEGER,
            reason TEXT,
            latency_ms REAL,
            request_bytes INTEGER NOT NULL,
            response_bytes INTEGER NOT NULL,
            user_agent TEXT,
            content_type TEXT,
            flags TEXT NOT NULL,
            container TEXT,
            client_container TEXT,
            container_id TEXT,
            client_container_id TEXT
        )""",
        "CREATE INDEX exchanges_bucket_id ON exchanges (bucket, id)",
        "CREATE INDEX exchanges_ts ON exchanges (ts)",
    ),
    (
        # Security monitoring: rule ids (space-joined like flags), and where the public end is and how it is rated.
        "ALTER TABLE exchanges ADD COLUMN alerts TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE exchanges ADD COLUMN country TEXT",
        "ALTER TABLE exchanges ADD COLUMN city TEXT",
        "ALTER TABLE exchanges ADD COLUMN latitude REAL",
        "ALTER TABLE exchanges ADD COLUMN longitude REAL",
        "ALTER TABLE exchanges ADD COLUMN reputation TEXT",
        "CREATE INDEX exchanges_alerted ON exchanges (ts) WHERE alerts != ''",
    ),
    (
        # Flows beyond HTTP (--all-traffic): columns mirror eyes_devine.core.flows.Flow; bucketed like exchanges.
        """CREATE TABLE flows (
            id INTEGER PRIMARY KEY,
            bucket TEXT NOT NULL,
            ts_first REAL NOT NULL,
            ts_last REAL NOT NULL,
            interface TEXT NOT NULL,
            transport TEXT NOT NULL,
            protocol TEXT NOT NULL,
            client_ip TEXT NOT NULL,
            client_port INTEGER NOT NULL,
            server_ip TEXT NOT NULL,
            server_port INTEGER NOT NULL,
            client_packets INTEGER NOT NULL,
            client_bytes INTEGER NOT NULL,
            server_packets INTEGER NOT NULL,
            server_bytes INTEGER NOT NULL,
            sni TEXT,
            detail TEXT,
            ended TEXT NOT NULL,
            container TEXT,
            client_container TEXT,
            container_id TEXT,
            client_container_id TEXT,
            country TEXT,
            city TEXT,
            latitude REAL,
            longitude REAL,
            reputation TEXT
        )""",
        "CREATE INDEX flows_bucket_id ON flows (bucket, id)",
        "CREATE INDEX flows_ts_last ON flows (ts_last)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = ", ".join(EXCHANGE_FIELDS)
_INSERT = f"INSERT INTO exchanges (bucket, {_COLUMNS}) VALUES ({', '.join('?' * (len(EXCHANGE_FIELDS) + 1))})"
_TRIM = (
    "DELETE FROM exchanges WHERE bucket = ? AND id <= "
    "(SELECT id FROM exchanges WHERE bucket = ? ORDER BY id DESC LIMIT 1 OFFSET ?)"
)
_FLAGS = EXCHANGE_FIELDS.index("flags")
_ALERTS = EXCHANGE_FIELDS.index("alerts")


def _row(x: Exchange) -> tuple[object, ...]:
    values = list(exchange_values(x))
    values[_FLAGS] = " ".join(x.flags)
    values[_ALERTS] = " ".join(x.alerts)
    return (bucket_of(x), *values)


_FLOW_COLUMNS = ", ".join(FLOW_FIELDS)
_INSERT_FLOW = f"INSERT INTO flows (bucket, {_FLOW_COLUMNS}) VALUES ({', '.join('?' * (len(FLOW_FIELDS) + 1))})"
_TRIM_FLOWS = _TRIM.replace("exchanges", "flows")


def _flow_row(flow: Flow) -> tuple[object, ...]:
    return (bucket_of(flow), *flow_values(flow))


_REPEATED = ("interface", "client_ip", "server_ip", "method", "host", "http_version", "reason", "user_agent",
             "content_type", "container", "client_container", "container_id", "client_container_id", "country",
             "city", "reputation")
"""Fields whose values repeat across a container's exchanges: held once each (sys.intern), they cut the
memory of 100 containers x 1000 exchanges by about a third."""
_REPEATED_INDEXES = tuple(EXCHANGE_FIELDS.index(name) for name in _REPEATED)
_MAX_SHARED = 4096
_shared_parts: dict[object, object] = {}


def _shared(part: T) -> T:
    """One object for equal attributions and peers read back, as attribution shares them when it builds them."""
    found = _shared_parts.get(part)
    if found is None:
        if len(_shared_parts) >= _MAX_SHARED:
            _shared_parts.clear()
        found = _shared_parts[part] = part
    return found  # type: ignore[return-value]


def _exchange(row: sqlite3.Row | tuple[object, ...]) -> Exchange:
    values = list(row)
    values[_FLAGS] = tuple(str(values[_FLAGS]).split())
    values[_ALERTS] = tuple(str(values[_ALERTS]).split())
    for index in _REPEATED_INDEXES:
        value = values[index]
        if value.__class__ is str:
            values[index] = sys.intern(value)  # type: ignore[arg-type]
    x = exchange_from_values(values)
    if x.attribution is NO_ATTRIBUTION and x.peer is NO_PEER:
        return x
    return x._replace(attribution=_shared(x.attribution), peer=_shared(x.peer))


def _error(path: Path, error: sqlite3.Error | OSError) -> StoreError:
    """Turn what SQLite or the OS said into one line with the fix."""
    text = str(error)
    if isinstance(error, PermissionError) or "readonly database" in text:
        return StoreError(f"cannot write {path}: {text}; run as the user that owns it (root: sudo), or choose --db")
    if isinstance(error, OSError):
        return StoreError(f"cannot use {path}: {text}; choose another --db")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreError(f"{path} is damaged or not an eyes-devine database ({text}); move it aside or choose --db")
    if "unable to open" in text:
        return StoreError(f"cannot open {path} ({text}); check the path and its permissions, or choose --db")
    return StoreError(f"{path}: {text}")


@dataclass(frozen=True, slots=True)
class Query:
    """What `requests` asks for; every filter is optional and they combine with AND.

    ``container`` matches the serving or the calling container, by exact name or
    by id prefix (as the docker CLI does); ``status`` is an inclusive range from
    :func:`parse_status`; ``since`` is epoch seconds from :func:`parse_since`;
    ``alerted`` keeps exchanges that matched any suspicious-request rule, ``rule``
    those that matched that one (a whole rule id, as in eyes_devine.enrich.rules).
    """

    container: str | None = None
    status: tuple[int, int] | None = None
    method: str | None = None
    path_contains: str | None = None
    since: float | None = None
    limit: int | None = 100
    alerted: bool = False
    rule: str | None = None

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, not {self.limit}")


_HEX = re.compile(r"[0-9a-f]+")


def _where(q: Query) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if q.container:
        match = ["container = ?", "client_container = ?"]
        params += [q.container, q.container]
        prefix = q.container.lower()[:12]  # stored ids are short ids; a full id names the same container
        if _HEX.fullmatch(prefix):
            match += ["substr(container_id, 1, ?) = ?", "substr(client_container_id, 1, ?) = ?"]
            params += [len(prefix), prefix, len(prefix), prefix]
        clauses.append(f"({' OR '.join(match)})")
    if q.status is not None:
        clauses.append("status BETWEEN ? AND ?")
        params += list(q.status)
    if q.method:
        clauses.append("method = ? COLLATE NOCASE")
        params.append(q.method)
    if q.path_contains:
        clauses.append("instr(target, ?) > 0")  # a plain substring: no LIKE wildcards to escape
        params.append(q.path_contains)
    if q.since is not None:
        clauses.append("ts >= ?")
        params.append(q.since)
    if q.alerted or q.rule:
        clauses.append("alerts != ''")  # the exchanges_alerted index holds just these rows
    if q.rule:
        clauses.append("instr(' ' || alerts || ' ', ?) > 0")  # ids are space-joined: match whole ids
        params.append(f" {q.rule} ")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


@dataclass(frozen=True, slots=True)
class FlowQuery:
    """What `flows` asks for: ``container`` as in :class:`Query`, ``protocol`` a label such as dns or tls,
    ``since`` epoch seconds compared with each flow's last packet."""

    container: str | None = None
    protocol: str | None = None
    since: float | None = None
    limit: int | None = 100

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, not {self.limit}")


def _flow_where(q: FlowQuery) -> tuple[str, list[object]]:
    where, params = _where(Query(container=q.container, limit=None))
    clauses = [where.removeprefix(" WHERE ")] if where else []
    if q.protocol:
        clauses.append("protocol = ?")
        params.append(q.protocol.lower())
    if q.since is not None:
        clauses.append("ts_last >= ?")
        params.append(q.since)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


_STATUS = re.compile(r"([1-5])xx|([1-5]\d\d)", re.IGNORECASE)


def parse_status(text: str) -> tuple[int, int]:
    """ "404" → (404, 404); "5xx" → (500, 599)."""
    match = _STATUS.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"status {text!r} is neither a code like 404 nor a class like 5xx")
    if match[1]:
        low = int(match[1]) * 100
        return low, low + 99
    code = int(match[2])
    return code, code


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float) -> float:
    """ "10m" → ``now`` minus ten minutes; an ISO-8601 time (local unless it has an offset) → that time."""
    text = text.strip()
    match = _DURATION.fullmatch(text)
    if match:
        return now - float(match[1]) * _UNIT_SECONDS[match[2].lower()]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(
            f"since {text!r} is neither a duration like 90s, 10m, 2h, 1d nor a time like 2024-05-01T12:00:00"
        ) from None


class ExchangeStore:
    """One SQLite database of exchanges, at most ``keep`` per bucket; open it with :func:`open_store`."""

    def __init__(self, db: aiosqlite.Connection, path: Path, keep: int, readonly: bool) -> None:
        self._db = db
        self.path = path
        self.keep = keep
        self.readonly = readonly
        self._writing = asyncio.Lock()  # one transaction at a time on the one connection

    async def write(self, batch: list[Exchange]) -> None:
        """Insert a batch and trim the buckets it touched, in one transaction (all or nothing)."""
        await self._write([_row(x) for x in batch], _INSERT, _TRIM)

    async def _write(self, rows: list[tuple[object, ...]], insert: str, trim: str) -> None:
        """Rows whose first column is the bucket: inserted, then each touched bucket trimmed to ``keep``."""
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        if not rows:
            return
        trims = [(bucket, bucket, self.keep) for bucket in {row[0] for row in rows}]
        try:
            async with self._writing:
                await _in_transaction(self._db, (insert, rows), (trim, trims))
        except sqlite3.Error as error:
            raise _error(self.path, error) from None

    async def recent(self, keep: int | None = None) -> dict[str, list[Exchange]]:
        """The newest ``keep`` exchanges of each bucket, oldest first: what the ring buffers held."""
        keep = self.keep if keep is None else keep
        out: dict[str, list[Exchange]] = {}
        try:
            buckets = await self._db.execute_fetchall("SELECT DISTINCT bucket FROM exchanges")
            for (bucket,) in buckets:
                rows = await self._db.execute_fetchall(
                    f"SELECT {_COLUMNS} FROM exchanges WHERE bucket = ? ORDER BY id DESC LIMIT ?", (bucket, keep)
                )
                out[bucket] = [_exchange(row) for row in reversed(list(rows))]
        except sqlite3.Error as error:
            raise _error(self.path, error) from None
        return out

    async def query(self, q: Query) -> list[Exchange]:
        """Exchanges matching ``q``, newest first."""
        where, params = _where(q)
        sql = f"SELECT {_COLUMNS} FROM exchanges{where} ORDER BY ts DESC, id DESC"
        if q.limit is not None:
            sql += " LIMIT ?"
            params.append(q.limit)
        try:
            rows = await self._db.execute_fetchall(sql, params)
        except sqlite3.Error as error:
            raise _error(self.path, error) from None
        return [_exchange(row) for row in rows]

    async def after(self, last_id: int, limit: int = 5000) -> tuple[int, list[Exchange]]:
        """Exchanges stored after row ``last_id``, oldest first, and the id to ask after next time.

        What `watch --attach` polls: ids only grow, so nothing is seen twice or
        missed, whatever trimming removes behind the reader.
        """
        try:
            rows = await self._db.execute_fetchall(
                f"SELECT id, {_COLUMNS} FROM exchanges WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit))
        except sqlite3.Error as error:
            raise _error(self.path, error) from None
        rows = list(rows)
        return (rows[-1][0] if rows else last_id), [_exchange(row[1:]) for row in rows]

    async def last_id(self) -> int:
        """The newest row's id (0 when empty)."""
        try:
            rows = await self._db.execute_fetchall("SELECT coalesce(max(id), 0) FROM exchanges")
        except sqlite3.Error as error:
            raise _error(self.path, error) from None
        return int(list(rows)[0][0])

    async def counts(self) -> dict[str, int]:
        """Bucket → number of exchanges stored."""
        try:
            rows = await self._db.execute_fetchall("SELECT bucket, count(*) FROM exchanges GROUP BY bucket")
        except sqlite3.Error as error:
            raise _error(self.path, error) from None
        return {bucket: count for bucket, count in rows}

    async def write_flows(self, batch: list[Flow]) -> None:
        """Insert a batch of flow summaries and trim the buckets it touched to ``keep``, in one transaction."""
        await self._write([_flow_row(flow) for flow in batch], _INSERT_FLOW, _TRIM_FLOWS)

    async def query_flows(self, q: FlowQuery) -> list[Flow]:
        """Flow summaries matching ``q``, the latest to end first."""
        where, params = _flow_where(q)
        sql = f"SELECT {_FLOW_COLUMNS} FROM flows{where} ORDER BY ts_last DESC, id DESC"
        if q.limit is not None:
            sql += " LIMIT ?"
            params.append(q.limit)
        try:
            rows = await self._db.execute_fetchall(sql, params)
        except sqlite3.Error as error:
            raise _error(self.path, error) from None
        return [flow_from_values(row) for row in rows]

    async def close(self) -> None:
        """Close the connection (and its thread: an open one keeps the process alive)."""
        await self._db.close()

    async def _trim_all(self) -> None:
        """Bring every bucket down to ``keep``, for when it is smaller than in the last run."""
        buckets = await self._db.execute_fetchall("SELECT DISTINCT bucket FROM exchanges")
        trims = [(bucket, bucket, self.keep) for (bucket,) in buckets]
        flow_buckets = await self._db.execute_fetchall("SELECT DISTINCT bucket FROM flows")
        flow_trims = [(bucket, bucket, self.keep) for (bucket,) in flow_buckets]
        await _in_transaction(self._db, (_TRIM, trims), (_TRIM_FLOWS, flow_trims))


async def _in_transaction(db: aiosqlite.Connection, *steps: tuple[str, list[tuple[object, ...]]]) -> None:
    """Run each step's statement over its parameters, all in one write transaction or not at all."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        for sql, parameters in steps:
            await db.executemany(sql, parameters)
        await db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            await db.execute("ROLLBACK")
        raise


async def open_store(
    path: str | os.PathLike[str], keep: int = DEFAULT_KEEP, *, readonly: bool = False
) -> ExchangeStore:
    """Open (and for writing, create and migrate) the database at ``path``.

    Writing creates the directory 0700 and the files 0600, because exchanges carry
    URLs and addresses that other users of the host need not read.  Read-only
    never creates the database or its directory, so `requests` cannot leave an
    empty one behind (SQLite may add the -wal and -shm files it needs to read).
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    path = Path(path)
    if readonly:
        if not path.exists():
            raise StoreError(f"no database at {path}; start `eyes-devine run` first, or choose --db")
        if not os.access(path, os.R_OK):
            raise StoreError(f"cannot read {path}: permission denied; run as the user that runs `eyes-devine run`")
    else:
        try:
            _create_private(path)
        except OSError as error:
            raise _error(path, error) from None
    target = f"{path.resolve().as_uri()}?mode=ro" if readonly else str(path)
    try:
        db = await aiosqlite.connect(target, uri=readonly, isolation_level=None)
    except sqlite3.Error as error:
        raise _error(path, error) from None
    try:
        await db.execute("PRAGMA busy_timeout = 5000")
        # Checked before anything is changed, so another program's database is left as it was.
        version = await _schema_version(db, path)
        if readonly:
            _check_readable(version, path)
        else:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await _migrate(db, path)
            _private_like_db(path)
        store = ExchangeStore(db, path, keep, readonly)
        if not readonly:
            await store._trim_all()
    except sqlite3.Error as error:
        await db.close()
        raise _error(path, error) from None
    except BaseException:
        await db.close()
        raise
    return store


def _create_private(path: Path) -> None:
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        parent.chmod(0o700)  # mkdir's mode passes through the umask
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    path.chmod(0o600)


def _private_like_db(path: Path) -> None:
    """Give the -wal and -shm files the database's own permissions (0600 for a database we created)."""
    mode = path.stat().st_mode & 0o777
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists() and side.stat().st_mode & 0o777 != mode:
            side.chmod(mode)


async def _schema_version(db: aiosqlite.Connection, path: Path) -> int:
    (version,), *_ = await db.execute_fetchall("PRAGMA user_version")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, newer than this eyes-devine knows ({SCHEMA_VERSION}); "
            "upgrade eyes-devine or choose another --db"
        )
    if version == 0:
        (tables,), *_ = await db.execute_fetchall("SELECT count(*) FROM sqlite_master")
        if tables:
            raise StoreError(f"{path} is an SQLite database but not an eyes-devine one; choose another --db")
    return int(version)


def _check_readable(version: int, path: Path) -> None:
    if version == 0:
        raise StoreError(f"{path} holds no exchanges yet; start `eyes-devine run` first")
    if version < SCHEMA_VERSION:
        raise StoreError(f"{path} has an older schema (version {version}); `eyes-devine run` upgrades it")


async def _migrate(db: aiosqlite.Connection, path: Path) -> None:
    """Apply the missing migrations, each in its own transaction with the version bump."""
    while True:
        await db.execute("BEGIN IMMEDIATE")
        try:
            version = await _schema_version(db, path)  # again, under the write lock: another writer may have won
            if version == SCHEMA_VERSION:
                await db.execute("COMMIT")
                return
            for statement in MIGRATIONS[version]:
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {version + 1}")
            await db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                await db.execute("ROLLBACK")
            raise


class BatchWriter:
    """Carries exchanges from the capture thread to the database without ever making capture wait.

    :meth:`submit` runs on one producer thread (not the event loop's) and only
    appends to a bounded deque; when the queue is full the record is dropped
    and counted.  A task on the loop writes up to ``batch_size`` records per
    transaction, as soon as that many wait or else every ``flush_interval``.
    A failed write is reported to ``on_error`` and its records counted as
    dropped; the task carries on with the next batch.
    """

    def __init__(
        self,
        store: ExchangeStore,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        on_batch: Callable[[int, float], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_alerts: Callable[[int], None] | None = None,
    ) -> None:
        if batch_size < 1 or max_pending < 1:
            raise ValueError("batch_size and max_pending must be at least 1")
        self.store = store
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.flush_interval = flush_interval
        self.on_batch = on_batch
        self.on_error = on_error
        self.on_alerts = on_alerts
        """Told how many exchanges of a stored batch matched a suspicious-request rule, when any did."""
        self.written = 0
        self.batches = 0
        self.failed_batches = 0
        self.dropped_full = 0
        """Records refused because the queue was full (counted by the producer thread only)."""
        self.dropped_failed = 0
        """Records of batches whose write failed (counted by the writer task only)."""
        self._pending: deque[Exchange] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._wake_requested = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def dropped(self) -> int:
        return self.dropped_full + self.dropped_failed

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        """Start the writer task; call from the event loop that will own it."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = self._loop.create_task(self._run(), name="eyes-devine store writer")

    def submit(self, x: Exchange) -> None:
        """Queue one exchange; never blocks (call from the single producer thread)."""
        pending = self._pending
        if self._closing or len(pending) >= self.max_pending:
            self.dropped_full += 1
            return
        pending.append(x)
        if len(pending) >= self.batch_size and not self._wake_requested and self._loop is not None:
            self._wake_requested = True  # one wake-up per full batch, not one per record
            try:
                self._loop.call_soon_threadsafe(self._wake_up)
            except RuntimeError:  # the loop has closed; the timer or close() drains the queue
                pass

    async def close(self) -> None:
        """Write everything still queued, then stop the task and close the store."""
        self._closing = True
        try:
            if self._task is None:
                self.start()  # never started: the task still drains the queue, then ends
            assert self._task is not None
            self._wake_up()
            await self._task
        finally:
            await self.store.close()  # an open connection's thread would keep the process alive

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None and self._loop is not None
        pending = self._pending
        clock = self._loop.time
        emptied_at = clock()
        while True:
            # Everything queued before emptied_at is written; what came after waits one interval at most.
            timeout = emptied_at + self.flush_interval - clock()
            if len(pending) < self.batch_size and not self._closing and timeout > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except TimeoutError:
                    pass
            self._wake.clear()
            self._wake_requested = False
            while True:
                emptied_at = clock()
                batch = [pending.popleft() for _ in range(min(self.batch_size, len(pending)))]
                if batch:
                    await self._write(batch)
                if len(batch) < self.batch_size:
                    break
            if self._closing and not pending:
                return

    async def _write(self, batch: list[Exchange]) -> None:
        started = time.perf_counter()
        try:
            await self.store.write(batch)
        except Exception as error:  # a full disk must not stop capture: count, report, go on
            self.failed_batches += 1
            self.dropped_failed += len(batch)
            (self.on_error or _log_error)(error)
            return
        self.written += len(batch)
        self.batches += 1
        if self.on_batch is not None:
            self.on_batch(len(batch), time.perf_counter() - started)
        if self.on_alerts is not None:
            alerted = sum(1 for x in batch if x.alerts)
            if alerted:
                self.on_alerts(alerted)


class FlowWrites:
    """The flow side of an :class:`ExchangeStore`, shaped as a :class:`BatchWriter`'s store.

    A second BatchWriter over it carries flow summaries with the same bounded,
    never-blocking queue; closing it leaves the store open for the exchanges'
    writer, which closes it last.
    """

    def __init__(self, store: ExchangeStore) -> None:
        self.store = store

    async def write(self, batch: list[Flow]) -> None:
        await self.store.write_flows(batch)

    async def close(self) -> None:
        """Nothing: the store belongs to the exchanges' writer."""


def _log_error(error: Exception) -> None:
    log.warning("could not store a batch of exchanges: %s", error)
