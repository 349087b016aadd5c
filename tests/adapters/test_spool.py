"""The spool batches wait in while the database cannot be reached: its memory bound, its file, and who may own it."""

from __future__ import annotations

import os
import uuid

from eyes_devine.adapters.store.spool import Batch, Spool, spool_problem
from tests.support.records import flow, make

RUN = uuid.uuid4()


def batch(first: int, size: int = 10) -> Batch:
    return Batch((RUN, first), [make(i) for i in range(first, first + size - 1)], [flow(first)])


def test_past_its_memory_bound_the_oldest_batches_go_to_the_file_in_order(tmp_path):
    spool = Spool(memory_records=20, path=tmp_path / "spool.jsonl")
    for first in range(0, 50, 10):
        spool.add(batch(first))
    assert [b.key[1] for b in spool.batches] == [30, 40] and spool.records == 20 and spool.flow_records == 2
    assert [(index, b.key[1]) for index, b in spool.file_batches()] == [(0, 0), (1, 10), (2, 20)]
    assert next(spool.file_batches())[1] == batch(0), "a batch reads back as it was spooled"
    assert spool.overflowed == [0, 0, 0]
    assert os.stat(tmp_path / "spool.jsonl").st_mode & 0o777 == 0o600


def test_what_was_sent_from_the_file_is_dropped_from_it_and_the_rest_kept(tmp_path):
    spool = Spool(memory_records=1, path=tmp_path / "spool.jsonl")
    for first in range(0, 40, 10):
        spool.to_file(batch(first))
    spool.keep_file_from(2)
    assert [b.key[1] for _, b in spool.file_batches()] == [20, 30]
    spool.keep_file_from(2)
    assert list(spool.file_batches()) == [] and spool.file_bytes() == 0


def test_without_a_file_what_overflows_is_counted_by_kind():
    spool = Spool(memory_records=15)
    for first in range(0, 30, 10):
        spool.add(batch(first))
    assert [b.key[1] for b in spool.batches] == [20] and spool.overflowed == [18, 2, 0]


def test_a_spool_file_others_could_write_or_replace_is_refused(tmp_path):
    uid = os.geteuid()
    mine = tmp_path / "spool.jsonl"
    assert spool_problem(mine, uid) is None
    mine.write_text("")
    os.chmod(mine, 0o666)
    assert spool_problem(mine, uid) == "others can write it; chmod go-w it"
    os.chmod(mine, 0o600)
    assert "belongs to uid" in spool_problem(mine, uid + 1)
    (tmp_path / "link").symlink_to(mine)
    assert spool_problem(tmp_path / "link", uid) == "not a regular file"
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    assert "writable by everyone" in spool_problem(open_dir / "spool.jsonl", uid)
