"""The stdout sink on real pipes: a reader that stops reading or goes away costs lines, counted with the reason."""

from __future__ import annotations

import os

from eyes_devine.app.outputs import JsonLinesSink
from tests.support.records import make


def test_a_pipe_nobody_reads_fills_the_queue_and_what_is_left_at_close_is_counted():
    read_end, write_end = os.pipe()
    try:
        sink = JsonLinesSink(write_end, max_queued=50)
        for i in range(2000):  # 4 MB: far more than a 64 KiB pipe and a 50-record queue hold
            sink.accept(make(i, target=f"/{i}/" + "x" * 2000))
        sink.close(0.2)
        accepted, written, dropped = sink.counters()
        losses = sink.losses()
        assert accepted == 2000 and written + dropped == 2000 and written < 2000
        assert losses["queue full"] > 0 and losses["still queued 0.2 s after stop"] > 0, losses
        assert sum(losses.values()) == dropped
    finally:
        os.close(read_end)  # the blocked write fails now and ends the sink's thread
        os.close(write_end)


def test_a_reader_that_went_away_is_named_as_the_reason():
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        sink = JsonLinesSink(write_end)
        for i in range(10):
            sink.accept(make(i))
        sink.close(5)
        assert sink.counters() == (10, 0, 10)
        assert sink.losses() == {"write failed: Broken pipe": 10}
    finally:
        os.close(write_end)
