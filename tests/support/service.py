"""`eyes-devine run` as the integration tests start it, and what they ask of its database."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]


class Service:
    """One `eyes-devine run` process; its log lines are collected as they arrive."""

    def __init__(self, db: Path, env: dict[str, str], *extra: str, read_stdout: bool = True) -> None:
        """``read_stdout=False`` leaves stdout a pipe that nobody reads, as a stuck consumer would."""
        self.db = db
        self.process = subprocess.Popen(
            [*EYES_DEVINE, "run", "--db", str(db), "--log-format", "json", "--stats-interval", "1", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        self.log: list[dict] = []
        self.stdout: list[str] = []
        self._readers = [
            threading.Thread(target=self._collect, args=(self.process.stderr, self.log, True), daemon=True),
        ]
        if read_stdout:
            self._readers.append(threading.Thread(target=self._collect, args=(self.process.stdout, self.stdout, False),
                                                  daemon=True))
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _collect(stream, into: list, as_json: bool) -> None:
        for line in stream:
            if as_json:
                try:
                    into.append(json.loads(line))
                except ValueError:  # not a log line: a click usage error, a traceback
                    into.append({"msg": line.rstrip(), "level": "raw"})
            else:
                into.append(line)

    def messages(self, text: str) -> list[dict]:
        return [line for line in self.log if line["msg"].startswith(text)]  # not "Docker: …; capturing …"

    def wait_for(self, text: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while not self.messages(text):
            if self.process.poll() is not None:
                for reader in self._readers:
                    reader.join(2)
                raise AssertionError(f"run exited {self.process.returncode} before {text!r}: "
                                     + "\n".join(line["msg"] for line in self.log))
            assert time.monotonic() < deadline, f"no {text!r} in the log: {self.log}"
            time.sleep(0.05)
        return self.messages(text)[0]

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code


def stored(db: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return connection.execute(sql, params).fetchall()


def requests_json(db: Path, *args: str) -> list[dict]:
    result = subprocess.run([*EYES_DEVINE, "requests", "--db", str(db), "--json", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def wait_until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def count_for(db: Path, container_id: str) -> int:
    return stored(db, "SELECT count(*) FROM exchanges WHERE container_id = ?", container_id[:12])[0][0]
