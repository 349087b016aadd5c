"""A non-editable install (a wheel) finds the interface profiles and runs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_the_profiles_and_a_plain_install_loads_them(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("eyes_devine-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for os_name in ("linux", "darwin", "windows"):
        assert f"eyes_devine/profiles/{os_name}.toml" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    probe = ("from eyes_devine.app.profiles import load_profile\n"
             "for name in ('linux', 'darwin', 'windows'):\n"
             "    print(load_profile(name).source)\n")
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r})\n" + probe],
                            cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[:3] == ["built-in linux.toml", "built-in darwin.toml", "built-in windows.toml"]


def test_wheel_ships_the_rules_and_a_plain_install_loads_them(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("eyes_devine-*.whl"))
    assert "eyes_devine/rulesets/http.toml" in zipfile.ZipFile(wheel).namelist()
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    probe = ("from eyes_devine.enrich.rule_data import _builtin_text, rule_book\n"
             "print(_builtin_text()[1], len(rule_book().ids))\n")
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r})\n" + probe],
                            cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["built-in", "http.toml", "11"]
