"""Batches waiting for a database that cannot be reached: in memory, and past that in a local file (``--spool``).

A batch keeps the idempotency key it was first sent with, so sending it again
(after an unknown commit outcome, or after a crash while the file was being
sent) inserts nothing twice.  The file is JSON Lines, one batch per line, the
rows as the tables hold them.  Sending it stops at the first batch the database
does not take, and the file is rewritten from that batch on, so what was sent
is not sent (or counted) again; a `run` that starts finds what an earlier one
left and sends it first.  The file is the user's own: it is opened without
following links, created 0600, and refused when others could write it.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from eyes_devine.adapters.store.inventory import tenure_of, tenure_row
from eyes_devine.adapters.store.rows import exchange_of, exchange_row, flow_of, flow_row
from eyes_devine.records import ContainerTenure, Exchange, Flow

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
    tenures: list[ContainerTenure] = field(default_factory=list)
    """Changes to the container inventory (they take no sequence numbers: their own key makes them idempotent)."""

    @property
    def size(self) -> int:
        return len(self.exchanges) + len(self.flows) + len(self.tenures)


@dataclass(slots=True)
class Spool:
    """Batches not yet stored, oldest first: the file's (older), then memory's."""

    memory_records: int = DEFAULT_MEMORY_RECORDS
    path: Path | None = None
    max_file_bytes: int = MAX_FILE_BYTES
    batches: deque[Batch] = field(default_factory=deque)
    records: int = 0
    """Records in memory."""
    flow_records: int = 0
    """Of those, flow summaries."""
    tenure_records: int = 0
    """Of those, the inventory's tenures."""
    overflowed: list[int] = field(default_factory=lambda: [0, 0, 0])
    """Exchanges, flows and tenures lost because the spool was full."""

    def add(self, batch: Batch) -> None:
        """Keep ``batch`` after the others; the oldest in memory moves to the file (or is lost) past the bound."""
        self.push_back(batch)
        while self.records > self.memory_records and len(self.batches) > 1:
            oldest = self.pop()
            if not self.to_file(oldest):
                self.overflowed[0] += len(oldest.exchanges)
                self.overflowed[1] += len(oldest.flows)
                self.overflowed[2] += len(oldest.tenures)

    def to_file(self, batch: Batch) -> bool:
        """Append ``batch`` to the file; False without a file, when the file is full, or when it cannot be
        written."""
        if self.path is None:
            return False
        line = _line(batch)
        try:
            if self.file_bytes() + len(line) > self.max_file_bytes:
                return False
            _append(self.path, [line])
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

    def file_batches(self) -> Iterator[tuple[int, Batch]]:
        """The batches in the file, oldest first, each with its line's index (a damaged line is skipped)."""
        for index, line in enumerate(self._file_lines()):
            try:
                item = json.loads(line)
                key = (uuid.UUID(item["key"][0]), int(item["key"][1]))
                yield index, Batch(key, [exchange_of(row) for row in item["exchanges"]],
                                   [flow_of(row) for row in item["flows"]],
                                   [tenure_of(row) for row in item.get("containers", ())])  # none before them
            except (ValueError, KeyError, TypeError, IndexError):
                continue

    def file_records(self) -> int:
        return sum(batch.size for _, batch in self.file_batches())

    def keep_file_from(self, index: int) -> None:
        """Drop the file's lines before ``index`` (sent): written beside it, then renamed over it."""
        if self.path is None:
            return
        left = self._file_lines()[index:]
        if not left:
            self.clear_file()
            return
        fresh = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            os.unlink(fresh)
        except FileNotFoundError:
            pass
        _append(fresh, left)
        os.replace(fresh, self.path)

    def clear_file(self) -> None:
        if self.path is not None and self.file_bytes():
            descriptor = os.open(self.path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
            os.close(descriptor)

    def _file_lines(self) -> list[bytes]:
        if self.path is None or not self.file_bytes():
            return []
        descriptor = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(descriptor, "rb") as lines:
            return lines.readlines()

    def pop(self) -> Batch:
        batch = self.batches.popleft()
        self._count(batch, -1)
        return batch

    def push_front(self, batch: Batch) -> None:
        self.batches.appendleft(batch)
        self._count(batch, 1)

    def push_back(self, batch: Batch) -> None:
        self.batches.append(batch)
        self._count(batch, 1)

    def _count(self, batch: Batch, sign: int) -> None:
        self.records += sign * batch.size
        self.flow_records += sign * len(batch.flows)
        self.tenure_records += sign * len(batch.tenures)


def _line(batch: Batch) -> bytes:
    return (json.dumps({"key": [str(batch.key[0]), batch.key[1]],
                        "exchanges": [exchange_row(x)[1:] for x in batch.exchanges],
                        "flows": [flow_row(f)[1:] for f in batch.flows],
                        "containers": [tenure_row(t) for t in batch.tenures]}, separators=(",", ":")) + "\n").encode()


def _append(path: Path, lines: list[bytes]) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        for line in lines:
            os.write(descriptor, line)
    finally:
        os.close(descriptor)


def spool_problem(path: Path, uid: int) -> str | None:
    """Why ``path`` may not be the spool file (a link, not a regular file, someone else's, writable by others,
    or in a directory others can write), or None."""
    try:
        status = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        status = None
    if status is not None:
        if stat.S_ISLNK(status.st_mode) or not stat.S_ISREG(status.st_mode):
            return "not a regular file"
        if status.st_uid != uid:
            return f"it belongs to uid {status.st_uid}, not you; records in it would be sent as yours"
        if status.st_mode & 0o022:
            return "others can write it; chmod go-w it"
    try:
        directory = os.stat(path.parent if str(path.parent) else ".")
    except OSError as error:
        return f"its directory cannot be used ({error.strerror})"
    if directory.st_mode & 0o002 and not directory.st_mode & stat.S_ISVTX:
        return "its directory is writable by everyone; use a directory of your own"
    return None

