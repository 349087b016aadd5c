"""The queued sink: the engine thread never waits, and every record is either delivered or counted as dropped."""

from __future__ import annotations

import threading
import time

from eyes_devine.sinks import QueuedSink
from tests.support.records import make


def test_records_are_delivered_in_order_on_the_sinks_own_thread():
    seen: list[tuple[str, str]] = []

    def deliver(batch: list) -> int:
        seen.extend((threading.current_thread().name, x.target) for x in batch)
        return len(batch)

    sink = QueuedSink("test", deliver)
    for i in range(500):
        sink.accept(make(i))
    assert sink.flush(5)
    sink.close(5)
    assert [target for _, target in seen] == [f"/items/{i}" for i in range(500)]
    assert {name for name, _ in seen} == {"eyes-devine-test"}
    assert sink.counters() == (500, 500, 0)


def test_a_blocked_delivery_never_blocks_accept_and_what_it_held_is_counted_at_close():
    release = threading.Event()

    def stuck(batch: list) -> int:
        release.wait()
        return len(batch)

    sink = QueuedSink("stuck", stuck, max_queued=100)
    started = time.perf_counter()
    for i in range(1000):
        sink.accept(make(i))
    assert time.perf_counter() - started < 0.5, "accept waited for the stuck delivery"
    sink.close(0.2)
    accepted, written, dropped = sink.counters()
    assert accepted == 1000 and written == 0 and dropped == 1000
    losses = sink.losses()
    assert set(losses) == {"queue full", "still queued 0.2 s after stop"}, losses
    assert losses["still queued 0.2 s after stop"] >= 100, "the full queue and the stuck batch were never delivered"
    assert sum(losses.values()) == 1000
    release.set()
    time.sleep(0.1)
    assert sink.counters() == (1000, 0, 1000), "a late delivery does not count twice"


def test_what_deliver_refuses_counts_as_dropped_and_wants_filters_without_counting():
    sink = QueuedSink("half", lambda batch: len(batch) // 2, wants=lambda x: x.status == 200, batch_size=10)
    for i in range(40):
        sink.accept(make(i, status=200 if i % 2 else 404))
    sink.close(5)
    accepted, written, dropped = sink.counters()
    assert accepted == 20 and written + dropped == 20 and dropped > 0
    assert sink.losses() == {"not delivered": dropped}


def test_a_clean_run_has_no_losses_and_records_after_close_are_counted_apart():
    sink = QueuedSink("late", len)
    sink.accept(make(0))
    sink.close(5)
    assert sink.counters() == (1, 1, 0) and sink.losses() == {}
    sink.accept(make(1))
    assert sink.counters() == (2, 1, 1) and sink.losses() == {"arrived after close": 1}


def test_a_lingering_sink_waits_for_a_full_batch_and_flush_cuts_the_wait_short():
    batches: list[int] = []

    def deliver(batch: list) -> int:
        batches.append(len(batch))
        return len(batch)

    sink = QueuedSink("linger", deliver, batch_size=3, linger=30.0)
    sink.accept(make(0))
    time.sleep(0.3)
    assert batches == [], "one record waits for its batch"
    sink.accept(make(1))
    sink.accept(make(2))
    deadline = time.monotonic() + 5
    while not batches:
        assert time.monotonic() < deadline, "a full batch goes at once"
        time.sleep(0.01)
    assert batches == [3]
    sink.accept(make(3))
    started = time.monotonic()
    assert sink.flush(5) and time.monotonic() - started < 2, "flush does not wait out the linger"
    sink.close(5)
    assert batches == [3, 1] and sink.counters() == (4, 4, 0)
