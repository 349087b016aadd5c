"""`eyes-devine health`: is a `run` capturing and storing now?  Read from what it publishes, not from a capture.

`run` keeps one status row in its database (:class:`~eyes_devine.records.MonitorStatus`),
written by the store's writer thread every few seconds and whenever a sniffer
starts or stops.  Healthy means: that row is younger than the staleness bound,
the run has not ended, and every sniffer is capturing, but for discovered
bridges that went with their Docker network.  A row that stopped
changing means the process, its writer thread or its disk stopped: each makes
it stale.  For Docker's HEALTHCHECK, compose and systemd watchdogs: exit 0 or 1
with one line.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from eyes_devine.adapters.store.opener import open_database
from eyes_devine.records import MonitorStatus


@dataclass(frozen=True, slots=True)
class Verdict:
    healthy: bool
    line: str


def judge(status: MonitorStatus | None, now: float, max_age: float, db: str) -> Verdict:
    """Whether the run that wrote ``status`` is capturing and storing, as one line."""
    if status is None:
        return Verdict(False, f"unhealthy: no `eyes-devine run` has reported into {db} yet")
    age = now - status.updated
    who = f"run {status.pid} on {status.host}"
    if status.stopped:
        return Verdict(False, f"unhealthy: {who} stopped {_ago(age)}")
    if age > max_age:
        return Verdict(False, f"unhealthy: {who} last reported {_ago(age)} (stale after {max_age:g} s): the "
                              "process, its disk or its database writer stopped")
    if age < -max_age:  # a clock stepped back, or a row from elsewhere: it proves nothing about now
        return Verdict(False, f"unhealthy: {who} reported {-age:.0f} s in the future; check the clocks")
    up = [name for name, state in status.sniffers if state == "up"]
    down = [name for name, state in status.sniffers if state not in ("up", "gone")]
    gone = [name for name, state in status.sniffers if state == "gone"]
    if down or not up:
        return Verdict(False, f"unhealthy: not capturing on {', '.join(down) or 'any interface'}; {who} "
                              f"reported {_ago(age)}")
    also = f" ({', '.join(gone)} gone with {'its' if len(gone) == 1 else 'their'} Docker network)" if gone else ""
    return Verdict(True, f"healthy: capturing on {', '.join(up)}{also}; {who} reported {_ago(age)}")


def read_status(db: str, observer: str | None = None) -> MonitorStatus | None:
    """The status row of the database at ``db``, opened read-only (in a database many hosts write, the row of
    ``observer``).  Raises StoreError."""

    async def read() -> MonitorStatus | None:
        store = await open_database(db, 1, readonly=True, observer=observer)
        try:
            return await store.status()
        finally:
            await store.close()

    return asyncio.run(read())


def _ago(seconds: float) -> str:
    return "just now" if seconds < 1 else f"{seconds:.0f} s ago"
