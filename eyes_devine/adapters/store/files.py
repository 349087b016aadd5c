"""Where the database lives: its directory, judged on an open descriptor, and files never reached through a link.

Why the care: `run --user NAME` used to give NAME the data directory.  NAME
could then replace the database with a symbolic link, and the next start as
root created or overwrote the link's target and chowned it to NAME.  Now
nothing is chowned (after ``--user`` the process goes on writing through the
descriptors it opened as root), and before SQLite is given a path:

- The database's directory is opened with O_DIRECTORY|O_NOFOLLOW and judged
  by ``fstat`` on that descriptor, so the directory judged is the one used.
  A writer wants a directory nobody else can change: owned by itself or root,
  writable by neither group nor others.  A sticky bit is not enough, since
  others could still plant the -wal or -shm SQLite is about to create.
  Missing directories are made one at a time, 0700 by ``fchmod``, whatever
  the umask.
- The database and its companions (-wal, -shm, -journal, .lock) are looked at
  relative to that descriptor without following links: each is absent or a
  regular file.  A writer also wants one hard link per file and, as root,
  files root owns: root does not parse what another user could have written.
  A missing database is created O_CREAT|O_EXCL|O_NOFOLLOW, 0600 by ``fchmod``.
  Files are looked at with ``lstat``, not opened: closing a descriptor on the
  database would drop the POSIX locks SQLite holds on it in this process.
- Readers (`requests`, `watch --attach`) get the link and file-type checks
  only: they create nothing, and root reading the database of a service that
  runs as its own user is the usual case.

SQLite opens by path, not by descriptor (it even turns /proc/self/fd/N back
into a path, so that detour buys nothing).  The checks close the gap in
between: in a directory nobody else can write, nobody else can swap an entry.
What remains is another user who controls an *ancestor* and moves the whole
directory away for a moment.  Against that, SQLite is told ``mode=rw`` (it
never creates the database, so it cannot create one elsewhere), and
:func:`open_count` lets the caller check that once SQLite has opened the
database, this process holds a descriptor on the very file judged here.  SQLite opens the -wal and -shm with
O_NOFOLLOW itself.  On Windows (no O_NOFOLLOW, no dir_fd, no uids) only the
link and file-type checks apply, on paths.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from eyes_devine.adapters.store.errors import StoreError

COMPANIONS = ("-wal", "-shm", "-journal")
"""What SQLite keeps beside the database."""
LOCK_SUFFIX = ".lock"
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600

FileId = tuple[int, int]
"""(st_dev, st_ino): which file, whatever its name."""

_POSIX = os.name == "posix"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_OPEN_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


class Directory:
    """The database's directory, open: its entries are reached relative to the descriptor, not its path."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self.fd = fd
        """None on Windows, where entries are reached by path."""

    def _at(self, name: str) -> dict[str, Any]:
        if self.fd is None:
            return {"path": os.path.join(self.path, name)}
        return {"path": name, "dir_fd": self.fd}

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry itself (a link is not followed), or None when there is none."""
        try:
            return os.stat(**self._at(name), follow_symlinks=False)
        except FileNotFoundError:
            return None

    def create(self, name: str, mode: int = FILE_MODE) -> int | None:
        """A new file with exactly ``mode``, open for writing; None when ``name`` exists already."""
        try:
            fd = os.open(**self._at(name), flags=os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW
                         | getattr(os, "O_CLOEXEC", 0), mode=mode)
        except FileExistsError:
            return None
        if _POSIX:
            os.fchmod(fd, mode)  # the umask took bits away
        return fd

    def open(self, name: str, flags: int) -> int:
        """An existing file, never through a link (ELOOP) and never waiting on a FIFO."""
        return os.open(**self._at(name), flags=flags | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
                       | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))

    def readable(self, name: str) -> bool:
        if self.fd is None:
            return os.access(os.path.join(self.path, name), os.R_OK)
        return os.access(name, os.R_OK, dir_fd=self.fd, follow_symlinks=False)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def open_directory(db: Path, *, writing: bool) -> Directory:
    """The directory of ``db``, open and judged; writing creates it (and missing parents) 0700.

    Raises StoreError; FileNotFoundError when reading and it does not exist.
    """
    directory = db.parent
    if not _POSIX:
        if writing:
            directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        return Directory(directory, None)
    try:
        fd = _open_directory(directory, create=writing, last=True)
    except FileNotFoundError:
        if writing:
            raise StoreError(f"cannot use {db}: a directory above it vanished while it was made; try again") from None
        raise
    except PermissionError:
        raise StoreError(f"cannot {'write' if writing else 'read'} {db}: permission denied on {directory}; run as "
                         "the user that runs `eyes-devine run` (root: sudo), or choose --db") from None
    except OSError as error:
        if os.path.islink(directory):
            raise StoreError(f"{directory} is a symbolic link; point --db into the real directory") from None
        raise StoreError(f"cannot use {db}: {error.strerror} ({directory}); choose another --db") from None
    opened = Directory(directory, fd)
    if writing:
        try:
            _judge_directory(directory, os.fstat(fd))
        except BaseException:
            opened.close()
            raise
    return opened


def _open_directory(directory: Path, *, create: bool, last: bool) -> int:
    """A descriptor on ``directory``; ``last``: it must not itself be a link (its ancestors may, as /var/run is)."""
    if directory.name in ("", ".", ".."):
        return os.open(directory, _OPEN_DIRECTORY)
    try:
        return os.open(directory, _OPEN_DIRECTORY | (_NOFOLLOW if last else 0))
    except FileNotFoundError:
        if not create:
            raise
    parent = _open_directory(directory.parent, create=True, last=False)
    try:
        try:
            os.mkdir(directory.name, DIRECTORY_MODE, dir_fd=parent)
            made = True
        except FileExistsError:  # made meanwhile; judged like any other
            made = False
        fd = os.open(directory.name, _OPEN_DIRECTORY | _NOFOLLOW, dir_fd=parent)
    finally:
        os.close(parent)
    if made:
        os.fchmod(fd, DIRECTORY_MODE)  # mkdir's mode passed through the umask
    return fd


def _judge_directory(directory: Path, status: os.stat_result) -> None:
    """Refuse a directory in which someone else could put a link where the database or its companions go."""
    euid = os.geteuid()
    if status.st_uid not in (euid, 0):
        fix = (f"as root, use a directory root owns (chown -R root: {directory})" if euid == 0
               else "use a directory you own")
        raise StoreError(f"{directory} belongs to {_user(status.st_uid)}, who could replace the database with a "
                         f"link; {fix}, or choose another --db")
    if status.st_mode & 0o022:
        raise StoreError(f"{directory} is writable by other users, who could replace the database with a link; "
                         f"chmod go-w {directory}, or choose another --db")


def judge_files(directory: Directory, name: str, *, writing: bool) -> os.stat_result | None:
    """Look at the database and its companions without following links; the database's status, None if absent."""
    found = None
    for entry in (name, *(name + suffix for suffix in (*COMPANIONS, LOCK_SUFFIX))):
        status = directory.lstat(entry)
        if status is None:
            continue
        path = directory.path / entry
        if stat.S_ISLNK(status.st_mode):
            raise StoreError(f"{path} is a symbolic link; remove it or point --db at a real file")
        if stat.S_ISDIR(status.st_mode) and entry == name:
            raise a_directory(path)
        if not stat.S_ISREG(status.st_mode):
            raise StoreError(f"{path} is not a regular file; remove it or choose another --db")
        if writing and status.st_nlink > 1:
            raise StoreError(f"{path} has {status.st_nlink} hard links, so it is other files too; remove the other "
                             "links, or choose another --db")
        if writing and _POSIX and os.geteuid() == 0 and status.st_uid != 0:
            raise StoreError(f"{path} belongs to {_user(status.st_uid)}; as root, eyes-devine writes only files root "
                             f"owns: chown root: {path}, or choose another --db")
        if entry == name:
            found = status
    return found


def a_directory(path: Path) -> StoreError:
    """The refusal of a --db that names a directory."""
    return StoreError(f"{path} is a directory; point --db at a database file, such as {path / 'exchanges.db'}")


def create_database(directory: Directory, name: str) -> os.stat_result | None:
    """Create the database file 0600 (SQLite is then never asked to create it); None when it exists already."""
    fd = directory.create(name)
    if fd is None:
        return None
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def file_id(status: os.stat_result) -> FileId:
    return status.st_dev, status.st_ino


def open_count(identity: FileId) -> int | None:
    """How many descriptors of this process are open on the file ``identity`` names (None: cannot tell here).

    Zero after SQLite has opened the database means SQLite opened another
    file.  (Not a difference before and after: SQLite reuses a descriptor a
    closed connection left open for the locks of another.)
    """
    try:
        numbers = os.listdir("/dev/fd")
    except OSError:
        return None
    count = 0
    for number in numbers:
        try:
            status = os.fstat(int(number))
        except (OSError, ValueError):  # the listing's own descriptor, closed by now
            continue
        if (status.st_dev, status.st_ino) == identity:
            count += 1
    return count


def _user(uid: int) -> str:
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
