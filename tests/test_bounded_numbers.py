"""Numbers from flags and the environment are checked at once: one line, exit 2, never a traceback or a failure
on every batch later (issue 13: `--keep 99999999999999999999` used to fail each write with OverflowError)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]


def eyes(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*EYES_DEVINE, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock", **(env or {})})


@pytest.mark.parametrize("args", [
    ("run", "--ports", "²"),
    ("run", "--ports", "8\uff10"),  # a fullwidth digit: int() takes it, a port list must not
    ("read", "--ports", "80,²", "/dev/null"),
    ("run", "--keep", "99999999999999999999"),
    ("run", "--keep", "0"),
    ("watch", "--keep", "10000001"),
    ("run", "--batch-size", "0"),
    ("run", "--batch-size", "100001"),
    ("run", "--stats-interval", "nan"),
    ("run", "--stats-interval", "inf"),
    ("run", "--stats-interval", "-1"),
    ("run", "--stats-interval", "0"),
    ("run", "--max-header-bytes", "99999999999999999999"),
    ("requests", "-n", "99999999999999999999"),
    ("alerts", "-n", "0"),
    ("flows", "-n", "1000001"),
    ("run", "--retain", "30s"),
    ("run", "--retain", "nan"),
    ("watch", "--retain", "1e999d"),
    ("watch", "--attach", "--retain", "7d"),  # bounds what a run stores; attach stores nothing
])
def test_a_number_out_of_bounds_is_one_line_and_exit_2(args):
    result = eyes(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(("eyes-devine: ", "Error: ")), result.stderr


@pytest.mark.parametrize(("variable", "value"), [
    ("EYES_DEVINE_PORTS", "²"),
    ("EYES_DEVINE_KEEP", "99999999999999999999"),
    ("EYES_DEVINE_KEEP", "³"),
    ("EYES_DEVINE_BATCH_SIZE", "-5"),
    ("EYES_DEVINE_MAX_HEADER_BYTES", "1e6"),
])
def test_a_variable_out_of_bounds_is_one_line_naming_it_and_exit_2(variable, value):
    result = eyes("run", env={variable: value})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line
    assert variable in result.stderr and "Traceback" not in result.stderr
