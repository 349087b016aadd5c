"""The key log the TLS decoder asks (``--tls-keylog``): a followed file feeding the core's parser.

A client writes a connection's secrets during its handshake, a moment before
or after the capture sees the records (TLS 1.3's client traffic secret comes
after the client's Finished is sent).  So each question first reads what the
file gained since (one ``stat`` when it gained nothing); the decoder asks only
while a connection waits for its secrets: with each record, and when it closes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from eyes_devine.adapters.keylog_file import FollowedFile
from eyes_devine.core.tls.keylog import KeyLog


class FollowedKeyLog:
    """Secrets by client random, read from a file that grows (a ``TlsKeys``)."""

    def __init__(self, path: Path) -> None:
        self.log = KeyLog()
        self._file = FollowedFile(path)
        self.refresh()

    def refresh(self) -> None:
        text = self._file.read_new()
        if self._file.restarted:
            self.log.drop_partial()  # a half line of the old file does not begin the new one's first
        if text:
            self.log.feed(text)

    def secrets(self, client_random: bytes) -> Mapping[str, bytes] | None:
        self.refresh()
        return self.log.secrets(client_random)
