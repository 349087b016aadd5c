"""TLS on HTTP ports.

Without keys, a connection that starts with a ClientHello is named by its SNI
(:mod:`.hello`) and not parsed.  With a key log (the NSS format that curl,
browsers, Go, Node and Python write), its records are decrypted
(:mod:`.session`) and the plaintext goes through the same HTTP/1.x and HTTP/2
decoders as cleartext: :mod:`.keylog` reads the log's lines, :mod:`.cipher`
derives the record keys (TLS 1.3's HKDF schedule, TLS 1.2's PRF) and opens the
AEAD records with ``cryptography``, :mod:`.handshake` reads the few handshake
fields that matter (randoms, cipher suite, version, ALPN).
"""

from eyes_devine.core.tls.hello import (
    MAX_TLS_RECORD,
    HelloCollector,
    looks_like_tls,
    parse_client_hello_sni,
    record_length,
)

__all__ = ["MAX_TLS_RECORD", "HelloCollector", "looks_like_tls", "parse_client_hello_sni", "record_length"]
