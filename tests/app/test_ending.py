"""The final line of `run`: what was stored, each sink's losses with their reasons, capture drops named apart."""

from __future__ import annotations

from eyes_devine.adapters.store.writer import StoreWriter
from eyes_devine.app.ending import EXIT_LOST, EXIT_OK, ending
from eyes_devine.sinks import QueuedSink
from eyes_devine.snapshots import EngineSnapshot, MonitorSnapshot
from tests.support.records import flow, make


def monitor(kernel_drops: int = 0, queue_drops: int = 0) -> MonitorSnapshot:
    return MonitorSnapshot(EngineSnapshot(0.0), kernel_drops, queue_drops, False, "not connected", 0)


def test_every_sink_that_lost_records_is_named_with_its_reasons_and_the_exit_is_3(tmp_path):
    writer = StoreWriter(tmp_path / "x.db", 1000, max_pending=5)
    for i in range(8):  # before the writer runs: 5 queued, 3 refused
        writer.accept(make(i))
    writer.start()
    writer.close()
    stdout = QueuedSink("stdout", lambda batch: 0)  # a reader that takes nothing
    for i in range(1200):
        stdout.accept(make(i))
    stdout.close(5)
    end = ending(writer, [writer, stdout], monitor(kernel_drops=7), flows=False)
    assert end.code == EXIT_LOST == 3 and end.lost == 1203
    assert end.message == ("stopped: 5 exchanges stored; 3 not stored (queue full), 1,200 not printed on stdout "
                           "(not delivered); capture dropped 7 packets (kernel 7)")


def test_a_sink_with_several_reasons_counts_each(tmp_path):
    writer = StoreWriter(tmp_path / "x.db", 1000, max_pending=1)
    writer.accept(make(0))
    writer.accept(make(1))  # refused: the queue holds one
    writer.start()
    writer.close()
    writer.accept(make(2))  # after close
    end = ending(writer, [writer], monitor(), flows=False)
    assert end.message == "stopped: 1 exchange stored; 2 not stored (1 queue full; 1 arrived after stop)"


def test_capture_drops_are_reported_but_a_run_that_lost_no_record_exits_0(tmp_path):
    writer = StoreWriter(tmp_path / "x.db", 1000)
    writer.start()
    writer.accept(make(0))
    writer.accept(flow(0, "dns"))
    writer.close()
    end = ending(writer, [writer], monitor(kernel_drops=1200, queue_drops=34), flows=True)
    assert end.code == EXIT_OK and end.lost == 0
    assert end.message == ("stopped: 1 exchange and 1 flow stored; nothing lost; "
                           "capture dropped 1,234 packets (kernel 1,200, engine queue 34)")
