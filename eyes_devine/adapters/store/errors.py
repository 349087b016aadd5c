"""The store's one exception, apart so that every module of the store can raise it."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used; the message is one line and carries the fix."""


class StoreUnavailable(StoreError):
    """The database cannot be reached now (a server down, a connection lost): worth trying again later."""
