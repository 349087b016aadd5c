"""The NSS key log format (``SSLKEYLOGFILE``): one secret per line, ``LABEL <client random> <secret>`` in hex.

curl, Firefox and Chrome, Go's ``tls.Config.KeyLogWriter``, Node's
``--tls-keylog`` and Python's ``ssl`` (``keylog_filename``) write it.  TLS 1.2
logs the master secret (``CLIENT_RANDOM``); TLS 1.3 logs each traffic secret
by name.  Lines are keyed by the ClientHello's random, which the capture sees
in clear.  Sans-I/O: the adapter that follows the file hands text to
:meth:`KeyLog.feed`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Protocol

LABELS = frozenset({
    "CLIENT_RANDOM",
    "CLIENT_EARLY_TRAFFIC_SECRET",
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "SERVER_TRAFFIC_SECRET_0",
    "EXPORTER_SECRET",
    "EARLY_EXPORTER_SECRET",
})
MAX_SESSIONS = 100_000
"""Client randoms whose secrets are kept; past it the oldest go (a long-running client logs every connection)."""
MAX_LINE = 1024


class TlsKeys(Protocol):
    """Where the TLS decoder asks for a connection's secrets (a :class:`KeyLog`, or the file that feeds one)."""

    def secrets(self, client_random: bytes) -> Mapping[str, bytes] | None:
        """The secrets logged for the connection whose ClientHello carried ``client_random``, by label."""
        ...


class KeyLog:
    """Secrets by client random, from key log text given in any pieces."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self._sessions: OrderedDict[bytes, dict[str, bytes]] = OrderedDict()
        self._max_sessions = max_sessions
        self._partial = ""
        """A last line without its newline yet: the writer may be in the middle of it."""
        self.rejected = 0
        """Lines that were neither a known secret, a comment nor blank."""

    def __len__(self) -> int:
        return len(self._sessions)

    def feed(self, text: str) -> None:
        """Take more of the log; a line is read once its newline has come."""
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE:
            self._partial = ""
            self.rejected += 1
        for line in lines:
            self._line(line.strip())

    def drop_partial(self) -> None:
        """The text given so far ended in a half line that will never be finished (the file was replaced)."""
        self._partial = ""

    def finish(self) -> None:
        """The whole log was given: a last line without a newline counts too."""
        partial, self._partial = self._partial, ""
        self._line(partial.strip())

    def secrets(self, client_random: bytes) -> Mapping[str, bytes] | None:
        return self._sessions.get(client_random)

    def _line(self, line: str) -> None:
        if not line or line.startswith("#"):
            return
        parts = line.split()
        if len(parts) != 3 or parts[0] not in LABELS:
            self.rejected += 1
            return
        label, random_hex, secret_hex = parts
        try:
            client_random, secret = bytes.fromhex(random_hex), bytes.fromhex(secret_hex)
        except ValueError:
            self.rejected += 1
            return
        if len(client_random) != 32 or not 32 <= len(secret) <= 64:
            self.rejected += 1
            return
        sessions = self._sessions
        session = sessions.get(client_random)
        if session is None:
            session = sessions[client_random] = {}
            if len(sessions) > self._max_sessions:
                sessions.popitem(last=False)
        session[label] = secret
