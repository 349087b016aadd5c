"""Cost of huge header lines: eyes-devine's engine on a 1 MB and an 8 MB header line, against tshark.

    .venv/bin/python benchmarks/header_cost.py [--runs 5] [--before TREE]

Builds each capture itself: one request whose header line is the given size, in
1448-byte segments as TCP carries it, then a small request on the same
connection.  eyes-devine's engine is timed in a child process on the capture's
frames, read into memory first (best of --runs, CPU time), with the default
header limit (64 KiB: the rest of the head is skipped, then the next request
found) and with the largest (16 MiB: the whole head is parsed).  tshark reads
the same files (`-T fields`, CPU time less its start-up on a small capture).
Linear cost means 8 MB costs about 8x 1 MB; the target is within 10x.
``--before TREE`` also times an older checkout of eyes-devine (through
PYTHONPATH).  Appends the figures to benchmarks/RESULTS.md.  Needs tshark; no root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scapy.utils import wrpcap  # noqa: E402

from benchmarks.results import append_results  # noqa: E402
from tests.pcaps.hostile import Conversation  # noqa: E402

MSS = 1448
SIZES = (1 << 20, 8 << 20)

ENGINE_TIMER = """
import sys, time
try:
    from eyes_devine.adapters.pcapfile import CaptureFile
    from eyes_devine.core.engine import Engine
    from eyes_devine.core.http.framing import HttpLimits
    extra = {"http_limits": HttpLimits(int(sys.argv[3]))}
except ImportError:  # a checkout from before the layered packages, and before the limit
    from eyes_devine.pcapfile import CaptureFile
    from eyes_devine.engine import Engine
    extra = {}
frames = list(CaptureFile(sys.argv[1]))
found = []
best = float("inf")
for _ in range(int(sys.argv[2])):
    found.clear()
    started = time.process_time()
    engine = Engine(found.append, (80,), only_server_ports=True, **extra)
    for linktype, ts, frame in frames:
        engine.feed(linktype, ts, frame, "bench")
    engine.finish()
    best = min(best, time.process_time() - started)
print(best, len(found))
"""


def capture(path: Path, header_bytes: int) -> None:
    conversation = Conversation()
    conversation.handshake()
    head = b"GET /big HTTP/1.1\r\nHost: web\r\nX-Big: " + b"a" * header_bytes + b"\r\n\r\n"
    for start in range(0, len(head), MSS):
        conversation.send(True, head[start:start + MSS])
    conversation.send(False, b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n")
    conversation.send(True, b"GET /next HTTP/1.1\r\nHost: web\r\n\r\n")
    conversation.send(False, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    conversation.close()
    wrpcap(str(path), conversation.packets)


def engine_seconds(path: Path, runs: int, limit: int, tree: str) -> tuple[float, int]:
    result = subprocess.run([sys.executable, "-c", ENGINE_TIMER, str(path), str(runs), str(limit)],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": tree},
                            cwd=tree)  # -c puts the working directory first on sys.path
    if result.returncode != 0:
        sys.exit(f"header_cost.py: timing the engine of {tree} failed: {result.stderr.strip()[-400:]}")
    seconds, exchanges = result.stdout.split()
    return float(seconds), int(exchanges)


def cpu_seconds(argv: list[str], runs: int) -> float:
    """Least CPU time (user + system) of ``runs`` runs of a command."""
    fastest = float("inf")
    for _ in range(runs):
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"header_cost.py: {' '.join(argv)} failed")
        fastest = min(fastest, usage.ru_utime + usage.ru_stime)
    return fastest


def line(name: str, costs: dict[int, float], note: str = "") -> str:
    one, eight = costs[SIZES[0]], costs[SIZES[1]]
    return (f"- {name}: 1 MB header line {one:.3f} CPU s, 8 MB {eight:.3f} CPU s, "
            f"ratio {eight / max(one, 1e-6):.1f}x (linear 8x, target <= 10x){note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", metavar="TREE", help="an older checkout of eyes-devine to time as well")
    args = parser.parse_args()
    tshark = shutil.which("tshark")
    if tshark is None:
        sys.exit("header_cost.py: needs tshark (Debian package tshark)")
    lines = []
    with tempfile.TemporaryDirectory() as workdir:
        files = {size: Path(workdir) / f"header-{size >> 20}MB.pcap" for size in SIZES}
        for size, path in files.items():
            capture(path, size)
        trees = [("eyes-devine, 64 KiB limit (default)", str(ROOT), 65536),
                 ("eyes-devine, 16 MiB limit", str(ROOT), 16 << 20)]
        if args.before:
            trees.append((f"eyes-devine before ({args.before})", args.before, 65536))
        for name, tree, limit in trees:
            measured = {size: engine_seconds(path, args.runs, limit, tree) for size, path in files.items()}
            found = ", ".join(f"{measured[size][1]}" for size in SIZES)
            lines.append(line(name, {size: seconds for size, (seconds, _) in measured.items()},
                              f"; exchanges found: {found}"))
            print(lines[-1], flush=True)
        small = Path(workdir) / "small.pcap"
        capture(small, 10)
        tshark_argv = [tshark, "-T", "fields", "-e", "http.request.uri", "-r"]
        start_up = cpu_seconds([*tshark_argv, str(small)], args.runs)
        costs = {size: max(cpu_seconds([*tshark_argv, str(path)], min(args.runs, 2)) - start_up, 0.0)
                 for size, path in files.items()}
        lines.append(line("tshark -T fields", costs, f" (start-up {start_up:.2f} s not counted)"))
        print(lines[-1], flush=True)
    append_results("header cost", lines)


if __name__ == "__main__":
    main()
