"""TLS on HTTP ports: a connection that starts with a ClientHello is named by its SNI (:mod:`.hello`)."""

from eyes_devine.core.tls.hello import (
    MAX_TLS_RECORD,
    HelloCollector,
    looks_like_tls,
    parse_client_hello_sni,
    record_length,
)

__all__ = ["MAX_TLS_RECORD", "HelloCollector", "looks_like_tls", "parse_client_hello_sni", "record_length"]
