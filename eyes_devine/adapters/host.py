"""The host itself: its interfaces, this process's privileges and usage (psutil, /sys, /proc).

Capture needs root or CAP_NET_RAW in the effective set.  A capability granted
to a script does nothing: it must sit on the interpreter binary, which is what
``scripts/setcap.sh`` does.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass

import psutil

CAP_NET_ADMIN = 12
CAP_NET_RAW = 13


@dataclass(frozen=True, slots=True)
class Privileges:
    can_capture: bool
    detail: str
    """What we have, e.g. "root" or "CAP_NET_RAW on /usr/bin/python3.11"."""
    fix: str | None = None
    """The command that would make capture possible, when it is not."""


def interpreter() -> str:
    """The real interpreter binary behind this process (venvs link to it)."""
    return os.path.realpath(sys.executable)


def effective_capabilities(status_text: str) -> int:
    """The CapEff mask from the text of /proc/<pid>/status (0 when absent)."""
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def check_privileges(status_path: str = "/proc/self/status") -> Privileges:
    """Judge by the effective capability set, not the uid: root in a container without NET_RAW cannot capture."""
    if not hasattr(os, "geteuid"):
        return Privileges(True, "Windows: capture needs Npcap and an Administrator shell")
    root = os.geteuid() == 0
    try:
        with open(status_path, encoding="ascii") as status:
            caps = effective_capabilities(status.read())
    except OSError:  # no /proc (macOS, BSD): the uid is all we can go by
        return Privileges(root, "root" if root else "not root",
                          None if root else "run with sudo (BPF devices need root on macOS)")
    if caps & (1 << CAP_NET_RAW):
        return Privileges(True, "root" if root else f"CAP_NET_RAW on {interpreter()}")
    if root:
        return Privileges(
            False,
            "root, but CAP_NET_RAW is not in the effective set",
            "give the container or service NET_RAW "
            "(docker: --cap-add NET_RAW; systemd: AmbientCapabilities=CAP_NET_RAW)",
        )
    return Privileges(
        False,
        f"not root and no CAP_NET_RAW on {interpreter()}",
        "run with sudo, or grant the interpreter capture rights once: sudo scripts/setcap.sh",
    )


PR_SET_NO_NEW_PRIVS = 38


class PrivilegeDropError(Exception):
    """``--user`` cannot be honoured; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


def resolve_account(name: str) -> Account:
    """The user to become, with their groups (the docker group among them, if they are in it)."""
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise PrivilegeDropError(f"--user {name}: no such user") from None
    return Account(name, entry.pw_uid, entry.pw_gid, tuple(os.getgrouplist(name, entry.pw_gid)))


def drop_privileges(account: Account) -> None:
    """Become ``account`` for good, as `tcpdump -Z` does after opening its capture sockets.

    Supplementary groups, then gid, then uid (the order that keeps the right to
    change each).  glibc applies setuid/setgid to every thread, so the sniffer
    threads already running lose root with the rest.
    """
    if os.geteuid() != 0:
        raise PrivilegeDropError("--user needs eyes-devine to start as root")
    try:
        os.setgroups(list(account.groups))
        os.setgid(account.gid)
        os.setuid(account.uid)
    except OSError as error:
        raise PrivilegeDropError(f"--user {account.name}: cannot switch ({error.strerror})") from None
    if os.getuid() == 0 or os.geteuid() == 0:
        raise PrivilegeDropError(f"--user {account.name}: still root after the switch; refusing to go on")


def forbid_new_privileges() -> None:
    """Set no_new_privs, so nothing this process executes can gain privileges (setuid binaries, file caps).

    The flag is per thread and inherited by threads created later, so call it
    on the main thread before any other starts; it does not stop the setuid()
    of :func:`drop_privileges`, which only gives privileges up.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise PrivilegeDropError("prctl(PR_SET_NO_NEW_PRIVS) failed")


@dataclass(frozen=True, slots=True)
class HostInterface:
    """One interface as the OS reports it."""

    name: str
    up: bool
    mtu: int
    addresses: tuple[str, ...] = ()
    master: str | None = None
    """The bridge this interface is enslaved to (Linux), if any."""


def read_host_interfaces() -> list[HostInterface]:
    """The live host's interfaces from psutil, with bridge membership from /sys on Linux."""
    stats = psutil.net_if_stats()
    addresses = psutil.net_if_addrs()
    wanted_families = (socket.AF_INET, socket.AF_INET6)
    result = []
    for name in sorted(set(stats) | set(addresses)):
        stat = stats.get(name)
        # psutil appends "%<scope>" to link-local IPv6 addresses; the scope is this interface.
        addrs = tuple(
            a.address.split("%", 1)[0] for a in addresses.get(name, ()) if a.family in wanted_families
        )
        result.append(
            HostInterface(
                name=name,
                up=bool(stat and stat.isup),
                mtu=stat.mtu if stat else 0,
                addresses=addrs,
                master=_linux_master(name),
            )
        )
    return result


def _linux_master(name: str) -> str | None:
    try:
        return os.path.basename(os.readlink(f"/sys/class/net/{name}/master"))
    except OSError:
        return None


class ProcessUsage:
    """This process's CPU share since the last call, and its resident memory, for the live header."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call only starts the measurement

    def sample(self) -> tuple[float, int]:
        return self._process.cpu_percent(None), self._process.memory_info().rss
