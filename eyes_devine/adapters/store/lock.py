"""One writer per database: an exclusive ``flock`` on a file beside it, holding the writer's PID.

Two `run`s on one database would each trim the other's rows; SQLite's own
locks only keep their transactions apart.  So a writer (`run`, capturing
`watch`) takes ``<database>.lock`` before it touches the database and keeps it
until it exits; readers never look at it.  ``flock`` belongs to the open file,
so it goes away with the process however that ends (even ``kill -9``), needs
no clean-up, and is not disturbed by SQLite's POSIX locks on the database.
The file itself stays: removing a lock file while another process opens it is
how two writers end up holding two different locks.  Windows has no
``flock``: there the first byte is locked with ``msvcrt.locking``.
"""

from __future__ import annotations

import os
import time

from eyes_devine.adapters.store.errors import StoreError
from eyes_devine.adapters.store.files import LOCK_SUFFIX, Directory

PID_WAIT_SECONDS = 1.0
"""How long to wait for the holder to write its PID (it writes it right after taking the lock)."""


class WriterLock:
    """The lock, held until :meth:`release` or the end of the process."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def take(cls, directory: Directory, name: str) -> WriterLock:
        """Take the lock of database ``name`` in ``directory`` (judged already), or raise StoreError naming the
        PID that holds it."""
        lock_name = name + LOCK_SUFFIX
        fd = directory.create(lock_name)
        if fd is None:
            fd = directory.open(lock_name, os.O_RDWR)
        try:
            if not _try_lock(fd):
                database = directory.path / name
                raise StoreError(f"{database} is being written by another eyes-devine ({_holder(fd)}); stop it or "
                                 "use another --db")
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the lock
            self._fd = None


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(fd: int) -> str:
    """"pid N" from the lock file, waiting briefly for a holder that has the lock but has not written yet."""
    deadline = time.monotonic() + PID_WAIT_SECONDS
    while True:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            text = os.read(fd, 32).decode("ascii", "replace").strip()
        except OSError:  # Windows: the holder's lock keeps others from reading the byte it covers
            text = ""
        if text.isascii() and text.isdigit():
            return f"pid {int(text)}"
        if time.monotonic() >= deadline:
            return "pid unknown"
        time.sleep(0.05)
