"""Which database ``--db`` names: a postgresql:// URL, else an SQLite file."""

from __future__ import annotations

from eyes_devine.adapters.store.postgres import PostgresStore, is_postgres_url, migrate, open_postgres, shown
from eyes_devine.adapters.store.sqlite import ExchangeStore, migrate_file, open_store

Store = ExchangeStore | PostgresStore


async def open_database(target: str, keep: int, *, readonly: bool = False, retain: float | None = None,
                        observer: str | None = None) -> Store:
    """Open the database at ``target`` (raises StoreError).  ``observer``: the host writing, whose rows a
    PostgreSQL writer trims (an SQLite file, which has one writer, labels its older rows with it on upgrade)."""
    if is_postgres_url(target):
        return await open_postgres(target, keep, readonly=readonly, retain=retain, observer=observer)
    return await open_store(target, keep, readonly=readonly, retain=retain, observer=observer)


def display(target: str) -> str:
    """``--db`` as messages and logs show it: a URL without its password."""
    return shown(target) if is_postgres_url(target) else target


async def migrate_database(target: str) -> tuple[int, int]:
    """Bring the schema at ``target`` to this version: (version before, version now).  Raises StoreError."""
    if is_postgres_url(target):
        return await migrate(target)
    return await migrate_file(target)
