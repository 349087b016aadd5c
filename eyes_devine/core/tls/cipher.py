"""Record keys from logged secrets, and the records opened with them.

TLS 1.3 (RFC 8446 7.1-7.3): each traffic secret gives a key and an IV through
HKDF-Expand-Label; the nonce is the IV XOR the record's sequence number, and
the additional data is the record's header.  A KeyUpdate makes the next
secret with the label "traffic upd".

TLS 1.2 (RFC 5246 6.3, RFC 5288, RFC 7905): the master secret gives the key
block through the PRF; AES-GCM records carry an 8-byte explicit nonce after a
4-byte implicit salt, ChaCha20-Poly1305 records XOR the sequence number into a
12-byte IV, and the additional data is the sequence number and the
plaintext's type, version and length.

Only AEAD suites exist here: the ones TLS 1.3 has, and TLS 1.2's ECDHE and DHE
suites with AES-GCM or ChaCha20-Poly1305.  Anything else is not decrypted.
A record that does not authenticate is never guessed at: ``open`` returns None.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

_GCM, _CHACHA = "AES-GCM", "ChaCha20-Poly1305"
_TAG = 16


@dataclass(frozen=True, slots=True)
class Suite:
    """What a cipher suite means to the record layer."""

    name: str
    aead: str
    key_length: int
    hash_name: str
    """The suite's hash: the PRF's (TLS 1.2) or HKDF's (TLS 1.3)."""

    def hash(self) -> hashes.HashAlgorithm:
        return hashes.SHA384() if self.hash_name == "sha384" else hashes.SHA256()


TLS13_SUITES = {
    0x1301: Suite("TLS_AES_128_GCM_SHA256", _GCM, 16, "sha256"),
    0x1302: Suite("TLS_AES_256_GCM_SHA384", _GCM, 32, "sha384"),
    0x1303: Suite("TLS_CHACHA20_POLY1305_SHA256", _CHACHA, 32, "sha256"),
}
TLS12_SUITES = {
    0xC02B: Suite("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", _GCM, 16, "sha256"),
    0xC02C: Suite("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", _GCM, 32, "sha384"),
    0xC02F: Suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", _GCM, 16, "sha256"),
    0xC030: Suite("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", _GCM, 32, "sha384"),
    0xCCA8: Suite("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", _CHACHA, 32, "sha256"),
    0xCCA9: Suite("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", _CHACHA, 32, "sha256"),
    0x009E: Suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", _GCM, 16, "sha256"),
    0x009F: Suite("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", _GCM, 32, "sha384"),
    0xCCAA: Suite("TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", _CHACHA, 32, "sha256"),
}


class RecordKeys:
    """One direction's key under one secret, and the sequence number of the next record it opens."""

    __slots__ = ("_aead", "_iv", "_tls13", "_explicit_nonce", "seq", "suite", "secret")

    def __init__(self, suite: Suite, key: bytes, iv: bytes, tls13: bool, secret: bytes = b"") -> None:
        self._aead = AESGCM(key) if suite.aead == _GCM else ChaCha20Poly1305(key)
        self._iv = iv
        self._tls13 = tls13
        self._explicit_nonce = not tls13 and suite.aead == _GCM
        self.seq = 0
        self.suite = suite
        self.secret = secret
        """The TLS 1.3 traffic secret these keys came from (a KeyUpdate derives the next from it)."""

    def open(self, header: bytes, body: bytes) -> bytes | None:
        """The plaintext of the record with this 5-byte header and body, else None (and the sequence stands)."""
        seq = self.seq.to_bytes(8, "big")
        if self._tls13:
            nonce, ciphertext, aad = _xor(self._iv, seq), body, header
        elif self._explicit_nonce:
            if len(body) < 8 + _TAG:
                return None
            nonce, ciphertext = self._iv + body[:8], body[8:]
            aad = seq + header[:3] + (len(ciphertext) - _TAG).to_bytes(2, "big")
        else:
            if len(body) < _TAG:
                return None
            nonce, ciphertext = _xor(self._iv, seq), body
            aad = seq + header[:3] + (len(body) - _TAG).to_bytes(2, "big")
        try:
            plaintext = self._aead.decrypt(nonce, ciphertext, aad)
        except (InvalidTag, ValueError):
            return None
        self.seq += 1
        return plaintext


def _xor(iv: bytes, seq: bytes) -> bytes:
    padded = bytes(len(iv) - len(seq)) + seq
    return bytes(a ^ b for a, b in zip(iv, padded, strict=True))


def hkdf_expand_label(suite: Suite, secret: bytes, label: bytes, length: int, context: bytes = b"") -> bytes:
    """RFC 8446 7.1: HKDF-Expand with the label "tls13 " + ``label``."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(suite.hash(), length, info).derive(secret)


def tls13_keys(suite: Suite, secret: bytes) -> RecordKeys:
    """The record keys of one TLS 1.3 traffic secret."""
    return RecordKeys(suite, hkdf_expand_label(suite, secret, b"key", suite.key_length),
                      hkdf_expand_label(suite, secret, b"iv", 12), tls13=True, secret=secret)


def next_traffic_secret(suite: Suite, secret: bytes) -> bytes:
    """RFC 8446 7.2: the secret after a KeyUpdate."""
    return hkdf_expand_label(suite, secret, b"traffic upd", suite.hash().digest_size)


def prf(suite: Suite, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """TLS 1.2's PRF (RFC 5246 5): P_hash with the suite's hash over ``label`` + ``seed``."""
    seed = label + seed
    out, block = b"", seed
    while len(out) < length:
        block = _hmac(suite, secret, block)
        out += _hmac(suite, secret, block + seed)
    return out[:length]


def _hmac(suite: Suite, key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, suite.hash())
    mac.update(data)
    return mac.finalize()


def tls12_keys(suite: Suite, master: bytes, client_random: bytes, server_random: bytes
               ) -> tuple[RecordKeys, RecordKeys]:
    """The client's and the server's record keys from a TLS 1.2 master secret (AEAD suites: no MAC keys)."""
    iv_length = 4 if suite.aead == _GCM else 12
    size = suite.key_length
    block = prf(suite, master, b"key expansion", server_random + client_random, 2 * (size + iv_length))
    client_key, server_key = block[:size], block[size:2 * size]
    client_iv, server_iv = block[2 * size:2 * size + iv_length], block[2 * size + iv_length:]
    return (RecordKeys(suite, client_key, client_iv, tls13=False),
            RecordKeys(suite, server_key, server_iv, tls13=False))
