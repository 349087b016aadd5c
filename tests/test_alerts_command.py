"""`eyes-devine alerts`, the store's alert filters and the batch writer's alert count, on a database the store
wrote (no capture needed)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eyes_devine.adapters.store.query import Query
from eyes_devine.adapters.store.sqlite import open_store
from eyes_devine.adapters.store.writer import StoreWriter
from tests.support.records import WEB, WORKER, make

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "store" / "x.db"
    now = time.time()
    rows = [make(i, ts=now - 3600 + i, container="web", container_id=WEB) for i in range(30)]
    rows[3] = make(3, ts=now - 3600 + 3, container="web", container_id=WEB, target="/.env", status=404,
                   alerts=("sensitive-path",))
    rows[7] = make(7, ts=now - 3600 + 7, container="web", container_id=WEB, target="/?q=<script>", user_agent="sqlmap",
                   alerts=("xss", "scanner-user-agent"))
    rows.append(make(99, ts=now, client_container="worker", client_container_id=WORKER, target="/../etc/passwd",
                     status=400, alerts=("path-traversal", "burst-4xx")))
    rows.append(make(100, ts=now, target="/burst-4xx-is-not-a-rule-here"))

    async def write() -> None:
        store = await open_store(path)
        await store.write(rows)
        await store.close()

    asyncio.run(write())
    return path


def alerts(db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EYES_DEVINE, "alerts", "--db", str(db), *args], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "COLUMNS": "160"})


def lines(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_alerts_lists_only_alerting_exchanges_oldest_first(db: Path) -> None:
    listed = lines(alerts(db, "--json"))
    assert [x["target"] for x in listed] == ["/.env", "/?q=<script>", "/../etc/passwd"]
    assert listed[1]["alerts"] == ["xss", "scanner-user-agent"]


def test_rule_matches_whole_ids_and_combines_with_the_other_filters(db: Path) -> None:
    assert [x["target"] for x in lines(alerts(db, "--json", "--rule", "burst-4xx"))] == ["/../etc/passwd"]
    assert [x["target"] for x in lines(alerts(db, "--json", "--rule", "xss"))] == ["/?q=<script>"]
    assert [x["target"] for x in lines(alerts(db, "--json", "-c", "worker"))] == ["/../etc/passwd"]
    assert [x["target"] for x in lines(alerts(db, "--json", "--since", "30m"))] == ["/../etc/passwd"]
    assert [x["target"] for x in lines(alerts(db, "--json", "-n", "1"))] == ["/../etc/passwd"]
    assert lines(alerts(db, "--json", "--rule", "sql-injection")) == []


def test_query_rule_never_matches_part_of_an_id(db: Path) -> None:
    async def query(**filters: object) -> list[str]:
        store = await open_store(db, readonly=True)
        try:
            return [x.target for x in await store.query(Query(**filters))]
        finally:
            await store.close()

    assert asyncio.run(query(rule="4xx")) == []
    assert asyncio.run(query(rule="scanner")) == []
    assert len(asyncio.run(query(alerted=True))) == 3
    assert len(asyncio.run(query())) == 32


def test_the_table_shows_time_container_client_rules_method_target_status_and_outcome(db: Path) -> None:
    result = alerts(db)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["time", "container", "client", "rules", "method", "target", "status", "outcome"]
    assert len(rows) == 3
    assert "web" in rows[0] and "sensitive-path" in rows[0] and "/.env" in rows[0] and "404" in rows[0]
    assert rows[0].rstrip().endswith("refused")
    assert "xss,scanner-user-agent" in rows[1] and rows[1].rstrip().endswith("answered")
    assert "worker →" in rows[2] and "path-traversal,burst-4xx" in rows[2]


def test_each_alert_carries_its_outcome_and_answered_lists_the_attacks_that_may_have_worked(db: Path) -> None:
    assert [(x["target"], x["outcome"]) for x in lines(alerts(db, "--json"))] == \
        [("/.env", "refused"), ("/?q=<script>", "answered"), ("/../etc/passwd", "refused")]
    assert [x["target"] for x in lines(alerts(db, "--json", "--answered"))] == ["/?q=<script>"]
    assert lines(alerts(db, "--json", "--answered", "--rule", "sensitive-path")) == []
    nothing = alerts(db, "--answered", "--rule", "sensitive-path")
    assert nothing.stderr == "no stored exchanges matched a rule and were answered\n"


def test_no_alert_is_one_line_on_stderr_and_exit_0(tmp_path: Path) -> None:
    path = tmp_path / "clean.db"

    async def write() -> None:
        store = await open_store(path)
        await store.write([make(1)])
        await store.close()

    asyncio.run(write())
    result = alerts(path)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "no stored exchanges matched a rule\n"


@pytest.mark.parametrize(("args", "code", "text"), [
    (["--rule", "sqli"], 2, "--rule"),
    (["--since", "yesterday"], 2, "since 'yesterday'"),
    (["-n", "0"], 2, "-n"),
])
def test_bad_filters_exit_2(db: Path, args: list[str], code: int, text: str) -> None:
    result = alerts(db, *args)
    assert result.returncode == code and text in result.stderr and "Traceback" not in result.stderr


def test_a_missing_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = alerts(tmp_path / "nothing.db")
    assert result.returncode == 1 and "no database at" in result.stderr and len(result.stderr.splitlines()) == 1


def test_the_writer_counts_alerting_exchanges_per_batch_stored(tmp_path: Path) -> None:
    counts: list[int] = []

    writer = StoreWriter(tmp_path / "w.db", 1000, batch_size=10, on_alerts=counts.append)
    for i in range(30):  # queued before the writer runs: three full batches
        writer.accept(make(i, alerts=("xss",) if i in (1, 2, 25) else ()))
    writer.start()
    writer.close()
    assert counts == [2, 1]  # the clean middle batch says nothing
