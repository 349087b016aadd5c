"""Live completeness, CPU per request and memory bounds of `eyes-devine run`, against peers in the same run.

    sudo .venv/bin/python benchmarks/live_completeness.py [--rates 1000,2000,5000,10000,20000] [--seconds 10]
                                                          [--workers 1,2] [--skip-memory]

1. An nginx container (the host's nginx bind-mounted into the busybox test image,
   keep-alive) on docker0; hey from the host at each fixed rate for --seconds.
   Once with `eyes-devine run -i docker0 --json --workers N` capturing, for each
   --workers count: the share of hey's responses it recorded, its kernel and
   queue drops, and the CPU seconds per 1,000 requests of all its processes.
   Once with tshark capturing live and counting HTTP requests (the peer), and
   once with tcpdump writing to /dev/null (its drop count is the reference for
   what the kernel could deliver).
2. Memory: RSS of `run` holding 100 containers x 1000 exchanges (reloaded from
   its database), and while 60,000 half-open TCP flows arrive (more than the
   flow table's 50,000 bound: the excess is evicted and counted).

Prints the figures and appends them to benchmarks/RESULTS.md.  Needs root,
dockerd, busybox-static, nginx, hey, tshark and tcpdump.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import append_results  # noqa: E402
from tests.support.dockerd import answers, start_private_dockerd  # noqa: E402
from tests.support.images import ensure_image  # noqa: E402
from tests.support.netns import Lab  # noqa: E402

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]
NGINX_CONF = """
user root;
worker_processes 1;
daemon off;
pid /tmp/nginx.pid;
error_log stderr;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path /tmp/body; proxy_temp_path /tmp/proxy; fastcgi_temp_path /tmp/fcgi;
  uwsgi_temp_path /tmp/uwsgi; scgi_temp_path /tmp/scgi;
  server { listen 80; location / { return 200 "hello from the benchmark\\n"; } }
}
"""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU of the process and every process under it (capture workers)."""
    total = 0.0
    for member in [pid, *_descendants(pid)]:
        try:
            with open(f"/proc/{member}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def rss_megabytes(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def hey(url: str, rate: int, seconds: int) -> int:
    """Responses hey got at ``rate`` requests/s (50 keep-alive workers)."""
    workers = 50
    result = subprocess.run(["hey", "-z", f"{seconds}s", "-c", str(workers), "-q", str(max(rate / workers, 1)),
                             url], capture_output=True, text=True, check=True)
    return sum(int(count) for count in re.findall(r"\[\d{3}\]\s+(\d+) responses", result.stdout))


class Run:
    """`eyes-devine run --json` with its exchanges counted as they arrive."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen([*EYES_DEVINE, "run", "--log-format", "json", "--stats-interval", "1",
                                         *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.exchanges = 0
        self.log: list[dict] = []
        threading.Thread(target=self._count, daemon=True).start()
        threading.Thread(target=self._logs, daemon=True).start()
        deadline = time.monotonic() + 60
        while not any(line.get("msg") == "capturing" for line in self.log):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"run did not start: {self.log}")
            time.sleep(0.1)

    def _count(self) -> None:
        for _ in self.process.stdout:
            self.exchanges += 1

    def _logs(self) -> None:
        for line in self.process.stderr:
            try:
                self.log.append(json.loads(line))
            except ValueError:
                self.log.append({"msg": line.strip()})

    def stop(self) -> dict:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        time.sleep(0.5)
        return next(line for line in reversed(self.log) if line.get("msg", "").startswith("stopped"))


def measure_eyes_devine(url: str, rate: int, seconds: int, env: dict[str, str], db: Path, workers: int) -> dict:
    run = Run(["-i", "docker0", "--json", "--db", str(db), "--workers", str(workers)], env)
    time.sleep(2)  # Docker listed, filter settled
    before = cpu_seconds(run.process.pid)
    sent = hey(url, rate, seconds)
    time.sleep(2)  # the last exchanges leave the engine
    cpu = cpu_seconds(run.process.pid) - before
    final = run.stop()
    return {"responses": sent, "recorded": run.exchanges, "cpu_s": cpu, "kernel_drops": final["kernel_drops"],
            "queue_drops": final["queue_drops"], "gaps": final["gaps"]}


def measure_tshark(url: str, rate: int, seconds: int) -> dict:
    process = subprocess.Popen(["tshark", "-i", "docker0", "-f", "tcp port 80", "-l", "-Y", "http.request",
                                "-T", "fields", "-e", "frame.number"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    counted = [0]

    def count() -> None:
        for _ in process.stdout:
            counted[0] += 1

    reader = threading.Thread(target=count, daemon=True)
    reader.start()
    time.sleep(3)
    before = cpu_seconds(process.pid)
    sent = hey(url, rate, seconds)
    time.sleep(3)
    cpu = cpu_seconds(process.pid) - before
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    reader.join(10)
    dropped = re.search(r"(\d+) packets? dropped", err or "")
    return {"responses": sent, "recorded": counted[0], "cpu_s": cpu,
            "kernel_drops": int(dropped.group(1)) if dropped else 0}


def measure_tcpdump(url: str, rate: int, seconds: int) -> dict:
    process = subprocess.Popen(["tcpdump", "-i", "docker0", "-s", "128", "-w", "/dev/null", "tcp port 80"],
                               stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    sent = hey(url, rate, seconds)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    captured = re.search(r"(\d+) packets captured", err)
    dropped = re.search(r"(\d+) packets dropped by kernel", err)
    return {"responses": sent, "packets": int(captured.group(1)) if captured else 0,
            "kernel_drops": int(dropped.group(1)) if dropped else 0}


def docker_engine():
    """A Docker client, the environment that names its engine, and the private dockerd started for it (None when
    DOCKER_HOST or the default socket answered)."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    client = answers(host)
    engine = None
    if client is None:
        engine = start_private_dockerd(shutil.which("dockerd"))
        client, host = engine.client, engine.host
    return client, {**os.environ, "DOCKER_HOST": host}, engine


def nginx_container(client, image: str, workdir: Path):
    """The host's nginx in the busybox image: its binary and libraries bind-mounted read-only."""
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF)
    (workdir / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (workdir / "group").write_text("root:x:0:\n")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    volumes = [f"{nginx}:/usr/sbin/nginx:ro", "/usr/lib:/usr/lib:ro", "/usr/lib:/lib:ro", "/lib64:/lib64:ro",
               f"{workdir}:/conf:ro", f"{workdir}/passwd:/etc/passwd:ro", f"{workdir}/group:/etc/group:ro"]
    container = client.containers.run(image, ["/usr/sbin/nginx", "-c", "/conf/nginx.conf"], detach=True,
                                      name=f"edb-nginx-{os.getpid()}", volumes=volumes)
    container.reload()
    return container


def memory_figures(env: dict[str, str], workdir: Path) -> list[str]:
    from eyes_devine.adapters.store.sqlite import open_store
    from eyes_devine.records import Attribution, Exchange

    db = workdir / "memory.db"

    async def fill() -> None:
        store = await open_store(db, 1000)
        for container in range(100):
            cid = f"{container:012x}"
            owner = Attribution(container=f"service-{container}", container_id=cid)
            await store.write([Exchange(ts=time.time(), interface="docker0", client_ip="172.17.0.1",
                                        client_port=40000 + i % 20000, server_ip="172.17.0.2", server_port=80,
                                        method="GET", target=f"/items/{i}?page=2", host="shop", http_version="1.1",
                                        status=200, reason="OK", latency_ms=1.5, duration_ms=1.5, request_bytes=0,
                                        response_bytes=512, user_agent="Mozilla/5.0 (X11; Linux x86_64)",
                                        content_type="application/json", attribution=owner)
                               for i in range(1000)])
        await store.close()

    asyncio.run(fill())
    lab = Lab()
    try:
        bridge = lab.bridge()
        sender = lab.host("m", 9, bridge=bridge)
        run = Run(["-i", bridge, "--db", str(db)], env)
        reloaded = next(line for line in run.log if line.get("msg") == "store opened")["reloaded"]
        time.sleep(2)
        held = rss_megabytes(run.process.pid)
        sender.run(sys.executable, str(ROOT / "benchmarks" / "syn_flood.py"), "60000", check=True, timeout=300)
        time.sleep(3)
        flooded = rss_megabytes(run.process.pid)
        final = run.stop()
    finally:
        lab.close()
    return [
        f"memory: RSS {held:.0f} MB holding {reloaded:,} exchanges (100 containers x 1000) (target <= 150 MB)",
        f"memory: RSS {flooded:.0f} MB after 60,000 half-open flows ({final.get('flows', '?')} flows opened, "
        f"{final.get('flows_evicted', '?')} evicted at the 50,000 bound)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000,2000,5000,10000,20000")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--workers", default="1", help="comma-separated `run --workers` counts, each measured")
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]
    worker_counts = [int(count) for count in args.workers.split(",")]
    for tool in ("hey", "tshark", "tcpdump", "dockerd", "busybox"):
        if shutil.which(tool) is None:
            sys.exit(f"live_completeness.py: {tool} is missing (apt-get install hey tshark tcpdump docker.io "
                     "busybox-static nginx-light)")
    client, env, engine = docker_engine()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edb-") as tmp:
        workdir = Path(tmp)
        container = nginx_container(client, ensure_image(client, shutil.which("busybox")), workdir)
        try:
            url = f"http://{container.attrs['NetworkSettings']['Networks']['bridge']['IPAddress']}/"
            time.sleep(1)
            for rate in rates:
                ours_by_count = {count: measure_eyes_devine(url, rate, args.seconds, env,
                                                            workdir / f"live-{rate}-{count}.db", count)
                                 for count in worker_counts}
                theirs = measure_tshark(url, rate, args.seconds)
                reference = measure_tcpdump(url, rate, args.seconds)
                ours_text = "; ".join(
                    f"eyes-devine --workers {count} recorded {ours['recorded'] / ours['responses']:.2%} of "
                    f"{ours['responses']:,} responses ({ours['kernel_drops']} kernel + {ours['queue_drops']} queue "
                    f"drops, {ours['gaps']} gaps), {ours['cpu_s'] / ours['responses'] * 1000:.3f} CPU s per 1k req "
                    "(all its processes)" for count, ours in ours_by_count.items())
                line = (
                    f"{rate:>6,} req/s offered: {ours_text}; "
                    f"tshark counted {theirs['recorded'] / theirs['responses']:.2%} of {theirs['responses']:,} "
                    f"({theirs['kernel_drops']} drops, {theirs['cpu_s'] / theirs['responses'] * 1000:.3f} CPU s "
                    f"per 1k); tcpdump dropped {reference['kernel_drops']} of {reference['packets']:,} packets"
                )
                print(line, flush=True)
                lines.append(line)
        finally:
            container.remove(force=True)
        if not args.skip_memory:
            for line in memory_figures(env, workdir):
                print(line, flush=True)
                lines.append(line)
    if engine is not None:
        engine.close()
    append_results("live completeness", lines, "hey, nginx and the monitor share the machine")


if __name__ == "__main__":
    main()
