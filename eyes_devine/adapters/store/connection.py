"""SQLite's connection to a database judged by :mod:`~eyes_devine.adapters.store.files`: opened, probed, checked.

The connection is opened and probed on a worker thread with the plain
``sqlite3`` module, and only a connection that works is handed to aiosqlite.
aiosqlite's own ``connect`` leaves its thread behind when the open fails, and
that thread then prints a traceback after the one-line error (a ``--db`` that
names a directory did that).

Readers open ``mode=ro``.  On read-only storage, or in a directory the reader
may not write, SQLite cannot create the -shm a WAL database needs; the reader
then opens the file ``immutable=1``, which needs no -shm and no locks.  That
is exact only when no -wal holds changes the database file lacks, so with a
non-empty -wal it refuses instead of showing less than was stored.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import aiosqlite

from eyes_devine.adapters.store.errors import StoreError
from eyes_devine.adapters.store.files import FileId, open_count

ITER_CHUNK_SIZE = 64
"""aiosqlite's default."""
_NO_SHM = ("SQLITE_CANTOPEN", "SQLITE_READONLY_DIRECTORY", "SQLITE_READONLY_CANTINIT")
"""What SQLite says when a WAL database's -shm cannot be made (read-only mount; a directory the reader may not
write) or cannot be set up (it exists, read-only, and no writer has initialised it)."""


async def connect(path: Path, identity: FileId, *, readonly: bool) -> aiosqlite.Connection:
    """A connection to the database at ``path``, which must be the file ``identity`` (else StoreError).

    Raises sqlite3.Error for what SQLite refuses.
    """
    raw = await asyncio.to_thread(_connect, path, identity, readonly)
    return await aiosqlite.Connection(lambda: raw, ITER_CHUNK_SIZE)


def _connect(path: Path, identity: FileId, readonly: bool) -> sqlite3.Connection:
    uri = Path(os.path.abspath(path)).as_uri()
    if not readonly:
        raw = _probed(f"{uri}?mode=rw")  # never rwc: the file exists, made or judged by files.py
    else:
        try:
            raw = _probed(f"{uri}?mode=ro")
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorname", "") not in _NO_SHM:
                raise
            _refuse_pending_wal(path)
            raw = _probed(f"{uri}?mode=ro&immutable=1")
    if open_count(identity) == 0:  # SQLite opened something else: the path led elsewhere for a moment
        raw.close()
        raise StoreError(f"{path} changed while it was opened (the directory or the file was replaced); "
                         "check who else can write above it, then try again")
    return raw


def _probed(uri: str) -> sqlite3.Connection:
    """Open and read the header, so that what cannot be read fails here and not at the first query."""
    raw = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        raw.execute("PRAGMA user_version").fetchone()
    except BaseException:
        raw.close()
        raise
    return raw


def _refuse_pending_wal(path: Path) -> None:
    try:
        pending = os.stat(f"{path}-wal", follow_symlinks=False).st_size
    except FileNotFoundError:
        return
    if pending:
        raise StoreError(f"cannot read {path}: SQLite cannot create {path.name}-shm there (read-only storage?) and "
                         f"{path.name}-wal holds {pending} bytes not yet in the database; copy the database with its "
                         "-wal to writable storage and point --db at the copy")
