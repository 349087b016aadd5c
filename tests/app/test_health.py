"""`eyes-devine health` judges the status row a `run` keeps: fresh, not stopped, every sniffer up."""

from __future__ import annotations

import asyncio
import sqlite3
from types import MappingProxyType, SimpleNamespace

import pytest

from eyes_devine.adapters.store.sqlite import StoreError, open_store
from eyes_devine.app.health import judge, read_status
from eyes_devine.app.service import StatusReport
from eyes_devine.records import MonitorStatus

NOW = 1_800_000_000.0


def status(age: float = 2.0, sniffers=(("docker0", "up"), ("br-1", "up")), stopped: bool = False) -> MonitorStatus:
    return MonitorStatus(NOW - age, NOW - 600, 4242, "host-a", "1.0", tuple(sniffers), stopped)


def write_statuses(db, *statuses: MonitorStatus) -> None:
    """Each status written in turn, as a run's store writer does, on a real SQLite file."""

    async def write() -> None:
        store = await open_store(db, 10)
        try:
            for one in statuses:
                await store.write_status(one)
        finally:
            await store.close()

    asyncio.run(write())


def test_fresh_with_every_sniffer_up_is_healthy():
    verdict = judge(status(), NOW, 30, "x.db")
    assert verdict.healthy
    assert verdict.line == "healthy: capturing on docker0, br-1; run 4242 on host-a reported 2 s ago"


def test_a_sniffer_down_is_unhealthy_and_named():
    verdict = judge(status(sniffers=(("docker0", "up"), ("br-1", "down"))), NOW, 30, "x.db")
    assert not verdict.healthy and verdict.line.startswith("unhealthy: not capturing on br-1;")


def test_a_bridge_gone_with_its_docker_network_is_named_but_not_unhealthy():
    verdict = judge(status(sniffers=(("docker0", "up"), ("br-1", "gone"))), NOW, 30, "x.db")
    assert verdict.healthy
    assert verdict.line.startswith("healthy: capturing on docker0 (br-1 gone with its Docker network);")
    assert not judge(status(sniffers=(("br-1", "gone"),)), NOW, 30, "x.db").healthy, "nothing left capturing"


def test_no_interface_at_all_is_unhealthy():
    assert not judge(status(sniffers=()), NOW, 30, "x.db").healthy


def test_stale_is_unhealthy_whatever_it_said():
    verdict = judge(status(age=31), NOW, 30, "x.db")
    assert not verdict.healthy and "last reported 31 s ago (stale after 30 s)" in verdict.line
    assert judge(status(age=29.9), NOW, 30, "x.db").healthy
    future = judge(status(age=-3600), NOW, 30, "x.db")
    assert not future.healthy and "3600 s in the future" in future.line


def test_a_stopped_run_and_no_report_are_unhealthy():
    stopped = judge(status(age=0.5, stopped=True), NOW, 30, "x.db")
    assert stopped.line == "unhealthy: run 4242 on host-a stopped just now"
    assert judge(None, NOW, 30, "x.db").line == "unhealthy: no `eyes-devine run` has reported into x.db yet"


def test_the_status_row_round_trips_through_sqlite_and_is_replaced(tmp_path):
    db = tmp_path / "x.db"

    write_statuses(db, status(age=9), status(age=1, sniffers=(("eth9", "down"),)))
    assert read_status(str(db)) == status(age=1, sniffers=(("eth9", "down"),))


def test_a_damaged_status_row_and_an_older_schema_are_one_line(tmp_path):
    db = tmp_path / "x.db"

    write_statuses(db, status())
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE monitor_status SET sniffers = '[1]'")
    with pytest.raises(StoreError, match="its status row is damaged"):
        read_status(str(db))
    with sqlite3.connect(db) as connection:  # as a run of schema 4 left it: readable, but no status
        connection.execute("DROP TABLE monitor_status")
        connection.execute("PRAGMA user_version = 4")
    with pytest.raises(StoreError, match="written by an older eyes-devine, which reports no status"):
        read_status(str(db))


def test_run_reports_a_vanished_discovered_bridge_as_gone_and_a_vanished_asked_interface_as_down():
    reported: list[MonitorStatus] = []
    writer = SimpleNamespace(report=reported.append)
    sniffers = MappingProxyType({"lo": False, "edt-gone0": False, "edt-asked0": False, "edt-up0": True})
    StatusReport(writer, asked=("edt-asked0",)).publish(SimpleNamespace(sniffers=sniffers))  # type: ignore[arg-type]
    assert dict(reported[-1].sniffers) == {"lo": "down", "edt-gone0": "gone", "edt-asked0": "down", "edt-up0": "up"}
    assert not reported[-1].stopped


def test_run_reports_at_once_when_a_sniffer_changes_else_every_few_seconds_and_stopped_at_the_end():
    reported: list[MonitorStatus] = []
    report = StatusReport(SimpleNamespace(report=reported.append), asked=())  # type: ignore[arg-type]
    up, down = (SimpleNamespace(sniffers=MappingProxyType({"lo": running})) for running in (True, False))
    report.publish(up)  # type: ignore[arg-type]
    report.publish(up)  # type: ignore[arg-type]
    assert len(reported) == 1, "nothing changed within STATUS_SECONDS"
    report.publish(down)  # type: ignore[arg-type]
    assert len(reported) == 2 and reported[-1].sniffers == (("lo", "down"),)
    report.publish(None)
    assert reported[-1].stopped and reported[-1].sniffers == ()
