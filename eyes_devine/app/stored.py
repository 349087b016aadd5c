"""What `requests`, `alerts` and `flows` read: one question to the database, opened read-only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from eyes_devine.adapters.store.opener import Store, open_database
from eyes_devine.config import Settings


def fetch(settings: Settings, ask: Callable[[Store], Awaitable[list[Any]]]) -> list[Any]:
    """Open the database read-only, ``ask`` it, close it; the answer oldest first.  Raises StoreError."""

    async def asked() -> list[Any]:
        store = await open_database(settings.db_path, settings.keep, readonly=True)
        try:
            return await ask(store)
        finally:
            await store.close()

    found = asyncio.run(asked())
    found.reverse()
    return found
