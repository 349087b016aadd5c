"""How many rows each bucket of this observer holds in PostgreSQL, so trims delete exactly the excess.

With ``--keep`` full, every batch deletes about as many rows as it inserts.  A
trim that asks "which id is the keep-th newest?" walks ``keep`` index entries
per bucket and batch, and a delete of "everything up to it" walks every dead
row vacuum has not cleared yet.  Knowing each bucket's count and its floor (no
row of the bucket at or below that id is left), a trim deletes the excess
oldest rows from the floor up: work in proportion to what it deletes.

The tally is this writer's own view of rows no other process deletes (an
observer's rows are its own); it is counted from the table at open and with
every status row, and forgotten when a transaction fails.  A bucket it does not
know is counted before it is trimmed.
"""

from __future__ import annotations

from collections.abc import Iterable


class Tally:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], int] = {}
        self._floors: dict[tuple[str, str], int] = {}
        self._known: set[str] = set()
        """Tables counted since the last forget()."""

    def counted(self, table: str, buckets: Iterable[tuple[str, int, int]]) -> None:
        """What a count of ``table`` found: (bucket, rows, floor) each; other buckets hold nothing."""
        for key in [key for key in self._rows if key[0] == table]:
            del self._rows[key]
            self._floors.pop(key, None)
        for bucket, rows, floor in buckets:
            self._rows[table, bucket] = int(rows)
            self._floors[table, bucket] = int(floor)
        self._known.add(table)

    def add(self, table: str, added: Iterable[tuple[str, int]]) -> None:
        for bucket, rows in added:
            self._rows[table, bucket] = self._rows.get((table, bucket), 0) + int(rows)

    def removed(self, table: str, bucket: str, rows: int, floor: int) -> None:
        """``rows`` of ``bucket`` deleted; ``floor``: the highest id a trim deleted (0 for an expiry)."""
        key = (table, bucket)
        self._rows[key] = max(0, self._rows.get(key, 0) - rows)
        if floor > self._floors.get(key, 0):
            self._floors[key] = floor

    def over(self, table: str, keep: int) -> list[tuple[str, int, int]]:
        """(bucket, floor, rows over ``keep``) for each bucket that holds too many."""
        return [(bucket, self._floors.get((name, bucket), 0), rows - keep)
                for (name, bucket), rows in self._rows.items() if name == table and rows > keep]

    def known(self, table: str) -> bool:
        return table in self._known

    def forget(self) -> None:
        self._rows.clear()
        self._floors.clear()
        self._known.clear()
