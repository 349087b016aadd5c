"""Exchanges per second the store writer sustains into PostgreSQL, one writer and four at once, against SQLite.

    sudo .venv/bin/python benchmarks/store_throughput.py [--records 200000] [--batch-size 500] [--runs 3]

Each writer is the `run` process's own sink (StoreWriter, on its thread, in
batches of --batch-size) in a process of its own, with an observer of its own,
fed --records browser-like exchanges spread over 50 containers as fast as
``accept`` takes them, with the default ``--keep`` of 1,000 per container, so
past the first 50,000 every batch deletes as many rows as it inserts.  The
figure is records / seconds from the first accept until every record is
stored (written and committed, the trims included).
PostgreSQL is the tests' own cluster (initdb + pg_ctl in a temp dir, on this
machine, fsync off as in the tests); SQLite is a file in a temp dir, measured
in the same run as the peer.  Best of --runs.  Appends to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import append_results  # noqa: E402
from eyes_devine.adapters.store.sqlite import DEFAULT_KEEP  # noqa: E402
from eyes_devine.adapters.store.writer import StoreWriter  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.records import make  # noqa: E402

CONTAINERS = 50


def records(count: int, observer: str) -> list:
    now = time.time()
    return [make(i, ts=now + i / 1e6, target=f"/api/items/{i}?page={i % 7}", observer=observer,
                 container=f"svc-{i % CONTAINERS}", container_id=f"{i % CONTAINERS:012x}") for i in range(count)]


def write(db: str, observer: str, count: int, batch_size: int, keep: int, answer: multiprocessing.Queue) -> None:
    """One writer process: accept ``count`` records, then wait until every one is stored; puts records/second."""
    made = records(count, observer)
    writer = StoreWriter(db, keep, batch_size=batch_size, max_pending=count + 1, observer=observer)
    writer.start()
    started = time.perf_counter()
    for record in made:
        writer.accept(record)
    while writer.written < count:
        if writer.failed_batches:
            answer.put(f"failed: {writer.losses()}")
            writer.close()
            return
        time.sleep(0.005)
    seconds = time.perf_counter() - started
    writer.close()
    answer.put(count / seconds)


def measure(db_for, writers: int, count: int, batch_size: int, keep: int) -> float:
    """Records per second over all ``writers`` together (each process its own database connection)."""
    answers: multiprocessing.Queue = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=write, args=(db_for(n), f"bench-{n}", count, batch_size, keep,
                                                             answers)) for n in range(writers)]
    for process in processes:
        process.start()
    rates = [answers.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    failed = [rate for rate in rates if isinstance(rate, str)]
    if failed:
        raise SystemExit(f"a writer failed: {failed[0]}")
    return count * writers / max(count / rate for rate in rates)  # all of it, over the slowest writer's time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000, help="records per writer")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    keep = DEFAULT_KEEP  # as `run` keeps: past 1,000 per container every batch also deletes as many as it adds
    server = PostgresServer()
    lines = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            sqlite_runs = [measure(lambda n, run=run: str(Path(scratch) / f"s{run}-{n}.db"), 1, args.records,
                                   args.batch_size, keep) for run in range(args.runs)]
            results = {}
            for writers in (1, 4):
                rates = []
                for _ in range(args.runs):
                    url = server.new_database()
                    rates.append(measure(lambda n, url=url: url, writers, args.records, args.batch_size, keep))
                results[writers] = max(rates)
        sqlite = max(sqlite_runs)
        lines = [
            f"one writer into PostgreSQL: **{results[1]:,.0f} exchanges/s** ({results[1] / sqlite:.2f}x SQLite's "
            f"{sqlite:,.0f}/s in the same run)",
            f"four writers at once, four observers, one database: **{results[4]:,.0f} exchanges/s** together "
            f"({results[4] / results[1]:.2f}x one writer)",
            f"{args.records:,} exchanges per writer over {CONTAINERS} containers, batches of {args.batch_size}, "
            f"best of {args.runs}; PostgreSQL {server.execute('SHOW server_version')[0][0]} on this machine",
        ]
    finally:
        server.close()
    for line in lines:
        print(line)
    append_results("store throughput", lines, "the writers and PostgreSQL share the machine; fsync off")


if __name__ == "__main__":
    main()
