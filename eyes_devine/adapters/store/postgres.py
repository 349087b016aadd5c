"""A PostgreSQL database (Supabase is one) that many hosts write: the same questions as SQLite's store, at scale.

Open it with :func:`open_postgres`; it answers the methods of
:class:`~eyes_devine.adapters.store.sqlite.ExchangeStore`, so the writer, the
readers and `watch --attach` use either.  What differs:

- Every host writes as its observer: ``--keep`` trims per (observer, bucket)
  and ``--retain`` deletes only the observer's own rows.  The status row is one
  per observer.
- A batch arrives with COPY into a temporary table, then one
  ``INSERT ... ON CONFLICT (run_key, seq) DO NOTHING``: a batch retried after an
  unknown commit outcome inserts nothing twice.
- PostgreSQL's MVCC lets readers read while trims delete: nobody waits.
- A lost connection is :class:`StoreUnavailable`: the writer keeps the batch
  (its spool) and the store connects again on the next write.

Passwords never reach a message: URLs are shown without them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import psycopg
from psycopg import conninfo

from eyes_devine.adapters.store.errors import StoreError, StoreUnavailable
from eyes_devine.adapters.store.inventory import (
    MAX_ENDED_TENURES,
    OBSERVERS,
    cap,
    select,
    tenure_of,
    tenure_row,
    upsert,
)
from eyes_devine.adapters.store.pg_schema import MIGRATIONS, SCHEMA_VERSION
from eyes_devine.adapters.store.query import POSTGRESQL, FlowQuery, Query, flow_where_clause, where_clause
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
from eyes_devine.adapters.store.tally import Tally
from eyes_devine.records import ContainerTenure, Exchange, Flow, MonitorStatus

SCHEMES = ("postgresql://", "postgres://")
CONNECTION = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3,
              "keepalives_count": 3, "tcp_user_timeout": 20_000}
"""How long a connection attempt may take (per address), and how soon a server gone silent (a host down, a network
cut) breaks the connection: about 20 s, not the kernel's quarter of an hour.  A URL's own values win."""
LOOKBACK_IDS = 20_000
"""How far behind the newest id `watch --attach` looks again: ids are handed out at insert but become visible
at commit, so a slow writer's batch can appear below ids already shown."""
EXPIRE_SECONDS = 5.0
"""Seconds between --retain deletes while batches come (as between status rows while they do not)."""
_LOCK_ID = 0x65796573
"""The advisory lock migrations take, so two hosts starting at once do not migrate twice."""


def is_postgres_url(target: str) -> bool:
    return target.startswith(SCHEMES)


def shown(url: str) -> str:
    """The URL without its password (or anything that is not where to connect), for messages."""
    try:
        parts = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://…"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def check_url(url: str) -> None:
    """Raise StoreError when ``url`` cannot be a connection string: bad input, before anything starts."""
    try:
        conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:  # libpq's reason quotes the text around the fault, the password too
        raise StoreError("not a PostgreSQL URL libpq can read; write postgresql://USER:PASSWORD@HOST:PORT/DBNAME"
                         "?sslmode=require, with characters such as @ : / % and spaces in the password "
                         "percent-encoded") from None


def _text_safe(row: tuple[object, ...]) -> tuple[object, ...]:
    """PostgreSQL's text holds no NUL, which a hostile request can carry in its target or headers: each becomes
    U+FFFD, so one such request cannot keep its whole batch out of the store."""
    if not any(value.__class__ is str and "\x00" in value for value in row):  # type: ignore[operator]
        return row
    return tuple(value.replace("\x00", "\ufffd") if value.__class__ is str else value  # type: ignore[union-attr]
                 for value in row)


def _given(url: str) -> dict[str, str]:
    """The URL's own connection parameters, which take precedence over :data:`CONNECTION`."""
    return {name: value for name, value in conninfo.conninfo_to_dict(url).items() if name in CONNECTION}


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


class PostgresStore:
    """One PostgreSQL database of many observers' exchanges; open it with :func:`open_postgres`."""

    def __init__(self, db: psycopg.AsyncConnection, url: str, keep: int, readonly: bool, retain: float | None,
                 observer: str | None) -> None:
        self._db: psycopg.AsyncConnection | None = db
        self._url = url
        self.path = shown(url)
        """Where it is, for messages (the writer and the readers say ``path`` of either store)."""
        self.keep = keep
        self.retain = retain
        self.readonly = readonly
        self.observer = observer
        """The host writing (and trimming) as this name; readers may leave it None to read every host."""
        self.run_key = uuid.uuid4()
        """This run's half of the idempotency key of what it writes."""
        self._next_seq = 0
        self._tally = Tally()
        self._expire_at = 0.0
        """When (monotonic) --retain is applied next in a batch's transaction."""
        self._seen: set[int] = set()
        """Ids `after` has returned within the lookback."""

    # -- writing ---------------------------------------------------------------------------------

    async def write(self, exchanges: Sequence[Exchange], flows: Sequence[Flow] = (),
                    key: tuple[uuid.UUID, int] | None = None, tenures: Sequence[ContainerTenure] = ()) -> None:
        """Insert a batch and trim what it touched, in one transaction.  ``key``: the run and the sequence number
        of its first record (exchanges first, then flows), the same on every retry of the batch.  The inventory's
        ``tenures`` are upserted by their own key, so they need none."""
        if self.readonly or self.observer is None:
            raise StoreError(f"{self.path} is open read-only")
        if not exchanges and not flows and not tenures:
            return
        if key is None:  # a caller that does not retry: this store's own sequence
            key = (self.run_key, self._next_seq)
            self._next_seq += len(exchanges) + len(flows)
        run_key, first = key
        rows = [_text_safe((run_key, first + i, *exchange_row(x))) for i, x in enumerate(exchanges)]
        flow_rows = [_text_safe((run_key, first + len(rows) + i, *flow_row(f))) for i, f in enumerate(flows)]
        db = await self._connection()
        try:
            async with db.transaction():
                async with db.cursor() as cursor:
                    for table, columns, batch in (("exchanges", COLUMNS, rows), ("flows", FLOW_COLUMNS, flow_rows)):
                        if not batch:
                            continue
                        if not self._tally.known(table):  # after a failed transaction
                            await self._count(cursor, table)
                        async with cursor.copy(f"COPY {table}_in (run_key, seq, bucket, {columns}) FROM STDIN") as copy:
                            for row in batch:
                                await copy.write_row(row)
                        await cursor.execute(_INSERTS[table], (self.observer,))
                        self._tally.add(table, await cursor.fetchall())
                        await self._trim(cursor, table)
                    if tenures:
                        await self._store_tenures(cursor, tenures)
                    if time.monotonic() >= self._expire_at:
                        await self._expire(cursor)
        except psycopg.Error as error:
            self._tally.forget()  # what the transaction did is unknown: counted again before the next trim
            raise self._failed(error) from None

    async def _trim(self, cursor: psycopg.AsyncCursor, table: str) -> None:
        """Delete the oldest rows of each bucket over ``keep``: an index range from the bucket's floor, as many
        rows as it holds too many, whatever dead rows lie below (one round trip, pipelined)."""
        over = self._tally.over(table, self.keep)
        if not over:
            return
        await cursor.executemany(_TRIMS[table], [(self.observer, bucket, floor, excess)
                                                 for bucket, floor, excess in over], returning=True)
        for bucket, _floor, _excess in over:
            gone, last = await cursor.fetchone()  # type: ignore[misc]
            self._tally.removed(table, bucket, int(gone), int(last))
            cursor.nextset()

    async def _store_tenures(self, cursor: psycopg.AsyncCursor, tenures: Sequence[ContainerTenure]) -> None:
        """Upsert the tenures, then bound each observer's ended ones (a spooled batch may hold an earlier
        observer's)."""
        rows = [_text_safe(tenure_row(tenure)) for tenure in tenures]
        await cursor.executemany(_UPSERT_TENURE, rows)
        await cursor.executemany(_CAP_TENURES, [(observer, observer, MAX_ENDED_TENURES)
                                                for observer in {row[0] for row in rows}])

    async def write_status(self, status: MonitorStatus) -> None:
        """Replace this observer's status row (and delete what --retain expired meanwhile)."""
        if self.readonly or self.observer is None:
            raise StoreError(f"{self.path} is open read-only")
        db = await self._connection()
        try:
            async with db.transaction(), db.cursor() as cursor:
                await cursor.execute(
                    "INSERT INTO monitor_status (observer, updated, started, pid, host, version, sniffers, stopped) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (observer) DO UPDATE SET "
                    "updated = excluded.updated, started = excluded.started, pid = excluded.pid, "
                    "host = excluded.host, version = excluded.version, sniffers = excluded.sniffers, "
                    "stopped = excluded.stopped",
                    (self.observer, *status_row(status)))
                await self._expire(cursor)
                await self._count(cursor)  # every few seconds: the tally agrees with the table again
        except psycopg.Error as error:
            self._tally.forget()
            raise self._failed(error) from None

    async def _expire(self, cursor: psycopg.AsyncCursor) -> None:
        """Delete this observer's records older than ``retain`` (at most every few seconds: a range on the time
        index that walks what earlier deletes left for vacuum)."""
        if self.retain is None:
            return
        self._expire_at = time.monotonic() + EXPIRE_SECONDS
        cutoff = time.time() - self.retain
        for table, column in (("exchanges", "ts"), ("flows", "ts_last")):
            await cursor.execute(f"WITH gone AS (DELETE FROM {table} WHERE observer = %s AND {column} < %s "
                                 "RETURNING bucket) SELECT bucket, count(*) FROM gone GROUP BY bucket",
                                 (self.observer, cutoff))
            for bucket, gone in await cursor.fetchall():
                self._tally.removed(table, bucket, int(gone), 0)
        await cursor.execute("DELETE FROM containers WHERE observer = %s AND ended < %s", (self.observer, cutoff))

    async def _count(self, cursor: psycopg.AsyncCursor, *tables: str) -> None:
        """Count this observer's rows per bucket of ``tables`` (all by default), and where each bucket's oldest
        is."""
        for table in tables or ("exchanges", "flows"):
            await cursor.execute(f"SELECT bucket, count(*), min(id) - 1 FROM {table} WHERE observer = %s "
                                 "GROUP BY bucket", (self.observer,))
            self._tally.counted(table, await cursor.fetchall())

    async def trim_all(self) -> None:
        """Drop what ``retain`` expired and bring this observer's buckets down to ``keep``: at open."""
        db = await self._connection()
        try:
            async with db.transaction(), db.cursor() as cursor:
                await self._expire(cursor)
                await self._count(cursor)
                for table in ("exchanges", "flows"):
                    await self._trim(cursor, table)
        except psycopg.Error as error:
            self._tally.forget()
            raise self._failed(error) from None

    # -- reading ---------------------------------------------------------------------------------

    async def query(self, q: Query) -> list[Exchange]:
        """Exchanges matching ``q``, newest first, from every observer unless ``q`` names one."""
        where, params = where_clause(q, POSTGRESQL)
        statement = f"SELECT {COLUMNS} FROM exchanges{where} ORDER BY ts DESC, id DESC"
        if q.limit is not None:
            statement += " LIMIT %s"
            params.append(q.limit)
        return [exchange_of(row) for row in await self._fetch(statement, params)]

    async def query_flows(self, q: FlowQuery) -> list[Flow]:
        where, params = flow_where_clause(q, POSTGRESQL)
        statement = f"SELECT {FLOW_COLUMNS} FROM flows{where} ORDER BY ts_last DESC, id DESC"
        if q.limit is not None:
            statement += " LIMIT %s"
            params.append(q.limit)
        return [flow_of(row) for row in await self._fetch(statement, params)]

    async def recent(self, keep: int | None = None) -> dict[str, list[Exchange]]:
        """This observer's newest ``keep`` exchanges of each bucket, oldest first (a reader's: every host's)."""
        keep = self.keep if keep is None else keep
        mine, params = (" WHERE observer = %s", [self.observer]) if self.observer is not None else ("", [])
        rows = await self._fetch(
            f"SELECT bucket, {COLUMNS} FROM (SELECT *, row_number() OVER (PARTITION BY observer, bucket "
            f"ORDER BY id DESC) AS nth FROM exchanges{mine}) AS newest WHERE nth <= %s ORDER BY id", [*params, keep])
        out: dict[str, list[Exchange]] = {}
        for row in rows:
            out.setdefault(str(row[0]), []).append(exchange_of(row[1:]))
        return out

    async def after(self, last_id: int, limit: int = 5000) -> tuple[int, list[Exchange]]:
        """Exchanges stored since the last call, oldest first, and the newest id seen.

        Ids are handed out at insert and become visible at commit, so with many
        writers a batch can appear below an id already shown; the last
        :data:`LOOKBACK_IDS` are looked at again and what was shown is skipped.
        """
        ids = [row[0] for row in await self._fetch(
            "SELECT id FROM exchanges WHERE id > %s ORDER BY id", [max(0, last_id - LOOKBACK_IDS)])]
        new = [i for i in ids if i not in self._seen][:limit]
        if not new:
            return last_id, []
        rows = await self._fetch(f"SELECT id, {COLUMNS} FROM exchanges WHERE id = ANY(%s) ORDER BY id", [new])
        self._seen.update(new)
        newest = max(last_id, new[-1])
        self._seen = {i for i in self._seen if i > newest - LOOKBACK_IDS}
        return newest, [exchange_of(row[1:]) for row in rows]

    async def last_id(self) -> int:
        """The newest id; what lies within the lookback below it counts as shown already."""
        [(newest,)] = await self._fetch("SELECT coalesce(max(id), 0) FROM exchanges", [])
        self._seen = {int(row[0]) for row in await self._fetch(
            "SELECT id FROM exchanges WHERE id > %s AND id <= %s", [int(newest) - LOOKBACK_IDS, newest])}
        return int(newest)

    async def counts(self) -> dict[str, int]:
        """Bucket → exchanges stored (every observer's, summed)."""
        rows = await self._fetch("SELECT bucket, count(*) FROM exchanges GROUP BY bucket", [])
        return {str(bucket): int(count) for bucket, count in rows}

    async def inventory(self, observer: str | None = None, open_only: bool = False) -> list[ContainerTenure]:
        """The container tenures of ``observer`` (None: every observer's), oldest first; ``open_only``: those not
        ended."""
        statement, params = select("%s", observer, open_only)
        rows = await self._fetch(statement, params)
        try:
            return [tenure_of(row) for row in rows]
        except (ValueError, TypeError) as error:
            raise StoreError(f"{self.path}: a row of its container inventory is damaged ({error})") from None

    async def inventory_observers(self) -> dict[str, int]:
        """Observer → tenures the inventory holds of it."""
        return {str(observer): int(count) for observer, count in await self._fetch(OBSERVERS, [])}  # type: ignore[call-overload]

    async def status(self, observer: str | None = None) -> MonitorStatus | None:
        """What the `run` of ``observer`` (by default this store's) last said of itself; None if it never did."""
        rows = await self._fetch(
            "SELECT updated, started, pid, host, version, sniffers, stopped FROM monitor_status WHERE observer = %s",
            [observer or self.observer])
        if not rows:
            return None
        try:
            return status_of(rows[0])
        except (ValueError, TypeError) as error:
            raise StoreError(f"{self.path}: the status row of {observer or self.observer} is damaged ({error})") \
                from None

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    # -- the connection --------------------------------------------------------------------------

    async def _fetch(self, statement: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        db = await self._connection()
        try:
            async with db.cursor() as cursor:
                await cursor.execute(statement, params)  # type: ignore[arg-type]
                return await cursor.fetchall()
        except psycopg.Error as error:
            raise self._failed(error) from None

    async def _connection(self) -> psycopg.AsyncConnection:
        """The connection, made again after one was lost (StoreUnavailable while the server cannot be reached)."""
        if self._db is None or self._db.closed:
            self._db = await _connect(self._url, self.path, writing=not self.readonly)
        return self._db

    def _failed(self, error: psycopg.Error) -> StoreError:
        """One line; a lost connection is StoreUnavailable (worth a retry), and is dropped to be made again."""
        if isinstance(error, psycopg.OperationalError) or (self._db is not None and self._db.broken):
            db, self._db = self._db, None
            if db is not None and not db.closed:
                try:
                    db.pgconn.finish()
                except Exception:  # already gone
                    pass
            return StoreUnavailable(f"{self.path}: {_first_line(error)}")
        if isinstance(error, psycopg.errors.InsufficientPrivilege):
            return StoreError(f"{self.path}: {_first_line(error)}; grant the role what the README's writer role "
                              "has, or use that role")
        return StoreError(f"{self.path}: {_first_line(error)}")


_INSERTS = {table: f"WITH added AS (INSERT INTO {table} (run_key, seq, bucket, {columns}) SELECT run_key, seq, "
                   f"bucket, {columns} FROM {table}_in ON CONFLICT (run_key, seq) DO NOTHING RETURNING bucket, "
                   "observer) SELECT bucket, count(*) FROM added WHERE observer = %s GROUP BY bucket"
            for table, columns in (("exchanges", COLUMNS), ("flows", FLOW_COLUMNS))}
"""A batch in from the temporary table, once (a retried batch's rows are there already), and how many rows each of
this observer's buckets gained (a spooled batch from before an --observer change holds another observer's)."""
_TRIMS = {table: f"WITH gone AS (DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE observer = %s AND "
                 "bucket = %s AND id > %s ORDER BY id LIMIT %s) RETURNING id) SELECT count(*), coalesce(max(id), 0) "
                 "FROM gone"
          for table in ("exchanges", "flows")}
"""A bucket's oldest rows over ``keep``: an index range that starts above what is already gone (a range from the
bucket's start would walk every dead row until vacuum comes, and churn makes many)."""
_UPSERT_TENURE = upsert("%s")
_CAP_TENURES = cap("%s")


async def _connect(url: str, where: str, *, writing: bool) -> psycopg.AsyncConnection:
    try:
        db = await psycopg.AsyncConnection.connect(url, autocommit=True, application_name="eyes-devine",
                                                   **{**CONNECTION, **_given(url)})
    except psycopg.OperationalError as error:
        raise StoreUnavailable(f"cannot connect to {where}: {_first_line(error)}") from None
    except psycopg.Error as error:
        raise StoreError(f"cannot connect to {where}: {_first_line(error)}") from None
    if writing:
        try:
            for table, columns in (("exchanges", COLUMNS), ("flows", FLOW_COLUMNS)):
                await db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table}_in ON COMMIT DELETE ROWS AS "
                                 f"SELECT run_key, seq, bucket, {columns} FROM {table} WITH NO DATA")
        except psycopg.Error as error:
            await db.close()
            raise StoreError(f"{where}: {_first_line(error)}") from None
    return db


async def schema_version(db: psycopg.AsyncConnection, where: str) -> int:
    """The schema's version (0: none yet); StoreError for a newer one, or for another program's tables."""
    async with db.cursor() as cursor:
        await cursor.execute("SELECT to_regclass('eyes_devine_schema') IS NOT NULL, to_regclass('exchanges') "
                             "IS NOT NULL")
        [(versioned, exchanges)] = await cursor.fetchall()
        if not versioned:
            if exchanges:
                raise StoreError(f"{where} has an exchanges table that is not eyes-devine's; use another database "
                                 "or schema (options=-csearch_path=NAME in the URL)")
            return 0
        await cursor.execute("SELECT version FROM eyes_devine_schema")
        [(version,)] = await cursor.fetchall()
    if version > SCHEMA_VERSION:
        raise StoreError(f"{where} has schema version {version}, newer than this eyes-devine knows "
                         f"({SCHEMA_VERSION}); upgrade eyes-devine")
    return int(version)


async def migrate(url: str) -> tuple[int, int]:
    """Bring the database's schema to this version (as its owner: `eyes-devine db migrate`): (before, after)."""
    where = shown(url)
    db = await _connect(url, where, writing=False)
    try:
        async with db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            before = version = await schema_version(db, where)
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    await db.execute(statement)  # type: ignore[arg-type]
                version += 1
                await db.execute("UPDATE eyes_devine_schema SET version = %s", (version,))
    except psycopg.Error as error:
        raise StoreError(f"cannot migrate {where}: {_first_line(error)}; run `eyes-devine db migrate` as the "
                         "database's owner") from None
    finally:
        await db.close()
    return before, version


async def open_postgres(url: str, keep: int, *, readonly: bool = False, retain: float | None = None,
                        observer: str | None = None) -> PostgresStore:
    """Connect and check the schema; a writer migrates it when it may, else says to run `db migrate`."""
    try:
        return await _open(url, keep, readonly, retain, observer)
    except psycopg.Error as error:  # whatever the checks below did not expect: one line, and no password
        if isinstance(error, psycopg.OperationalError):
            raise StoreUnavailable(f"{shown(url)}: {_first_line(error)}") from None
        raise StoreError(f"{shown(url)}: {_first_line(error)}") from None


async def _open(url: str, keep: int, readonly: bool, retain: float | None, observer: str | None) -> PostgresStore:
    where = shown(url)
    if not readonly:
        version = await _probe(url, where)
        if version < SCHEMA_VERSION:
            await migrate(url)
    db = await _connect(url, where, writing=not readonly)
    try:
        version = await schema_version(db, where)
        if version < SCHEMA_VERSION:
            raise StoreError(f"{where} holds no eyes-devine tables at this version yet; start `eyes-devine run`, "
                             "or run `eyes-devine db migrate` as the database's owner")
        store = PostgresStore(db, url, keep, readonly, retain, observer)
        if not readonly:
            await store.trim_all()
    except BaseException:
        await db.close()
        raise
    return store


async def _probe(url: str, where: str) -> int:
    db = await _connect(url, where, writing=False)
    try:
        return await schema_version(db, where)
    finally:
        await db.close()
