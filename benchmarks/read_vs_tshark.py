"""Offline throughput: `eyes-devine read --json` against tshark and httpry on the same keep-alive capture.

    sudo .venv/bin/python benchmarks/read_vs_tshark.py [--packets 300000] [--runs 3] [--keep FILE]
                                                       [--capture FILE | --connections N] [--workers 1,2]

Builds the capture itself: nginx in one network namespace, wrk in another, both on
a Linux bridge (as containers on docker0 are), tcpdump on the bridge until it has
--packets packets.  Then times the tools on that file in the same run (best of
--runs): eyes-devine with each --workers count, tshark (one pass, HTTP fields),
and httpry (a C logger of HTTP lines, without reassembly or pairing), counts the
exchanges each finds, prints the figures and appends them to
benchmarks/RESULTS.md.  Needs root, nginx, wrk, tcpdump and tshark; httpry if
installed.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import struct
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


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def _frame(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, socket.inet_aton(src),
                     socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp


def many_connections_capture(path: Path, connections: int) -> None:
    """``connections`` short connections, one GET and its answer each (6 packets): the other extreme from the
    keep-alive capture's 16 connections, and the workload that shares well between read workers."""
    request = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    ts = 1_700_000_000.0
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for index in range(connections):
            client, server, port = f"10.{(index >> 8) & 255}.{index & 255}.2", "10.9.9.9", 1024 + index % 60000
            for frame in (
                    _frame(client, server, port, 80, 1, 0, 0x02, b""),
                    _frame(server, client, 80, port, 100, 2, 0x12, b""),
                    _frame(client, server, port, 80, 2, 101, 0x18, request),
                    _frame(server, client, 80, port, 101, 2 + len(request), 0x18, response),
                    _frame(client, server, port, 80, 2 + len(request), 101 + len(response), 0x11, b""),
                    _frame(server, client, 80, port, 101 + len(response), 3 + len(request), 0x11, b"")):
                ts += 0.0001
                out.write(struct.pack("<IIII", int(ts), int(ts % 1 * 1e6), len(frame), len(frame)) + frame)


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
    parser.add_argument("--workers", default="1,2", help="comma-separated read --workers counts to time")
    parser.add_argument("--connections", type=int, default=0,
                        help="read a made-up capture of this many one-request connections instead (6 packets each)")
    args = parser.parse_args()
    counts = [int(count) for count in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="edb-") as tmp:
        workdir = Path(tmp)
        capture = args.capture or workdir / "load.pcap"
        if args.connections:
            capture = workdir / "connections.pcap"
            many_connections_capture(capture, args.connections)
        elif args.capture is None:
            make_capture(capture, args.packets, workdir)
        if args.keep:
            shutil.copy(capture, args.keep)
        frames = int(subprocess.run(["capinfos", "-c", "-M", str(capture)], capture_output=True, text=True)
                     .stdout.split()[-1]) if shutil.which("capinfos") else args.packets
        compile_bytecode(ROOT)
        ours = {count: best_time([sys.executable, "-m", "eyes_devine", "read", "--json", "-q", "--no-docker",
                                  "--workers", str(count), str(capture)], args.runs) for count in counts}
        fields = [arg for name in TSHARK_FIELDS for arg in ("-e", name)]
        tshark_s, theirs = best_time(["tshark", "-r", str(capture), "-Y", "http", "-T", "fields", *fields],
                                     args.runs)
        httpry = shutil.which("httpry") or shutil.which("httpry", path="/usr/sbin")
        httpry_s, httpry_lines = best_time([httpry, "-q", "-r", str(capture)], args.runs) if httpry else (0.0, "")
    status_column = TSHARK_FIELDS.index("http.response.code")
    tshark_exchanges = sum(1 for line in theirs.splitlines() if line.split("\t")[status_column])
    described = (f"{args.connections} made-up connections of one GET each" if args.connections else
                 "nginx keep-alive, wrk -c16, bridge between namespaces")
    lines = [f"capture: {frames} packets ({described})"]
    for count, (seconds, output) in ours.items():
        exchanges = sum(1 for line in output.splitlines() if '"status":null' not in line)
        found = exchanges / tshark_exchanges if tshark_exchanges else float("nan")
        lines.append(f"eyes-devine read --json --workers {count}: {seconds:.2f} s, {frames / seconds:,.0f} packets/s, "
                     f"{exchanges} exchanges ({found:.2%} of tshark's; target >= 99%), "
                     f"{tshark_s / seconds:.2f}x tshark (target >= 5x)")
    lines.append(f"tshark -T fields: {tshark_s:.2f} s, {frames / tshark_s:,.0f} packets/s, "
                 f"{tshark_exchanges} responses")
    if httpry:
        responses = sum(1 for line in httpry_lines.splitlines() if "\t<\t" in line)
        lines.append(f"httpry -r (C, no reassembly or pairing): {httpry_s:.2f} s, {responses} response lines")
    if 1 in ours and len(ours) > 1:
        lines.append("worker scaling: " + ", ".join(f"{count} workers {ours[1][0] / seconds:.2f}x one"
                                                    for count, (seconds, _) in ours.items() if count != 1)
                     + " (target >= 1.7x for 2)")
    print("\n".join(lines))
    append_results("read vs tshark", lines)


if __name__ == "__main__":
    main()
