"""Randomly mutated captures: no exception escapes the engine and nothing hangs.

The seeds are the lab capture and the crafted hostile ones (odd bytes, overlapping
copies).  Mutations include conflicting copies of a segment, and a small header
limit is sometimes set, so the lenient, oversized and overlap paths are all fuzzed.

The short run here is part of every test run.  A long one:

    EYES_DEVINE_FUZZ_RUNS=200000 sudo -E scripts/test.sh tests/core/test_fuzz.py -p no:timeout

Each failure names its seed; ``EYES_DEVINE_FUZZ_SEED=<seed>`` replays exactly that case.
"""

from __future__ import annotations

import os
import random

import pytest

from eyes_devine.adapters.pcapfile import CaptureFile, CaptureFileError
from eyes_devine.core.engine import Engine
from eyes_devine.core.http.framing import HttpLimits
from tests.support.captures import PCAPS

RUNS = int(os.environ.get("EYES_DEVINE_FUZZ_RUNS", "3000"))
FIRST_SEED = int(os.environ.get("EYES_DEVINE_FUZZ_SEED", "0"))


def mutate_frame(frame: bytes, rng: random.Random) -> bytes:
    data = bytearray(frame)
    choice = rng.random()
    if choice < 0.5 and data:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif choice < 0.7:
        del data[rng.randrange(len(data) + 1):]
    elif choice < 0.85 and len(data) > 54:
        # rewrite the TCP payload region with junk of the same length (keeps headers plausible)
        start = rng.randrange(54, len(data))
        data[start:] = bytes(rng.randrange(256) for _ in range(len(data) - start))
    else:
        data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return bytes(data)


def mutate_capture(frames: list, rng: random.Random) -> list:
    result = []
    for linktype, ts, frame in frames:
        roll = rng.random()
        if roll < 0.05:
            continue  # lost
        if roll < 0.25:
            frame = mutate_frame(frame, rng)
        result.append((linktype, ts, frame))
        if rng.random() < 0.05:
            result.append((linktype, ts, frame))  # duplicated
        elif rng.random() < 0.05 and len(frame) > 54:
            result.append((linktype, ts, mutate_frame(frame, rng)))  # another copy, other bytes: an overlap
    if rng.random() < 0.5:
        for _ in range(rng.randint(1, 8)):  # swaps anywhere, causality or not
            a, b = rng.randrange(len(result)), rng.randrange(len(result))
            result[a], result[b] = result[b], result[a]
    return result


@pytest.fixture(scope="module")
def captures(lab_http):
    hostile = [list(CaptureFile(str(PCAPS / f"{name}.pcap"))) for name in ("odd-bytes", "overlap-decoy")]
    return [list(CaptureFile(str(lab_http.path))), *hostile]


@pytest.mark.timeout(600)
def test_mutated_captures_never_raise(captures):
    for seed in range(FIRST_SEED, FIRST_SEED + RUNS):
        rng = random.Random(seed)
        mutated = mutate_capture(rng.choice(captures), rng)
        ports = rng.choice([(80, 8080), (80,), ()])
        limits = HttpLimits(max_header_bytes=rng.choice([65536, 1024, 64]))
        engine = Engine(lambda exchange: None, ports, http_limits=limits)
        try:
            for linktype, ts, frame in mutated:
                engine.feed(linktype, ts, frame, "fuzz")
            engine.finish()
        except Exception as error:  # noqa: BLE001 - the point is that nothing escapes
            pytest.fail(f"seed {seed}: {type(error).__name__}: {error}")


@pytest.mark.timeout(300)
def test_damaged_files_end_in_capture_file_errors_only(lab_http, tmp_path):
    original = lab_http.path.read_bytes()
    damaged = tmp_path / "damaged.pcap"
    for seed in range(FIRST_SEED, FIRST_SEED + max(RUNS // 10, 50)):
        rng = random.Random(seed)
        data = bytearray(original)
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            del data[rng.randrange(len(data)):]
        damaged.write_bytes(bytes(data))
        engine = Engine(lambda exchange: None, (80, 8080))
        try:
            with CaptureFile(str(damaged)) as capture:
                for linktype, ts, frame in capture:
                    engine.feed(linktype, ts, frame, "fuzz")
        except CaptureFileError:
            pass
        except Exception as error:  # noqa: BLE001
            if type(error).__name__ == "UnsupportedLinkType":
                continue
            pytest.fail(f"seed {seed}: {type(error).__name__}: {error}")
        engine.finish()
