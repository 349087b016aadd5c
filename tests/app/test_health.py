"""`eyes-devine health` judges the status row a `run` keeps: fresh, not stopped, every sniffer up."""

from __future__ import annotations

import asyncio

from eyes_devine.adapters.store.sqlite import open_store
from eyes_devine.app.health import judge, read_status
from eyes_devine.records import MonitorStatus

NOW = 1_800_000_000.0


def status(age: float = 2.0, sniffers=(("docker0", True), ("br-1", True)), stopped: bool = False) -> MonitorStatus:
    return MonitorStatus(NOW - age, NOW - 600, 4242, "host-a", "1.0", tuple(sniffers), stopped)


def test_fresh_with_every_sniffer_up_is_healthy():
    verdict = judge(status(), NOW, 30, "x.db")
    assert verdict.healthy
    assert verdict.line == "healthy: capturing on docker0, br-1; run 4242 on host-a reported 2 s ago"


def test_a_sniffer_down_is_unhealthy_and_named():
    verdict = judge(status(sniffers=(("docker0", True), ("br-1", False))), NOW, 30, "x.db")
    assert not verdict.healthy and verdict.line.startswith("unhealthy: not capturing on br-1;")


def test_no_interface_at_all_is_unhealthy():
    assert not judge(status(sniffers=()), NOW, 30, "x.db").healthy


def test_stale_is_unhealthy_whatever_it_said():
    verdict = judge(status(age=31), NOW, 30, "x.db")
    assert not verdict.healthy and "last reported 31 s ago (stale after 30 s)" in verdict.line
    assert judge(status(age=29.9), NOW, 30, "x.db").healthy


def test_a_stopped_run_and_no_report_are_unhealthy():
    stopped = judge(status(age=0.5, stopped=True), NOW, 30, "x.db")
    assert stopped.line == "unhealthy: run 4242 on host-a stopped just now"
    assert judge(None, NOW, 30, "x.db").line == "unhealthy: no `eyes-devine run` has reported into x.db yet"


def test_the_status_row_round_trips_through_sqlite_and_is_replaced(tmp_path):
    db = tmp_path / "x.db"

    async def write(*statuses: MonitorStatus) -> None:
        store = await open_store(db, 10)
        try:
            for one in statuses:
                await store.write_status(one)
        finally:
            await store.close()

    asyncio.run(write(status(age=9), status(age=1, sniffers=(("eth9", False),))))
    assert read_status(str(db)) == status(age=1, sniffers=(("eth9", False),))
