"""Offline throughput: `eyes-devine read --json` against tshark on the same keep-alive capture.

    sudo .venv/bin/python benchmarks/read_vs_tshark.py [--packets 300000] [--runs 3] [--keep FILE]

Builds the capture itself: nginx in one network namespace, wrk in another, both on
a Linux bridge (as containers on docker0 are), tcpdump on the bridge until it has
--packets packets.  Then times both tools on that file in the same run (best of
--runs), counts the exchanges each finds, prints the figures and appends them to
benchmarks/RESULTS.md.  Needs root, nginx, wrk, tcpdump and tshark.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import append_results, compile_bytecode  # noqa: E402
from tests.support.netns import Lab  # noqa: E402

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  server {{
    listen 80;
    location / {{ return 200 "hello from the benchmark\\n"; }}
  }}
}}
"""

TSHARK_FIELDS = ("frame.time_epoch", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "http.request.method",
                 "http.request.uri", "http.host", "http.user_agent", "http.response.code", "http.time",
                 "http.content_type", "http.content_length")


def make_capture(path: Path, packets: int, workdir: Path) -> None:
    lab = Lab()
    try:
        bridge = lab.bridge()
        server = lab.host("s", 2, bridge=bridge)
        client = lab.host("c", 3, bridge=bridge)
        conf = workdir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=workdir))
        lab.processes.append(server.spawn(shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf)))
        time.sleep(0.5)
        dump = subprocess.Popen(["tcpdump", "-i", bridge, "-s", "0", "-w", str(path), "-c", str(packets),
                                 "tcp port 80"], stderr=subprocess.PIPE, text=True)
        while "listening on" not in (dump.stderr.readline() or "listening on"):
            pass
        load = client.spawn("wrk", "-t2", "-c16", "-d120s", f"http://{server.address}/")
        lab.processes.append(load)
        dump.wait(180)
    finally:
        lab.close()


def keep_alive_capture(given: Path | None, workdir: Path) -> Path:
    """``given``, or the 300,000-packet keep-alive capture made in ``workdir``: what the read benchmarks read."""
    if given is not None:
        return given
    made = workdir / "load.pcap"
    make_capture(made, 300_000, workdir)
    return made


def best_time(argv: list[str], runs: int) -> tuple[float, str]:
    best, output = float("inf"), ""
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"read_vs_tshark.py: {' '.join(argv[:4])} failed: {result.stderr.strip()[-500:]}")
        best = min(best, time.perf_counter() - started)
        output = result.stdout
    return best, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="also save the capture here")
    parser.add_argument("--capture", type=Path, help="use this capture instead of making one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edb-") as tmp:
        workdir = Path(tmp)
        capture = args.capture or workdir / "load.pcap"
        if args.capture is None:
            make_capture(capture, args.packets, workdir)
        if args.keep:
            shutil.copy(capture, args.keep)
        frames = int(subprocess.run(["capinfos", "-c", "-M", str(capture)], capture_output=True, text=True)
                     .stdout.split()[-1]) if shutil.which("capinfos") else args.packets
        compile_bytecode(ROOT)
        ours_s, ours = best_time([sys.executable, "-m", "eyes_devine", "read", "--json", "-q", str(capture)],
                                 args.runs)
        fields = [arg for name in TSHARK_FIELDS for arg in ("-e", name)]
        tshark_s, theirs = best_time(["tshark", "-r", str(capture), "-Y", "http", "-T", "fields", *fields],
                                     args.runs)
    ours_exchanges = sum(1 for line in ours.splitlines() if '"status":null' not in line)
    status_column = TSHARK_FIELDS.index("http.response.code")
    tshark_exchanges = sum(1 for line in theirs.splitlines() if line.split("\t")[status_column])
    ratio = tshark_s / ours_s
    found = ours_exchanges / tshark_exchanges if tshark_exchanges else float("nan")
    lines = [
        f"capture: {frames} packets (nginx keep-alive, wrk -c16, bridge between namespaces)",
        f"eyes-devine read --json: {ours_s:.2f} s, {frames / ours_s:,.0f} packets/s, {ours_exchanges} exchanges",
        f"tshark -T fields:        {tshark_s:.2f} s, {frames / tshark_s:,.0f} packets/s, {tshark_exchanges} responses",
        f"throughput ratio: {ratio:.2f}x tshark (target >= 3x); exchanges found: {found:.2%} of tshark's "
        "(target >= 99%)",
    ]
    print("\n".join(lines))
    append_results("read vs tshark", lines)


if __name__ == "__main__":
    main()
