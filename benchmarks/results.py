"""Where every benchmark writes its figures: one dated entry in benchmarks/RESULTS.md, naming the machine."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def append_results(title: str, lines: list[str], conditions: str = "") -> None:
    """``## title, date (machine[; conditions])`` and a bullet per line (a line may already be one)."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    bullets = "".join(line + "\n" if line.startswith("- ") else f"- {line}\n" for line in lines)
    with open(RESULTS, "a", encoding="utf-8") as results:
        results.write(f"\n## {title}, {stamp} ({machine}{'; ' + conditions if conditions else ''})\n\n{bullets}")


def compile_bytecode(tree: str | Path) -> None:
    """Write the tree's bytecode even when PYTHONDONTWRITEBYTECODE is set: a timed or counted run would otherwise
    compile every module it imports, each time."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", "eyes_devine"], cwd=tree, env=env, check=True,
                   stdout=subprocess.DEVNULL)
