"""The few handshake fields decryption needs: both randoms, the cipher suite, the version and ALPN.

Handshake messages may span records and records may hold several: a
:class:`HandshakeReader` per direction joins them.  Every length is checked
against the bytes present; a message that does not parse gives None, never an
exception.
"""

from __future__ import annotations

from dataclasses import dataclass

CLIENT_HELLO, SERVER_HELLO, ENCRYPTED_EXTENSIONS, KEY_UPDATE = 1, 2, 8, 24
_ALPN, _SUPPORTED_VERSIONS = 16, 43
TLS13 = 0x0304
HELLO_RETRY_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
"""The ServerHello random that marks a HelloRetryRequest (RFC 8446 4.1.3): the real ServerHello follows."""
MAX_MESSAGE = 1 << 18
"""Longest handshake message joined (certificate chains included); a longer one ends the reading."""


class HandshakeReader:
    """One direction's handshake bytes, cut into (type, body) messages."""

    __slots__ = ("_buffer", "broken")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.broken = False

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        if self.broken:
            return []
        buffer = self._buffer
        buffer += data
        messages = []
        while len(buffer) >= 4:
            size = int.from_bytes(buffer[1:4], "big")
            if size > MAX_MESSAGE:
                self.broken = True
                buffer.clear()
                break
            if len(buffer) < 4 + size:
                break
            messages.append((buffer[0], bytes(buffer[4:4 + size])))
            del buffer[:4 + size]
        return messages


@dataclass(frozen=True, slots=True)
class ServerHello:
    random: bytes
    suite: int
    tls13: bool
    alpn: bytes | None


def _extensions(body: bytes, pos: int) -> dict[int, bytes] | None:
    if pos == len(body):
        return {}
    if pos + 2 > len(body):
        return None
    end = pos + 2 + int.from_bytes(body[pos:pos + 2], "big")
    if end > len(body):
        return None
    pos += 2
    found: dict[int, bytes] = {}
    while pos + 4 <= end:
        kind, size = int.from_bytes(body[pos:pos + 2], "big"), int.from_bytes(body[pos + 2:pos + 4], "big")
        pos += 4
        if pos + size > end:
            return None
        found[kind] = body[pos:pos + size]
        pos += size
    return found


def _protocols(extension: bytes | None) -> tuple[bytes, ...]:
    """The names in an ALPN extension (RFC 7301 3.1)."""
    if not extension or len(extension) < 2:
        return ()
    end = min(len(extension), 2 + int.from_bytes(extension[:2], "big"))
    names, pos = [], 2
    while pos < end:
        size = extension[pos]
        names.append(extension[pos + 1:pos + 1 + size])
        pos += 1 + size
    return tuple(names)


def client_hello(body: bytes) -> tuple[bytes, tuple[bytes, ...]] | None:
    """The client random and the ALPN protocols offered."""
    if len(body) < 35:
        return None
    random = body[2:34]
    pos = 34 + 1 + body[34]  # legacy_session_id
    if pos + 2 > len(body):
        return None
    pos += 2 + int.from_bytes(body[pos:pos + 2], "big")  # cipher_suites
    if pos + 1 > len(body):
        return None
    pos += 1 + body[pos]  # legacy_compression_methods
    extensions = _extensions(body, pos)
    if extensions is None:
        return random, ()
    return random, _protocols(extensions.get(_ALPN))


def server_hello(body: bytes) -> ServerHello | None:
    """The server random, the suite chosen, whether it is TLS 1.3, and ALPN's choice (TLS 1.2 says it here)."""
    if len(body) < 35:
        return None
    random = body[2:34]
    pos = 34 + 1 + body[34]
    if pos + 3 > len(body):
        return None
    suite = int.from_bytes(body[pos:pos + 2], "big")
    extensions = _extensions(body, pos + 3) or {}
    version = extensions.get(_SUPPORTED_VERSIONS)
    alpn = _protocols(extensions.get(_ALPN))
    return ServerHello(random, suite, version is not None and int.from_bytes(version[:2], "big") == TLS13,
                       alpn[0] if alpn else None)


def encrypted_extensions_alpn(body: bytes) -> bytes | None:
    """ALPN's choice, which TLS 1.3 sends encrypted in EncryptedExtensions."""
    extensions = _extensions(body, 0) or {}
    alpn = _protocols(extensions.get(_ALPN))
    return alpn[0] if alpn else None
