"""The SQLite database: exchanges and flow summaries, at most ``keep`` per container, under a versioned schema.

Each bucket (a container's id, or ``unattributed``) holds at most ``keep``
exchanges and ``keep`` flows; every write trims the buckets it touched in the
same transaction, so a restart finds the same bound and `requests` can query
what a running monitor is writing.  The database runs in WAL mode, so readers
(`requests`, read-only connections) never block the writer and never see
"database is locked"; with ``synchronous=NORMAL`` a committed batch survives the
process being killed (only an OS crash can lose the last batches).  The writer
that feeds it off the capture path is :mod:`eyes_devine.adapters.store.writer`.

Errors: everything this module raises on purpose is a :class:`StoreError` with
a one-line message that says what to do.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import aiosqlite

from eyes_devine.adapters.store.connection import connect
from eyes_devine.adapters.store.errors import StoreError
from eyes_devine.adapters.store.files import (
    FileId,
    a_directory,
    create_database,
    file_id,
    judge_files,
    open_directory,
)
from eyes_devine.adapters.store.inventory import (
    INVENTORY_SINCE,
    MAX_ENDED_TENURES,
    OBSERVERS,
    cap,
    select,
    tenure_of,
    tenure_row,
    upsert,
)
from eyes_devine.adapters.store.lock import WriterLock
from eyes_devine.adapters.store.query import FlowQuery, Query, flow_where_clause, where_clause
from eyes_devine.adapters.store.rows import (
    COLUMNS,
    FLOW_COLUMNS,
    exchange_of,
    exchange_row,
    flow_of,
    flow_row,
    status_of,
    status_row,
)
from eyes_devine.adapters.store.schema import (
    COLUMNS_SINCE,
    MIGRATIONS,
    OBSERVER_SINCE,
    READABLE_SINCE,
    SCHEMA_VERSION,
)
from eyes_devine.records import EXCHANGE_FIELDS, FLOW_FIELDS, ContainerTenure, Exchange, Flow, MonitorStatus

DEFAULT_KEEP = 1000


_INSERT = f"INSERT INTO exchanges (bucket, {COLUMNS}) VALUES ({', '.join('?' * (len(EXCHANGE_FIELDS) + 1))})"
_TRIM = (
    "DELETE FROM exchanges WHERE bucket = ? AND observer IS ? AND id <= "
    "(SELECT id FROM exchanges WHERE bucket = ? AND observer IS ? ORDER BY id DESC LIMIT 1 OFFSET ?)"
)
_INSERT_FLOW = f"INSERT INTO flows (bucket, {FLOW_COLUMNS}) VALUES ({', '.join('?' * (len(FLOW_FIELDS) + 1))})"
_TRIM_FLOWS = _TRIM.replace("exchanges", "flows")
_EXPIRE = "DELETE FROM exchanges WHERE ts < ?"
_EXPIRE_FLOWS = "DELETE FROM flows WHERE ts_last < ?"
_EXPIRE_TENURES = "DELETE FROM containers WHERE ended < ?"
_UPSERT_TENURE = upsert("?")
_CAP_TENURES = cap("?")
_STATUS = ("INSERT OR REPLACE INTO monitor_status (id, updated, started, pid, host, version, sniffers, stopped) "
           "VALUES (1, ?, ?, ?, ?, ?, ?, ?)")
_OBSERVER = 1 + EXCHANGE_FIELDS.index("observer")
_FLOW_OBSERVER = 1 + FLOW_FIELDS.index("observer")
"""Where a row (bucket first) holds the observer."""


def _readable(fields: tuple[str, ...], version: int) -> str:
    """The select list of ``fields`` for a database at ``version``: NULL for columns added after it."""
    return ", ".join("NULL" if COLUMNS_SINCE.get(name, 0) > version else name for name in fields)


def _trims(rows: list[tuple[object, ...]], keep: int, at: int = _OBSERVER) -> list[tuple[object, ...]]:
    """One trim per (bucket, observer) the rows touched (the observer at ``at``): --keep holds for each."""
    touched = {(row[0], row[at]) for row in rows}
    return [(bucket, observer, bucket, observer, keep) for bucket, observer in touched]


def _caps(observers: Iterable[object]) -> list[tuple[object, ...]]:
    """One bound of the ended tenures per observer whose inventory changed."""
    return [(observer, observer, MAX_ENDED_TENURES) for observer in set(observers)]


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


class ExchangeStore:
    """One SQLite database of exchanges, at most ``keep`` per bucket; open it with :func:`open_store`."""

    def __init__(self, db: aiosqlite.Connection, path: Path, keep: int, readonly: bool,
                 lock: WriterLock | None = None, retain: float | None = None, version: int = SCHEMA_VERSION) -> None:
        self._db = db
        self.path = path
        self.keep = keep
        self.retain = retain
        """Seconds a record is kept at most (--retain); None: only ``keep`` bounds the store."""
        self.readonly = readonly
        self._lock = lock
        """The one-writer lock (writing only), released at close."""
        self._writing = asyncio.Lock()  # one transaction at a time on the one connection
        self.version = version
        self._has_observer = version >= OBSERVER_SINCE
        """False for a database an older `run` still writes: its rows read with no observer."""
        self._columns = _readable(EXCHANGE_FIELDS, version)
        self._flow_columns = _readable(FLOW_FIELDS, version)

    async def write(self, exchanges: Sequence[Exchange], flows: Sequence[Flow] = (), key: object = None,
                    tenures: Sequence[ContainerTenure] = ()) -> None:
        """Insert exchanges and flow summaries, then trim the buckets they touched; store the inventory's tenures
        and bound it: one transaction, all or nothing.  ``key`` (PostgreSQL's idempotency key) is not needed: a
        local commit's outcome is known."""
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        rows = [exchange_row(x) for x in exchanges]
        flow_rows = [flow_row(flow) for flow in flows]
        tenure_rows = [tenure_row(tenure) for tenure in tenures]
        if not rows and not flow_rows and not tenure_rows:
            return
        try:
            async with self._writing:
                await _in_transaction(self._db, (_INSERT, rows), (_TRIM, _trims(rows, self.keep)),
                                      (_INSERT_FLOW, flow_rows),
                                      (_TRIM_FLOWS, _trims(flow_rows, self.keep, _FLOW_OBSERVER)),
                                      (_UPSERT_TENURE, tenure_rows),
                                      (_CAP_TENURES, _caps(row[0] for row in tenure_rows)), *self._expiry())
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
                    f"SELECT {self._columns} FROM exchanges WHERE bucket = ? ORDER BY id DESC LIMIT ?", (bucket, keep)
                )
                out[bucket] = [exchange_of(row) for row in reversed(list(rows))]
        except sqlite3.Error as error:
            raise _error(self.path, error) from None
        return out

    async def query(self, q: Query) -> list[Exchange]:
        """Exchanges matching ``q``, newest first."""
        if q.observer is not None and not self._has_observer:
            return []  # written before observers were recorded
        where, params = where_clause(q)
        sql = f"SELECT {self._columns} FROM exchanges{where} ORDER BY ts DESC, id DESC"
        if q.limit is not None:
            sql += " LIMIT ?"
            params.append(q.limit)
        try:
            rows = await self._db.execute_fetchall(sql, params)
        except sqlite3.Error as error:
            raise _error(self.path, error) from None
        return [exchange_of(row) for row in rows]

    async def after(self, last_id: int, limit: int = 5000) -> tuple[int, list[Exchange]]:
        """Exchanges stored after row ``last_id``, oldest first, and the id to ask after next time.

        What `watch --attach` polls: ids only grow, so nothing is seen twice or
        missed, whatever trimming removes behind the reader.
        """
        try:
            rows = await self._db.execute_fetchall(
                f"SELECT id, {self._columns} FROM exchanges WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit))
        except sqlite3.Error as error:
            raise _error(self.path, error) from None
        rows = list(rows)
        return (rows[-1][0] if rows else last_id), [exchange_of(row[1:]) for row in rows]

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

    async def query_flows(self, q: FlowQuery) -> list[Flow]:
        """Flow summaries matching ``q``, the latest to end first."""
        if q.observer is not None and not self._has_observer:
            return []
        where, params = flow_where_clause(q)
        sql = f"SELECT {self._flow_columns} FROM flows{where} ORDER BY ts_last DESC, id DESC"
        if q.limit is not None:
            sql += " LIMIT ?"
            params.append(q.limit)
        try:
            rows = await self._db.execute_fetchall(sql, params)
        except sqlite3.Error as error:
            raise _error(self.path, error) from None
        return [flow_of(row) for row in rows]

    async def inventory(self, observer: str | None = None, open_only: bool = False) -> list[ContainerTenure]:
        """The container tenures of ``observer`` (None: every observer's), oldest first; ``open_only``: those not
        ended.  StoreError for a database written before the inventory was kept."""
        self._check_inventory()
        statement, params = select("?", observer, open_only)
        try:
            rows = await self._db.execute_fetchall(statement, params)
            return [tenure_of(row) for row in rows]
        except sqlite3.Error as error:
            raise _error(self.path, error) from None
        except (ValueError, TypeError) as error:
            raise StoreError(f"{self.path}: a row of its container inventory is damaged ({error})") from None

    async def inventory_observers(self) -> dict[str, int]:
        """Observer → tenures the inventory holds of it."""
        self._check_inventory()
        try:
            return {str(observer): int(count) for observer, count in await self._db.execute_fetchall(OBSERVERS)}
        except sqlite3.Error as error:
            raise _error(self.path, error) from None

    def _check_inventory(self) -> None:
        if self.version < INVENTORY_SINCE:
            raise StoreError(f"{self.path} has no container inventory: it is written by an eyes-devine older than "
                             f"the inventory (schema {self.version}); upgrade the `run` that writes it")

    async def write_status(self, status: MonitorStatus) -> None:
        """Replace the monitor's status row (its own small transaction: proof that the database takes writes)."""
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        row = status_row(status)
        try:
            async with self._writing:  # and what --retain expired meanwhile, when no record came to do it
                await _in_transaction(self._db, (_STATUS, [row]), *self._expiry())
        except sqlite3.Error as error:
            raise _error(self.path, error) from None

    async def status(self) -> MonitorStatus | None:
        """What the `run` writing this database last said of itself; None when no run has said anything."""
        try:
            rows = list(await self._db.execute_fetchall(
                "SELECT updated, started, pid, host, version, sniffers, stopped FROM monitor_status WHERE id = 1"))
        except sqlite3.Error as error:
            if "no such table" in str(error):  # schema 4: written by an eyes-devine older than `health`
                raise StoreError(f"{self.path} is written by an older eyes-devine, which reports no status; "
                                 "upgrade the `run` that writes it") from None
            raise _error(self.path, error) from None
        if not rows:
            return None
        try:
            return status_of(rows[0])
        except (ValueError, TypeError) as error:
            raise StoreError(f"{self.path}: its status row is damaged ({error}); restart `eyes-devine run`") from None

    async def close(self) -> None:
        """Close the connection (and its thread: an open one keeps the process alive), then let go of the lock."""
        try:
            await self._db.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    async def _trim_all(self) -> None:
        """Bring every bucket down to ``keep``, for when it is smaller than in the last run, and drop what
        ``retain`` has expired since."""
        buckets = await self._db.execute_fetchall("SELECT DISTINCT bucket, observer FROM exchanges")
        trims = _trims([tuple(row) for row in buckets], self.keep, 1)
        flow_buckets = await self._db.execute_fetchall("SELECT DISTINCT bucket, observer FROM flows")
        flow_trims = _trims([tuple(row) for row in flow_buckets], self.keep, 1)
        observers = await self._db.execute_fetchall("SELECT DISTINCT observer FROM containers")
        await _in_transaction(self._db, (_TRIM, trims), (_TRIM_FLOWS, flow_trims),
                              (_CAP_TENURES, _caps(observer for (observer,) in observers)), *self._expiry())

    def _expiry(self) -> tuple[tuple[str, list[tuple[object, ...]]], ...]:
        """The deletes of records older than ``retain`` (a range on the ts indexes), or none."""
        if self.retain is None:
            return ()
        cutoff = [(time.time() - self.retain,)]
        return (_EXPIRE, cutoff), (_EXPIRE_FLOWS, cutoff), (_EXPIRE_TENURES, cutoff)


async def _in_transaction(db: aiosqlite.Connection, *steps: tuple[str, list[tuple[object, ...]]]) -> None:
    """Run each step's statement over its parameters, all in one write transaction or not at all."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        for sql, parameters in steps:
            if parameters:
                await db.executemany(sql, parameters)
        await db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            await db.execute("ROLLBACK")
        raise


async def open_store(
    path: str | os.PathLike[str], keep: int = DEFAULT_KEEP, *, readonly: bool = False, retain: float | None = None,
    observer: str | None = None,
) -> ExchangeStore:
    """Open (and for writing, lock, create and migrate) the database at ``path``.

    Writing takes the one-writer lock, creates the directory 0700 and the files
    0600 (exchanges carry URLs and addresses other users of the host need not
    read), and refuses links and directories others could write: see
    :mod:`~eyes_devine.adapters.store.files`.  Read-only never creates the
    database or its directory, so `requests` cannot leave an empty one behind
    (SQLite may add the -wal and -shm files it needs to read), and works on
    read-only storage.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    path = Path(path)
    lock, identity = _prepare(path, readonly)
    db: aiosqlite.Connection | None = None
    try:
        db = await connect(path, identity, readonly=readonly)
        await db.execute("PRAGMA busy_timeout = 5000")
        # Checked before anything is changed, so another program's database is left as it was.
        version = await _schema_version(db, path)
        if readonly:
            _check_readable(version, path)
        else:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await _migrate(db, path, observer)
        store = ExchangeStore(db, path, keep, readonly, lock, retain, version if readonly else SCHEMA_VERSION)
        if not readonly:
            await store._trim_all()
    except BaseException as error:
        if db is not None:
            await db.close()
        if lock is not None:
            lock.release()
        if isinstance(error, sqlite3.Error):
            raise _error(path, error) from None
        raise
    return store


def _prepare(path: Path, readonly: bool) -> tuple[WriterLock | None, FileId]:
    """Judge the directory and the files; for writing, take the lock and create what is missing."""
    if path.name in ("", ".", ".."):
        raise a_directory(path)
    try:
        directory = open_directory(path, writing=not readonly)
    except FileNotFoundError:
        raise StoreError(f"no database at {path}; start `eyes-devine run` first, or choose --db") from None
    try:
        status = judge_files(directory, path.name, writing=not readonly)
        if readonly:
            if status is None:
                raise StoreError(f"no database at {path}; start `eyes-devine run` first, or choose --db")
            if not directory.readable(path.name):
                raise StoreError(f"cannot read {path}: permission denied; run as the user that runs "
                                 "`eyes-devine run` (root: sudo), or choose --db")
            return None, file_id(status)
        lock = WriterLock.take(directory, path.name)
        try:
            if status is None:  # made here, or (if another process was quicker) judged once more
                status = create_database(directory, path.name) or judge_files(directory, path.name, writing=True)
            if status is None:
                raise StoreError(f"{path} vanished as it was created; try again")
        except BaseException:
            lock.release()
            raise
        return lock, file_id(status)
    except OSError as error:
        raise _error(path, error) from None
    finally:
        directory.close()


async def _schema_version(db: aiosqlite.Connection, path: Path) -> int:
    (version,), *_ = await db.execute_fetchall("PRAGMA user_version")
    if version < 0:  # no migration starts there: MIGRATIONS[-1] would be the newest one
        raise StoreError(f"{path} has schema version {version}, which no eyes-devine writes; move it aside or "
                         "choose another --db")
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
    if version < READABLE_SINCE:
        raise StoreError(f"{path} has an older schema (version {version}); `eyes-devine run` upgrades it")


async def _migrate(db: aiosqlite.Connection, path: Path, observer: str | None) -> None:
    """Apply the missing migrations, each in its own transaction with the version bump (``observer``: who the
    records stored before observers were recorded are labelled with)."""
    while True:
        await db.execute("BEGIN IMMEDIATE")
        try:
            version = await _schema_version(db, path)  # again, under the write lock: another writer may have won
            if version == SCHEMA_VERSION:
                await db.execute("COMMIT")
                return
            for statement in MIGRATIONS[version]:
                await db.execute(statement)
            if version + 1 == OBSERVER_SINCE and observer is not None:
                await db.execute("UPDATE exchanges SET observer = ? WHERE observer IS NULL", (observer,))
                await db.execute("UPDATE flows SET observer = ? WHERE observer IS NULL", (observer,))
            await db.execute(f"PRAGMA user_version = {version + 1}")
            await db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                await db.execute("ROLLBACK")
            raise




async def migrate_file(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Create or upgrade the database at ``path`` (as `run` would at start): (version before, version now)."""
    before = 0
    try:
        reader = await open_store(path, readonly=True)
    except StoreError:  # none yet, or too old to read: opening it for writing says what is wrong, if anything
        pass
    else:
        before = reader.version
        await reader.close()
    store = await open_store(path)
    await store.close()
    return before, SCHEMA_VERSION
