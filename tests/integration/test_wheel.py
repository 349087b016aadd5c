"""A non-editable install (a wheel) finds its data, the interface profiles and the rules, and runs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path]:
    """The wheel's file names, and a plain (non-editable) install of it."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("eyes_devine-*.whl"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    return zipfile.ZipFile(wheel).namelist(), target


def run_installed(target: Path, probe: str) -> str:
    """``probe`` run by an isolated interpreter that sees the plain install only (not this checkout)."""
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r})\n" + probe],
                            cwd=target.parent, capture_output=True, text=True, check=True)
    return result.stdout


def test_wheel_ships_the_profiles_and_a_plain_install_loads_them(installed):
    names, target = installed
    for os_name in ("linux", "darwin", "windows"):
        assert f"eyes_devine/profiles/{os_name}.toml" in names
    probe = ("from eyes_devine.app.profiles import load_profile\n"
             "for name in ('linux', 'darwin', 'windows'):\n"
             "    print(load_profile(name).source)\n")
    assert run_installed(target, probe).split("\n")[:3] == ["built-in linux.toml", "built-in darwin.toml",
                                                             "built-in windows.toml"]


def test_wheel_ships_the_rules_and_a_plain_install_loads_them(installed):
    names, target = installed
    assert "eyes_devine/rulesets/http.toml" in names
    probe = ("from eyes_devine.enrich.rule_data import _builtin_text, rule_book\n"
             "print(_builtin_text()[1], len(rule_book().ids))\n")
    assert run_installed(target, probe).split() == ["built-in", "http.toml", "11"]
