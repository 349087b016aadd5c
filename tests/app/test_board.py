"""The live view's board: per-container counts, rates and percentiles from exchanges."""

from __future__ import annotations

from eyes_devine.app.board import Board
from eyes_devine.records import UNATTRIBUTED
from tests.support.records import make

T0 = 1_800_000_000.0


def test_rows_count_by_status_class_and_sort_by_activity_with_unattributed_last() -> None:
    board = Board()
    for i in range(10):
        board.add(make(i, ts=T0 + i, container="web", container_id="a" * 12, status=(200, 301, 404, 503, None)[i % 5],
                       latency_ms=float(i + 1)))
    for i in range(3):
        board.add(make(i, ts=T0 + 50, container="api", container_id="b" * 12))
    board.add(make(0, ts=T0 + 50))
    snapshot = board.snapshot(T0 + 59, services={"a" * 12: ("web", "nginx:1.25")})
    assert [row.name for row in snapshot.rows] == ["web", "api", UNATTRIBUTED]
    web = snapshot.rows[0]
    assert (web.requests, web.by_class, web.service, web.image) == (10, (2, 2, 2, 2, 2), "web", "nginx:1.25")
    assert (web.p50_ms, web.p95_ms) == (6.0, 10.0)
    assert web.rate == 10 / 60 and web.last.ts == T0 + 9
    assert snapshot.total == 14 and len(snapshot.latest) == 14


def test_the_rate_forgets_requests_older_than_a_minute() -> None:
    board = Board()
    board.add(make(0, ts=T0, container="web", container_id="a" * 12))
    board.add(make(1, ts=T0 + 70, container="web", container_id="a" * 12))
    [row] = board.snapshot(T0 + 71).rows
    assert row.requests == 2 and row.rate == 1 / 60


def test_an_outbound_request_counts_for_its_caller_and_filters_apply() -> None:
    board = Board(wanted=lambda x: x.server_port == 80)
    board.accept(make(0, client_container="worker", client_container_id="c" * 12))
    board.accept(make(1, server_port=8080, container="web", container_id="a" * 12))
    [row] = board.snapshot(T0).rows
    assert (row.name, row.requests) == ("worker", 1)
