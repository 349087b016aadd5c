"""tcpdump writing a pcap of an interface while a test makes traffic."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path


class Recorder:
    def __init__(self, interface: str, path: Path, bpf: str = "tcp", tcpdump: str = "tcpdump") -> None:
        # -B: with --immediate-mode the default 2 MB ring dropped a few packets of a burst now and then (seen with
        # nghttp's multiplexed streams); a capture that drops would fail the test for the recorder's sake.
        self.argv = [tcpdump, "-i", interface, "-s", "0", "-B", "32768", "--immediate-mode", "-U", "-w", str(path), bpf]
        self.path = path
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Recorder:
        self.process = subprocess.Popen(self.argv, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        assert self.process.stderr is not None
        while time.monotonic() < deadline:  # tcpdump says "listening on" once its socket is open
            line = self.process.stderr.readline()
            if "listening on" in line or not line:
                break
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.process is not None
        time.sleep(0.3)  # let the last packets reach the socket
        self.process.send_signal(signal.SIGINT)
        _, self.stderr = self.process.communicate(timeout=10)
