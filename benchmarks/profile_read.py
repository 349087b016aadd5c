"""Where `read --json` spends its time: cProfile over one read of a capture, the top functions kept.

    .venv/bin/python benchmarks/profile_read.py CAPTURE [--top 30] [--out benchmarks/profiles/read.txt]

Profiling slows Python code several times, and C code (llhttp's parsing inside
httptools) is charged to its Python caller, so the figures rank hot spots; the
timings of record are read_vs_tshark.py's.  The profile of record is kept in
benchmarks/profiles/ with the capture it was taken on.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("capture", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "profiles" / "read.txt")
    args = parser.parse_args()
    from eyes_devine.cli import main as cli

    sys.argv = ["eyes-devine", "read", "--json", "-q", "--no-docker", str(args.capture)]
    profile = cProfile.Profile()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        profile.enable()
        with contextlib.suppress(SystemExit):
            cli()
        profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(args.top)
    report = f"# cProfile of `eyes-devine read --json` on {args.capture.name}, by own time\n\n" + "\n".join(
        line.replace(str(ROOT) + "/", "") for line in text.getvalue().splitlines())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
