"""TLS records built by hand for the tests."""

from __future__ import annotations


def _extension(kind: int, body: bytes) -> bytes:
    return kind.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def client_hello(sni: str | None = "api.example.com", padding: int = 0, sni_last: bool = False) -> bytes:
    """A syntactically valid TLS 1.3-style ClientHello record (``padding`` bytes of padding extension)."""
    others = _extension(0x000B, b"\x01\x00") + _extension(0x002B, b"\x02\x03\x04")
    if padding:
        others += _extension(0x0015, bytes(padding))
    server_name = b""
    if sni is not None:
        name = sni.encode()
        entry = b"\x00" + len(name).to_bytes(2, "big") + name
        server_name = _extension(0x0000, len(entry).to_bytes(2, "big") + entry)
    extensions = others + server_name if sni_last else server_name + others
    body = (
        b"\x03\x03"
        + bytes(range(32))
        + b"\x20"
        + bytes(32)
        + b"\x00\x04\x13\x01\x13\x02"
        + b"\x01\x00"
        + len(extensions).to_bytes(2, "big")
        + extensions
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake
