"""One TLS connection, decrypted with the secrets a key log holds for it; the plaintext goes to an HTTP decoder.

A :class:`TlsConnection` is a ``StreamHandler``: it cuts each direction into
records, reads the cleartext handshake (the randoms, the suite, the version,
ALPN), and once the key log has the connection's secrets it opens the
encrypted records and gives the application data to a fresh
:class:`~eyes_devine.core.http.connection.HttpConnection`.  Its exchanges are
flagged ``tls``.  ALPN picks the decoder: ``h2`` starts HTTP/2 at once (a
server may speak first), anything else starts HTTP/1.x (which still
recognises an HTTP/2 preface).

Live, the client writes its secrets as it makes them, so they may reach the
log a little after the records reach the capture: encrypted records wait,
in order and bounded (:data:`MAX_WAITING` bytes, :data:`KEY_WAIT_SECONDS`),
and the log is asked again with each record and when the connection closes.

TLS 1.3 changes keys during the connection: handshake keys, then
application keys, then a new key after each KeyUpdate.  Each record is opened
with the current key or a later one; AEAD authentication tells which, so
nothing is guessed.  Without the handshake secrets the encrypted handshake is
skipped (ALPN is then taken from the client's offer when it offered only
``h2``).  A record that fails authentication after the application keys
worked, a gap, or bytes that are not TLS records end that direction, as a gap
ends a cleartext one.  Not decrypted, and still counted in ``tls_streams``
with their SNI: connections whose secrets never reach the log, suites other
than the AEAD ones (:mod:`.cipher`), and TLS 1.2 renegotiation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from eyes_devine.core.tls.cipher import (
    TLS12_SUITES,
    TLS13_SUITES,
    RecordKeys,
    Suite,
    next_traffic_secret,
    tls12_keys,
    tls13_keys,
)
from eyes_devine.core.tls.handshake import (
    CLIENT_HELLO,
    ENCRYPTED_EXTENSIONS,
    HELLO_RETRY_RANDOM,
    KEY_UPDATE,
    SERVER_HELLO,
    HandshakeReader,
    ServerHello,
    client_hello,
    encrypted_extensions_alpn,
    server_hello,
)
from eyes_devine.core.tls.keylog import TlsKeys
from eyes_devine.records import EngineCounters, Exchange

if TYPE_CHECKING:
    from eyes_devine.core.http.connection import HttpConnection

_CHANGE_CIPHER_SPEC, _ALERT, _HANDSHAKE, _APPLICATION_DATA, _HEARTBEAT = 20, 21, 22, 23, 24
_HEADER = 5
_MAX_BODY = (1 << 14) + 2048
"""Longest record body TLS allows (TLS 1.2's ciphertext bound, the larger)."""
MAX_WAITING = 1 << 20
"""Bytes of encrypted records held while the key log lacks the connection's secrets; past it, not decrypted."""
KEY_WAIT_SECONDS = 10.0
"""Capture seconds after the ServerHello that records wait for the secrets; later, the client is taken not to log
them (so a connection without logged secrets neither holds memory nor asks the log for long)."""


class _Side:
    """One direction: its unread bytes, its handshake, its keys (current first), and whether it can go on."""

    __slots__ = ("buffer", "handshake", "keys", "current", "encrypted", "opened", "lost")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.handshake = HandshakeReader()
        self.keys: list[RecordKeys] = []
        self.current = 0
        self.encrypted = False
        """ChangeCipherSpec was sent: every later record is encrypted (TLS 1.2; harmless in 1.3)."""
        self.opened = False
        """A record opened with the last (application) keys: from now on a record that fails is an error."""
        self.lost = False


class TlsConnection:
    """A TLS connection's two directions, decrypted into an HTTP decoder (a ``StreamHandler``)."""

    def __init__(self, keys: TlsKeys, counters: EngineCounters,
                 decoder: Callable[[Callable[[Exchange], None]], HttpConnection],
                 emit: Callable[[Exchange], None]) -> None:
        self._keys = keys
        self._counters = counters
        self._decoder = decoder
        self._emit = emit
        self._client, self._server = _Side(), _Side()
        self._client_random: bytes | None = None
        self._offered: tuple[bytes, ...] = ()
        self._hello: ServerHello | None = None
        self._hello_ts = 0.0
        """Capture time of the ServerHello: the secrets are waited for :data:`KEY_WAIT_SECONDS` from it."""
        self._suite: Suite | None = None
        self._alpn: bytes | None = None
        self._ready = False
        self._given_up = False
        self._waiting: list[tuple[bool, bytes, bytes, float]] = []
        """Encrypted records (from_client, header, body, ts) in the order they came, until the keys come."""
        self._waiting_bytes = 0
        self._inner: HttpConnection | None = None

    # -- StreamHandler ----------------------------------------------------------------------

    def data(self, from_client: bool, payload: bytes, ts: float) -> None:
        side = self._client if from_client else self._server
        if side.lost or self._given_up:
            return
        buffer = side.buffer
        buffer += payload
        while len(buffer) >= _HEADER:
            kind, size = buffer[0], int.from_bytes(buffer[3:5], "big")
            if not _CHANGE_CIPHER_SPEC <= kind <= _HEARTBEAT or buffer[1] != 3 or size > _MAX_BODY:
                self._lose(side, from_client, 0, ts)  # not a record: the framing is gone
                return
            if len(buffer) < _HEADER + size:
                return
            header, body = bytes(buffer[:_HEADER]), bytes(buffer[_HEADER:_HEADER + size])
            del buffer[:_HEADER + size]
            self._record(side, from_client, header, body, ts)
            if side.lost or self._given_up:
                return

    def gap(self, from_client: bool, missing: int, ts: float) -> None:
        side = self._client if from_client else self._server
        if not side.lost:
            self._lose(side, from_client, missing, ts)

    def overlap(self, from_client: bool, ts: float) -> None:
        if self._inner is not None:
            self._inner.overlap(from_client, ts)

    def closed(self, ts: float) -> None:
        if not self._ready and not self._given_up:
            self._unlock()  # the last chance for secrets written late
        self._waiting.clear()
        if self._inner is not None:
            self._inner.closed(ts)

    # -- records ----------------------------------------------------------------------------

    def _record(self, side: _Side, from_client: bool, header: bytes, body: bytes, ts: float) -> None:
        kind = header[0]
        if kind == _CHANGE_CIPHER_SPEC:
            # TLS 1.2: what follows is encrypted.  TLS 1.3 sends one only for middleboxes (RFC 8446 D.4), after
            # a HelloRetryRequest too, and the real ServerHello then still comes in clear.
            hello = self._hello
            side.encrypted = hello is not None and not hello.tls13
        elif kind == _APPLICATION_DATA or side.encrypted:
            if self._ready:
                self._open(side, from_client, header, body, ts)
            elif ts - self._hello_ts > KEY_WAIT_SECONDS:
                self._give_up()  # the client does not write this connection's secrets to the log
            elif self._unlock():
                self._open(side, from_client, header, body, ts)
            elif not self._given_up:
                self._wait(from_client, header, body, ts)
        elif kind == _HANDSHAKE:
            for message_type, message in side.handshake.feed(body):
                self._cleartext_handshake(message_type, message, ts)

    def _cleartext_handshake(self, message_type: int, message: bytes, ts: float) -> None:
        if message_type == CLIENT_HELLO and self._client_random is None:
            hello = client_hello(message)
            if hello is not None:
                self._client_random, self._offered = hello
        elif message_type == SERVER_HELLO:
            hello = server_hello(message)
            if hello is None or hello.random == HELLO_RETRY_RANDOM:
                return
            self._hello, self._alpn = hello, hello.alpn
            self._hello_ts = ts
            self._suite = (TLS13_SUITES if hello.tls13 else TLS12_SUITES).get(hello.suite)
            if self._suite is None:
                self._give_up()

    def _wait(self, from_client: bool, header: bytes, body: bytes, ts: float) -> None:
        self._waiting_bytes += len(body)
        if self._waiting_bytes > MAX_WAITING:
            self._give_up()
        else:
            self._waiting.append((from_client, header, body, ts))

    def _give_up(self) -> None:
        """Not decrypted: left as a TLS stream (counted, with its SNI), every further byte ignored."""
        self._given_up = True
        self._waiting.clear()
        self._client.buffer.clear()
        self._server.buffer.clear()

    def _unlock(self) -> bool:
        """Install the record keys if the log now has the secrets, then open the records that waited."""
        hello, suite, client_random = self._hello, self._suite, self._client_random
        if hello is None or suite is None or client_random is None:
            return False
        secrets = self._keys.secrets(client_random)
        if secrets is None:
            return False
        if hello.tls13:
            client_secret = secrets.get("CLIENT_TRAFFIC_SECRET_0")
            server_secret = secrets.get("SERVER_TRAFFIC_SECRET_0")
            if client_secret is None or server_secret is None:
                return False
            self._client.keys = [tls13_keys(suite, secret) for secret in (
                secrets.get("CLIENT_HANDSHAKE_TRAFFIC_SECRET"), client_secret) if secret is not None]
            self._server.keys = [tls13_keys(suite, secret) for secret in (
                secrets.get("SERVER_HANDSHAKE_TRAFFIC_SECRET"), server_secret) if secret is not None]
        else:
            master = secrets.get("CLIENT_RANDOM")
            if master is None:
                return False
            client_keys, server_keys = tls12_keys(suite, master, client_random, hello.random)
            self._client.keys, self._server.keys = [client_keys], [server_keys]
        self._ready = True
        self._counters.tls_decrypted += 1
        waiting, self._waiting = self._waiting, []
        for from_client, header, body, ts in waiting:
            self._open(self._client if from_client else self._server, from_client, header, body, ts)
        if self._inner is not None and waiting:  # a direction that lost bytes while it waited ends after them
            for side, from_client in ((self._client, True), (self._server, False)):
                if side.lost:
                    self._inner.gap(from_client, 0, waiting[-1][3])
        return True

    def _open(self, side: _Side, from_client: bool, header: bytes, body: bytes, ts: float) -> None:
        keys = side.keys
        plaintext = None
        for index in range(side.current, len(keys)):
            plaintext = keys[index].open(header, body)
            if plaintext is not None:
                side.current = index
                break
        if plaintext is None:
            if side.opened:  # the application keys worked before: this record is not the endpoint's
                self._lose(side, from_client, len(body), ts)
            return  # else a handshake record whose secret was not logged, or early data: skipped
        last = side.current == len(keys) - 1
        if keys[side.current].secret:  # TLS 1.3: the real type is the last byte that is not padding
            end = len(plaintext.rstrip(b"\x00"))
            if not end:
                return
            kind, content = plaintext[end - 1], plaintext[:end - 1]
        else:
            kind, content = header[0], plaintext
        if kind == _APPLICATION_DATA:
            side.opened = side.opened or last
            if content:
                self._plaintext(from_client, content, ts)
        elif kind == _HANDSHAKE:
            for message_type, message in side.handshake.feed(content):
                if message_type == ENCRYPTED_EXTENSIONS:
                    self._alpn = encrypted_extensions_alpn(message) or self._alpn
                elif message_type == KEY_UPDATE and last and self._suite is not None:
                    secret = next_traffic_secret(self._suite, keys[side.current].secret)
                    keys[side.current] = tls13_keys(self._suite, secret)

    def _plaintext(self, from_client: bool, content: bytes, ts: float) -> None:
        inner = self._inner
        if inner is None:
            inner = self._inner = self._decoder(self._tls_emit)
            alpn = self._alpn if self._alpn is not None else (self._offered[0] if len(self._offered) == 1 else None)
            if alpn == b"h2":
                inner.to_http2(b"", ts)
        inner.data(from_client, content, ts)

    def _tls_emit(self, exchange: Exchange) -> None:
        self._emit(exchange._replace(flags=(*exchange.flags, "tls")))

    def _lose(self, side: _Side, from_client: bool, missing: int, ts: float) -> None:
        side.lost = True
        side.buffer.clear()
        if self._inner is not None:
            self._inner.gap(from_client, missing, ts)
