"""`read FILE --db DB`: the containers of a capture named as a `run`'s inventory says they were at each packet."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from scapy.utils import wrpcap

from eyes_devine.adapters.store.opener import open_database
from eyes_devine.records import ContainerInfo, ContainerTenure
from tests.support.records import make
from tests.test_read_command import conversation, eyes_read

T = 1_700_000_000.0
"""The first conversation's time; the second comes 100 s later, from another client to the same server address."""
FIRST = ContainerInfo(id="f" * 64, name="first", image="busybox", addresses=("10.9.0.2",))
SECOND = ContainerInfo(id="5" * 64, name="second", image="busybox", addresses=("10.9.0.2",))
CALLER = ContainerInfo(id="c" * 64, name="caller", image="busybox", addresses=("10.9.0.3",))
HANDED_OVER = [ContainerTenure(FIRST, T - 1000, T + 50, "edge"), ContainerTenure(SECOND, T + 50, None, "edge"),
               ContainerTenure(CALLER, T - 1000, T + 10, "edge")]
"""The server's address passes from first to second between the conversations; the caller is gone by the second."""


@pytest.fixture
def two_conversations(tmp_path) -> Path:
    later = conversation()
    for packet in later:
        packet.time += 100
        packet["TCP"].sport = packet["TCP"].sport if packet["TCP"].sport == 8080 else 40001
        packet["TCP"].dport = packet["TCP"].dport if packet["TCP"].dport == 8080 else 40001
    path = tmp_path / "two.pcap"
    wrpcap(str(path), conversation() + later)
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "data" / "exchanges.db")
    return request.getfixturevalue("postgres").new_database()


def record(target: str, tenures: list[ContainerTenure], observer: str = "edge", exchanges: int = 0) -> None:
    """Write ``tenures`` (and some exchanges) as a `run` named ``observer`` would."""

    async def write() -> None:
        store = await open_database(target, 10, observer=observer)
        await store.write([make(i, observer=observer) for i in range(exchanges)], (), None, tenures=tenures)
        await store.close()

    asyncio.run(write())


def names(result) -> list[tuple[str | None, str | None]]:
    assert result.returncode == 0, result.stderr
    return [(x["container"], x["client_container"]) for x in map(json.loads, result.stdout.splitlines())]


def test_each_exchange_is_named_as_the_inventory_says_it_was_at_its_time(two_conversations, database):
    record(database, HANDED_OVER)
    result = eyes_read("--json", "--db", database, str(two_conversations))
    assert names(result) == [("first", "caller"), ("second", None)]
    assert "naming containers" not in result.stderr


def test_flows_are_named_at_their_time_too(two_conversations, tmp_path):
    db = str(tmp_path / "x.db")
    record(db, HANDED_OVER)
    result = eyes_read("--json", "--flows", "--db", db, str(two_conversations))
    assert names(result) == [("first", "caller"), ("second", None)]


def test_with_several_observers_the_one_asked_for_names_them(two_conversations, tmp_path):
    db = str(tmp_path / "x.db")
    record(db, HANDED_OVER)
    record(db, [ContainerTenure(SECOND, T - 1000, None, "other")], observer="other")
    ambiguous = eyes_read("--json", "--db", db, str(two_conversations))
    assert ambiguous.returncode == 1 and ambiguous.stdout == "" and "Traceback" not in ambiguous.stderr
    assert ambiguous.stderr.strip().splitlines() == [
        f"eyes-devine: {db} holds the container inventories of 2 observers (edge, other); choose the host that "
        "captured the file with --observer"]
    assert names(eyes_read("--json", "--db", db, "--observer", "other", str(two_conversations))) == \
        [("second", None), ("second", None)]
    assert names(eyes_read("--json", "--db", db, "--observer", "edge", str(two_conversations))) == \
        [("first", "caller"), ("second", None)]


def one_line_failure(result, code: int = 1) -> str:
    assert result.returncode == code and result.stdout == "" and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("eyes-devine: ")
    return line


def test_a_missing_damaged_or_empty_database_and_an_unknown_observer_are_one_line(two_conversations, tmp_path):
    capture = str(two_conversations)
    assert "no database at" in one_line_failure(eyes_read("--db", str(tmp_path / "absent.db"), capture))
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"not a database at all" * 100)
    assert "is damaged or not an eyes-devine database" in one_line_failure(eyes_read("--db", str(damaged), capture))
    exchanges_only = str(tmp_path / "x.db")
    record(exchanges_only, [], exchanges=3)
    assert "holds no container inventory yet" in one_line_failure(eyes_read("--db", exchanges_only, capture))
    record(exchanges_only, HANDED_OVER)
    assert one_line_failure(eyes_read("--db", exchanges_only, "--observer", "elsewhere", capture)).endswith(
        "holds no container inventory of observer 'elsewhere'; it holds those of edge")


def test_an_observer_without_a_database_and_a_bad_observer_name_are_usage_errors(two_conversations, tmp_path):
    assert "give --db too" in one_line_failure(eyes_read("--observer", "edge", str(two_conversations)), 2)
    assert "is not a name for this host" in one_line_failure(
        eyes_read("--db", str(tmp_path / "x.db"), "--observer", "two words", str(two_conversations)), 2)


def test_without_a_database_or_a_docker_engine_nothing_is_named_and_nothing_said(two_conversations, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    result = eyes_read("--json", str(two_conversations))
    assert names(result) == [(None, None), (None, None)]
    assert len(result.stderr.strip().splitlines()) == 1, "the summary only"


def test_a_docker_host_that_cannot_be_an_address_is_a_usage_error_unless_docker_is_not_asked(two_conversations,
                                                                                           monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:x")
    assert "is not a Docker Engine address" in one_line_failure(eyes_read(str(two_conversations)), 2)
    assert names(eyes_read("--json", "--no-docker", str(two_conversations))) == [(None, None), (None, None)]
