"""Batches waiting for a database that cannot be reached: in memory, and past that in a local file (``--spool``).

A batch keeps the idempotency key it was first sent with, so sending it again
(after an unknown commit outcome, or after a crash while the file was being
sent) inserts nothing twice.  The file is JSON Lines, one batch per line, the
rows as the tables hold them; it is emptied only once every batch in it is
stored, and a `run` that starts finds what an earlier one left and sends it
first.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from eyes_devine.adapters.store.rows import exchange_of, exchange_row, flow_of, flow_row
from eyes_devine.records import Exchange, Flow

DEFAULT_MEMORY_RECORDS = 100_000
"""Records the memory spool holds (about 100 MB) before older batches go to the file, or are lost without one."""
MAX_FILE_BYTES = 1 << 30
"""The spool file's bound: past it, batches are lost and counted."""


@dataclass(frozen=True, slots=True)
class Batch:
    key: tuple[uuid.UUID, int]
    """The run that captured it and the sequence number of its first record."""
    exchanges: list[Exchange]
    flows: list[Flow]

    @property
    def size(self) -> int:
        return len(self.exchanges) + len(self.flows)


@dataclass(slots=True)
class Spool:
    """Batches not yet stored, oldest first: the file's (older), then memory's."""

    memory_records: int = DEFAULT_MEMORY_RECORDS
    path: Path | None = None
    max_file_bytes: int = MAX_FILE_BYTES
    batches: deque[Batch] = field(default_factory=deque)
    records: int = 0
    """Records in memory."""
    overflowed: list[int] = field(default_factory=lambda: [0, 0])
    """Exchanges and flows lost because the spool was full."""

    def add(self, batch: Batch) -> None:
        """Keep ``batch`` after the others; the oldest in memory moves to the file (or is lost) past the bound."""
        self.batches.append(batch)
        self.records += batch.size
        while self.records > self.memory_records and len(self.batches) > 1:
            oldest = self.batches.popleft()
            self.records -= oldest.size
            if not self.to_file(oldest):
                self.overflowed[0] += len(oldest.exchanges)
                self.overflowed[1] += len(oldest.flows)

    def to_file(self, batch: Batch) -> bool:
        """Append ``batch`` to the file; False without a file, when the file is full, or when it cannot be
        written."""
        if self.path is None:
            return False
        line = (json.dumps({"key": [str(batch.key[0]), batch.key[1]],
                            "exchanges": [exchange_row(x)[1:] for x in batch.exchanges],
                            "flows": [flow_row(f)[1:] for f in batch.flows]}, separators=(",", ":")) + "\n").encode()
        try:
            if self.file_bytes() + len(line) > self.max_file_bytes:
                return False
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                os.write(descriptor, line)
            finally:
                os.close(descriptor)
        except OSError:
            return False
        return True

    def file_bytes(self) -> int:
        if self.path is None:
            return 0
        try:
            return os.stat(self.path, follow_symlinks=False).st_size
        except FileNotFoundError:
            return 0

    def file_batches(self) -> Iterator[Batch]:
        """The batches in the file, oldest first (a damaged line is skipped: the rest still count)."""
        if self.path is None or not self.file_bytes():
            return
        with open(self.path, "rb") as lines:
            for line in lines:
                try:
                    item = json.loads(line)
                    key = (uuid.UUID(item["key"][0]), int(item["key"][1]))
                    yield Batch(key, [exchange_of(row) for row in item["exchanges"]],
                                [flow_of(row) for row in item["flows"]])
                except (ValueError, KeyError, TypeError, IndexError):
                    continue

    def clear_file(self) -> None:
        if self.path is not None and self.file_bytes():
            os.truncate(self.path, 0)

    def pop(self) -> Batch:
        batch = self.batches.popleft()
        self.records -= batch.size
        return batch

    def push_front(self, batch: Batch) -> None:
        self.batches.appendleft(batch)
        self.records += batch.size

