"""A key log file followed as its writer appends to it: only the new bytes are read each time.

Clients append secrets as they make connections, so the file grows while
eyes-devine runs.  A file that shrank, or changed without growing, was
truncated (read again from the start) and one with a new inode was replaced
(the new one read from the start); a file that is not there yet reads as
empty until it appears.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_READ = 16 << 20
"""Most bytes read at once (a key log of a busy client gains a few hundred bytes per connection)."""


class KeyLogFileError(OSError):
    """The key log cannot be read at all: a directory, a device, no permission."""


def check_key_log(path: Path, must_exist: bool) -> None:
    """Raise KeyLogFileError, with the reason, when ``path`` cannot serve as a key log."""
    try:
        info = path.stat()
    except FileNotFoundError:
        if must_exist:
            raise KeyLogFileError(f"{path}: no such file") from None
        return
    except OSError as error:
        raise KeyLogFileError(f"{path}: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block the opening and has no size to follow
        raise KeyLogFileError(f"{path}: not a regular file")
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise KeyLogFileError(f"{path}: {error.strerror}") from None


class FollowedFile:
    """The text appended to a file since the last :meth:`read_new`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._inode: tuple[int, int] | None = None
        self._offset = 0
        self._mtime = 0
        self.restarted = False
        """The last :meth:`read_new` began again at the start (the file was truncated or replaced)."""

    def read_new(self) -> str:
        """What was appended since last time (everything, after a truncation or a replacement); "" if none."""
        self.restarted = False
        try:
            info = os.stat(self.path)
        except OSError:
            return ""
        if not stat.S_ISREG(info.st_mode):
            return ""
        inode = (info.st_dev, info.st_ino)
        rewritten = info.st_size == self._offset and info.st_mtime_ns != self._mtime  # in place, as long as before
        if inode != self._inode or info.st_size < self._offset or rewritten:
            self.restarted = self._inode is not None
            self._inode, self._offset = inode, 0
        self._mtime = info.st_mtime_ns
        if info.st_size == self._offset:
            return ""
        try:
            with open(self.path, "rb") as file:
                file.seek(self._offset)
                data = file.read(MAX_READ)
        except OSError:
            return ""
        self._offset += len(data)
        return data.decode("utf-8", "replace")
