"""The layers hold: import-linter and ruff pass on the package, and a wrong import is caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "lint-imports")], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PATH": str(BIN), "PYTHONPATH": str(cwd)})


def test_the_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_core_module_importing_an_adapter_breaks_the_layers(tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(ROOT / "eyes_devine", copy / "eyes_devine", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    decode = copy / "eyes_devine" / "core" / "decode.py"
    decode.write_text(decode.read_text() + "\nimport eyes_devine.adapters.pcapfile  # noqa: E402\n")
    result = lint_imports(copy)
    assert result.returncode != 0
    assert "eyes_devine.core.decode -> eyes_devine.adapters.pcapfile" in result.stdout


def test_ruff_bans_a_library_outside_its_adapter(tmp_path):
    stray = tmp_path / "eyes_devine" / "enrich" / "stray.py"
    stray.parent.mkdir(parents=True)
    stray.write_text("import scapy\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", str(stray)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "TID251" in result.stdout, result.stdout


def test_the_json_view_and_the_records_load_no_capture_or_parser_library():
    probe = ("import sys, eyes_devine.views.jsonl, eyes_devine.records, eyes_devine.sinks; "
             "print(sorted(m for m in ('scapy', 'httptools', 'docker', 'aiosqlite', 'rich') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
