"""A terminal a person would use: a tmux session of a given size, for driving `watch` and reading its screen."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.support.requirements import require_binary


class Terminal:
    """A tmux session of a given size running one command, then a shell line saying how it exited."""

    def __init__(self, tmux: str, command: list[str], env: dict[str, str], width: int, height: int) -> None:
        self.tmux = tmux
        self.socket = f"edt-{os.getpid()}-{time.monotonic_ns()}"
        exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        line = f"env -i {exports} {shlex.join(command)}; echo EXIT=$?; sleep 600"
        self._tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), line)

    def _tmux(self, *args: str) -> str:
        return subprocess.run([self.tmux, "-L", self.socket, *args], capture_output=True, text=True,
                              check=True, timeout=10).stdout

    def screen(self) -> list[str]:
        return self._tmux("capture-pane", "-p", "-t", "t").splitlines()

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "the screen") -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            lines = self.screen()
            if predicate(lines):
                return lines
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n" + "\n".join(lines)
            time.sleep(0.2)

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def flag(self, name: str) -> str:
        return self._tmux("display-message", "-p", "-t", "t", f"#{{{name}}}").strip()

    def close(self) -> None:
        subprocess.run([self.tmux, "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminal() -> Iterator:
    """Opens :class:`Terminal` sessions for a test, and closes them after it."""
    tmux = require_binary("tmux", "tmux")
    opened: list[Terminal] = []

    def open_terminal(command: list[str], env: dict[str, str], width: int = 120, height: int = 30) -> Terminal:
        term = Terminal(tmux, command, env, width, height)
        opened.append(term)
        return term

    yield open_terminal
    for term in opened:
        term.close()
