"""What exporting costs: CPU per 1,000 requests with metrics on, with OTLP at sample 1.0 and 0.1, against off.

    sudo .venv/bin/python benchmarks/export_cost.py [--capture FILE] [--runs 3] [--live RATE]

Each mode runs in a fresh interpreter: a capture's exchanges go through the
engine, the security rules and the store (a SQLite file and the memory rings
with the ring bound, as `run` keeps them), plus the sinks of the mode: the Prometheus metrics sink,
the OTLP sink posting to a receiver in another process (its CPU is not
counted), or both.  The figure is the process's CPU time (every thread, the
exporters' included) per 1,000 exchanges, best of --runs, and its ratio to the
same run with exports off.  Without --capture it makes the 300,000-packet
capture of read_vs_tshark.py (needs root, nginx, wrk, tcpdump).

``--live RATE`` also measures `eyes-devine run` itself, as live_completeness.py
does: hey loads an nginx container at RATE requests/s for --seconds, and the
figure is the CPU seconds of the `run` process per 1,000 responses, each mode
in turn, --runs rounds (best kept).  Appends the figures to
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.read_vs_tshark import keep_alive_capture  # noqa: E402
from benchmarks.results import append_results  # noqa: E402

MODES = ("off", "metrics", "otlp 1.0", "otlp 0.1", "metrics and otlp 1.0")

CHILD = r"""
import json, sys, time
from pathlib import Path
from eyes_devine.adapters.store.memory import RingBuffers
from eyes_devine.adapters.store.writer import StoreWriter
from eyes_devine.app.directory import ContainerDirectory
from eyes_devine.app.logs import MemoryLog
from eyes_devine.app.pipeline import Stages, read_capture
from eyes_devine.config import Settings
from eyes_devine.enrich.annotator import build_annotator

capture, mode, db, receiver = sys.argv[1:5]
settings = Settings.build({})
sinks = [StoreWriter(db, settings.keep, max_pending=10**7), RingBuffers(settings.keep)]  # what `run` always has
sinks[0].start()
directory = ContainerDirectory()
if "metrics" in mode:
    from eyes_devine.adapters.metrics import Metrics
    from eyes_devine.app.metrics import MetricsSink
    sinks.append(MetricsSink(Metrics(lambda: ()), directory))
if "otlp" in mode:
    from eyes_devine.adapters.otlp import Exporter, SpanBuilder
    from eyes_devine.app.otlp import OTLP_QUEUE, OtlpSink
    sample = float(mode.split()[-1])
    sinks.append(OtlpSink(Exporter(receiver, "http/protobuf", {}, 10.0), SpanBuilder({}, "bench", "unknown_service"),
                          directory, receiver, MemoryLog(), sample, max_queued=10**7))
started = time.process_time()
result = read_capture(capture, settings.ports, Stages(sinks, build_annotator(settings, lambda line: None)))
for sink in sinks:
    sink.close(600)
seconds = time.process_time() - started
print(json.dumps({"cpu": seconds, "exchanges": result.counters.exchanges,
                  "dropped": sum(sink.counters().dropped for sink in sinks)}))
"""

RECEIVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args): pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def run_mode(capture: Path, mode: str, receiver: str, workdir: Path, runs: int) -> dict:
    best: dict | None = None
    for attempt in range(runs):
        db = workdir / f"{mode.replace(' ', '-')}-{attempt}.db"
        result = subprocess.run([sys.executable, "-c", CHILD, str(capture), mode, str(db), receiver],
                                capture_output=True, text=True, cwd=ROOT)
        if result.returncode != 0:
            sys.exit(f"export_cost.py: mode {mode!r} failed: {result.stderr.strip()[-800:]}")
        figures = json.loads(result.stdout.splitlines()[-1])
        if best is None or figures["cpu"] < best["cpu"]:
            best = figures
    assert best is not None
    return best


LIVE_ARGS = {"off": [], "metrics": ["--metrics", "0"], "otlp 1.0": ["--otlp", "{url}"],
             "otlp 0.1": ["--otlp", "{url}", "--otlp-sample", "0.1"],
             "metrics and otlp 1.0": ["--metrics", "0", "--otlp", "{url}"]}


def live_figures(rate: int, seconds: int, runs: int, receiver: str, workdir: Path) -> list[str]:
    """CPU of `run` per 1,000 responses under hey at ``rate``, each mode in turn, best of ``runs`` rounds."""
    from benchmarks.live_completeness import Run, cpu_seconds, docker_engine, hey, nginx_container
    from tests.support.images import ensure_image
    from tests.support.prometheus import free_port

    client, env, engine = docker_engine()
    best: dict[str, float] = {}
    container = nginx_container(client, ensure_image(client, shutil.which("busybox")), workdir)
    try:
        url = f"http://{container.attrs['NetworkSettings']['Networks']['bridge']['IPAddress']}/"
        time.sleep(1)
        for round_ in range(runs):
            for mode, args in LIVE_ARGS.items():
                args = [arg.replace("{url}", receiver.removesuffix("/v1/traces")) for arg in args]
                args = [str(free_port()) if arg == "0" else arg for arg in args]
                run = Run(["-i", "docker0", "--db", str(workdir / f"live-{round_}-{len(best)}.db"), *args], env)
                time.sleep(2)
                before = cpu_seconds(run.process.pid)
                responses = hey(url, rate, seconds)
                time.sleep(2)
                per_1k = (cpu_seconds(run.process.pid) - before) / responses * 1000
                run.stop()
                best[mode] = min(best.get(mode, float("inf")), per_1k)
                print(f"  round {round_ + 1}, {mode}: {per_1k:.4f} CPU s per 1k responses", flush=True)
    finally:
        container.remove(force=True)
        if engine is not None:
            engine.close()
    lines = [f"live, `run -i docker0` under hey at {rate:,} req/s for {seconds} s (hey, nginx and the monitor share "
             f"the machine), CPU of the run process, best of {runs} rounds"]
    lines += [f"{mode:<22} {cpu:.4f} CPU s per 1k requests, {cpu / best['off']:.2f}x off" for mode, cpu in best.items()]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capture", type=Path, help="a keep-alive capture (default: make the 300k-packet one)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--live", type=int, metavar="RATE", help="also measure `run` live at RATE requests/s")
    parser.add_argument("--seconds", type=int, default=10, help="seconds of load per live measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edx-") as tmp:
        workdir = Path(tmp)
        capture = keep_alive_capture(args.capture, workdir)
        receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{receiver.stdout.readline().strip()}/v1/traces"  # type: ignore[union-attr]
            figures = {mode: run_mode(capture, mode, url, workdir, args.runs) for mode in MODES}
            live = live_figures(args.live, args.seconds, args.runs, url, workdir) if args.live else []
        finally:
            receiver.kill()
            receiver.wait()
    off = figures["off"]
    lines = [f"capture: {capture.name}, {off['exchanges']:,} exchanges; CPU of the whole process (engine, rules, "
             "store, exporters), best of " + str(args.runs)]
    for mode, result in figures.items():
        per_1k = result["cpu"] / result["exchanges"] * 1000
        ratio = result["cpu"] / off["cpu"]
        lines.append(f"{mode:<22} {per_1k:.4f} CPU s per 1k requests, {ratio:.2f}x off"
                     + (f" ({result['dropped']} dropped)" if result["dropped"] else ""))
    lines += live
    print("\n".join(lines))
    append_results("export cost", lines)


if __name__ == "__main__":
    main()
