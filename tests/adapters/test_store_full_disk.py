"""The writer on a real full filesystem: batches that do not fit are counted, capture goes on, and writing resumes
by itself once there is space again."""

from __future__ import annotations

import sqlite3

from eyes_devine.adapters.store.writer import StoreWriter
from eyes_devine.records import Exchange
from tests.support.disks import fill, small_disk
from tests.support.records import WEB, make
from tests.support.service import wait_until


def served_by_web(i: int, **changes: object) -> Exchange:
    return make(i, container="web", container_id=WEB, **changes)


def test_a_full_disk_fails_batches_once_in_the_log_and_writing_resumes_when_space_returns(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        db = disk / "x.db"
        errors: list[str] = []
        recovered: list[tuple[int, int]] = []
        writer = StoreWriter(db, 1_000_000, on_error=errors.append,
                             on_recovered=lambda batches, records: recovered.append((batches, records)))
        writer.start()
        for i in range(10):
            writer.accept(served_by_web(i, target=f"/before/{i}"))
        wait_until(lambda: writer.written == 10, 5, "10 written")
        filler = fill(disk)
        for batch in range(3):
            for i in range(20):
                writer.accept(served_by_web(i, target=f"/full/{batch}/{i}"))
            wait_until(lambda batch=batch: writer.failed_batches == batch + 1, 5, "a failed batch")
        filler.unlink()
        for i in range(10):
            writer.accept(served_by_web(i, target=f"/after/{i}"))
        wait_until(lambda: writer.written == 20, 5, "20 written")
        writer.close()
        assert errors == [f"{db}: database or disk is full"]
        assert recovered == [(3, 60)]
        assert writer.counters() == (80, 20, 60)
        assert writer.losses() == {f"in 3 failed batches: {db}: database or disk is full": 60}
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as reader:
            targets = [row[0] for row in reader.execute("SELECT target FROM exchanges ORDER BY id")]
            assert reader.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        reader.close()
        assert targets == [f"/before/{i}" for i in range(10)] + [f"/after/{i}" for i in range(10)]
