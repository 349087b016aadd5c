"""Many hosts, one PostgreSQL database: two `run`s as two observers, an outage, a crash, the bounds.

Each `run` captures only its own container (a BPF filter on its address), as
two hosts would; the server is the tests' own cluster (tests/support/postgres.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time

import pytest

from eyes_devine.adapters.store.opener import open_database
from tests.integration.conftest import serving
from tests.support.load import get, hammer
from tests.support.records import flow, make
from tests.support.service import EYES_DEVINE, requests_json, wait_until

pytestmark = pytest.mark.docker


@pytest.fixture
def api(docker_engine, busybox_image):
    container = docker_engine.client.containers.run(busybox_image, name=f"edt-api-{os.getpid()}", detach=True)
    yield serving(container)
    container.remove(force=True)


def own(container) -> tuple[str, ...]:
    """Capture flags that see only ``container``'s HTTP, as if it ran on a host of its own."""
    return ("-i", "docker0", "--filter", f"tcp port 80 and host {container.address}")


def per_observer(postgres, url: str) -> dict[str, int]:
    return dict(postgres.execute("SELECT observer, count(*) FROM exchanges GROUP BY observer", url))


def test_two_observers_store_into_one_database_and_are_told_apart(service, web, api, postgres, terminal,
                                                                  docker_engine):
    url = postgres.new_database()
    edge_a = service(*own(web), "--observer", "edge-a", db=url)
    edge_b = service(*own(api), "--observer", "edge-b", db=url)
    for run in (edge_a, edge_b):
        run.wait_for("Docker: connected")
    assert hammer(web.address, 80, [f"/a/{index}" for index in range(1000)], threads=4) == 1000
    assert hammer(api.address, 80, [f"/b/{index}" for index in range(1000)], threads=4) == 1000
    wait_until(lambda: per_observer(postgres, url) == {"edge-a": 1000, "edge-b": 1000}, 60, "1000 per observer")
    rows = postgres.execute("SELECT observer, container, count(DISTINCT target) FROM exchanges GROUP BY 1, 2", url)
    assert sorted(rows) == [("edge-a", web.name, 1000), ("edge-b", api.name, 1000)], "attributed, none twice"

    only_b = requests_json(url, "--observer", "edge-b", "--limit", "5000")
    assert len(only_b) == 1000 and {(x["observer"], x["container"]) for x in only_b} == {("edge-b", api.name)}
    both = subprocess.run([*EYES_DEVINE, "requests", "--db", url, "-n", "2000"], capture_output=True, text=True,
                          timeout=60)
    assert both.returncode == 0 and both.stdout.split()[:2] == ["time", "observer"]

    env = {"PATH": os.environ["PATH"], "TERM": "xterm-256color", "DOCKER_HOST": docker_engine.host,
           **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {})}
    term = terminal([*EYES_DEVINE, "watch", "--attach", "--db", url], env, width=160)

    def shows_both(lines: list[str]) -> bool:
        rows = [line.split() for line in lines]
        return ["edge-a", web.name, "1,000"] in [row[:3] for row in rows] and \
            ["edge-b", api.name, "1,000"] in [row[:3] for row in rows]

    lines = term.wait_for(shows_both, what="a row per observer and container")
    assert any(line.split()[:3] == ["observer", "container", "req"] for line in lines)
    assert all("owner-secret" not in line for line in lines), "the password is not shown"
    term.keys("C-c")
    term.wait_for(lambda lines: "EXIT=0" in lines, what="exit 0")
    assert edge_a.stop() == 0 and edge_b.stop() == 0


def test_a_30_s_outage_under_traffic_loses_nothing_and_stores_nothing_twice(service, web, postgres):
    url = postgres.new_database()
    run = service(*own(web), "--observer", "edge", "--keep", "100000", db=url)
    run.wait_for("Docker: connected")
    stop = threading.Event()
    answered: list[int] = []

    def traffic() -> None:
        index = 0
        while not stop.is_set():
            try:
                get(web.address, 80, f"/outage/{index}")
                answered.append(index)
            except OSError:  # not answered: nothing for the monitor to record either
                pass
            index += 1
            time.sleep(0.02)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        time.sleep(3)
        postgres.stop()
        run.wait_for("database unreachable", 15)
        time.sleep(30)
        before_restart = len(answered)
        postgres.start()
        run.wait_for("database reachable again", 30)
        time.sleep(2)
    finally:
        stop.set()
        sender.join()
    assert before_restart > 500, "traffic went on through the outage"
    wait_until(lambda: per_observer(postgres, url).get("edge") == len(answered), 60, "everything stored")
    [(rows, distinct)] = postgres.execute("SELECT count(*), count(DISTINCT target) FROM exchanges", url)
    assert rows == distinct == len(answered), "nothing lost, nothing twice"
    assert run.stop() == 0
    assert run.messages("stopped")[0]["store_drops"] == 0


def test_kill_9_loses_at_most_the_last_batch_window(service, web, postgres):
    url = postgres.new_database()
    run = service(*own(web), "--observer", "edge", "--keep", "100000", "--batch-size", "100", db=url)
    run.wait_for("Docker: connected")
    stop = threading.Event()
    loader = threading.Thread(target=hammer, args=(web.address, 80, [f"/kill/{i}" for i in range(100_000)], 4,
                                                  stop.is_set))
    loader.start()
    try:
        wait_until(lambda: sum(line["rows"] for line in run.messages("batch stored")) > 1500, 60, "load stored")
        acknowledged = sum(line["rows"] for line in run.messages("batch stored"))
        run.process.send_signal(signal.SIGKILL)
        run.process.wait(10)
    finally:
        stop.set()
        loader.join()
    assert per_observer(postgres, url)["edge"] >= acknowledged, "every batch reported stored is there"
    again = service(*own(web), "--observer", "edge", "--keep", "100000", db=url)
    assert again.wait_for("store opened")["reloaded"] >= acknowledged
    assert again.stop() == 0


def test_retain_and_keep_bound_only_the_observers_own_rows(service, web, postgres):
    url = postgres.new_database()
    old = time.time() - 3600

    async def earlier_records() -> None:
        for observer in ("edge", "elsewhere"):
            store = await open_database(url, 1000, observer=observer)
            await store.write([make(i, ts=old + i, observer=observer) for i in range(10)],
                              [flow(1, ts=old, observer=observer)])
            await store.write([make(i, ts=time.time(), container="web", container_id=web.id[:12],
                                    observer=observer, target=f"/{observer}/{i}") for i in range(10)])
            await store.close()

    asyncio.run(earlier_records())
    run = service(*own(web), "--observer", "edge", "--retain", "10m", "--keep", "5", db=url)
    run.wait_for("Docker: connected")
    assert hammer(web.address, 80, [f"/fresh/{index}" for index in range(20)], threads=1) == 20
    wait_until(lambda: postgres.execute("SELECT count(*) FROM exchanges WHERE target = '/fresh/19'", url) == [(1,)],
               30, "the last request stored")
    assert run.stop() == 0
    kept = dict(postgres.execute("SELECT observer || ' ' || bucket, count(*) FROM exchanges GROUP BY 1", url))
    assert kept == {
        f"edge {web.id[:12]}": 5,  # --keep 5 for (edge, web): the newest five of its own
        "elsewhere unattributed": 10, f"elsewhere {web.id[:12]}": 10,  # another host's rows are not this run's
    }, "edge's hour-old rows went with --retain 10m"
    assert postgres.execute("SELECT observer FROM flows", url) == [("elsewhere",)]
    newest = postgres.execute("SELECT target FROM exchanges WHERE observer = 'edge' ORDER BY id", url)
    assert [target for (target,) in newest] == [f"/fresh/{index}" for index in range(15, 20)]
