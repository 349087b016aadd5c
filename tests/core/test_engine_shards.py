"""Engines that each follow one share of the connections (workers reading one file) find, together, exactly what
one engine finds."""

from __future__ import annotations

from dataclasses import fields

import pytest

from eyes_devine.adapters.pcapfile import CaptureFile
from eyes_devine.core.engine import SHARED_COUNTERS, Engine
from eyes_devine.core.flows import FlowTracker
from eyes_devine.records import EngineCounters, Exchange, Flow
from tests.support.captures import LAB_FLOWS, LAB_HTTP


def read(path, shard=None, flows=False) -> tuple[list[Exchange], list[Flow], EngineCounters]:
    exchanges: list[Exchange] = []
    summaries: list[Flow] = []
    engine = Engine(exchanges.append, (80, 8000, 8080), only_server_ports=True, shard=shard,
                    tracker=FlowTracker(summaries.append) if flows else None)
    for linktype, ts, frame in CaptureFile(str(path)):
        engine.feed(linktype, ts, frame, "lab")
    engine.finish()
    return exchanges, summaries, engine.counters


def key(x: Exchange) -> tuple:
    return x.ts, x.client_port, x.target, x.status, x.response_bytes, x.flags


@pytest.mark.parametrize("count", [2, 3, 7])
def test_the_shares_together_are_the_whole(count):
    whole, _, counters = read(LAB_HTTP)
    parts = [read(LAB_HTTP, (index, count)) for index in range(count)]
    assert sorted(key(x) for part in parts for x in part[0]) == sorted(key(x) for x in whole)
    assert sum(1 for part in parts if part[0]) > 1, "the connections were spread"
    for field in fields(EngineCounters):
        if isinstance(getattr(counters, field.name), int):
            shares = [getattr(part[2], field.name) for part in parts]
            expected = getattr(counters, field.name)
            assert (shares == [expected] * count if field.name in SHARED_COUNTERS else sum(shares) == expected), \
                field.name


def test_each_flow_is_summarised_by_one_share():
    _, whole, _ = read(LAB_FLOWS, flows=True)
    parts = [read(LAB_FLOWS, (index, 2), flows=True)[1] for index in range(2)]
    assert sorted(map(repr, parts[0] + parts[1])) == sorted(map(repr, whole))
