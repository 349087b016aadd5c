"""One HttpConnection driven by hand, and the HTTP/1.x messages the core tests send through it."""

from __future__ import annotations

from eyes_devine.core.http.connection import DEFAULT_LIMITS, HttpConnection
from eyes_devine.core.http.framing import HttpLimits
from eyes_devine.core.tcp import Endpoints
from eyes_devine.records import EngineCounters, Exchange

ENDPOINTS = Endpoints("br-1", "172.18.0.2", 40000, "172.18.0.3", 8080)


class Conn:
    """Drives one HttpConnection; every call is one step later in time unless ``ts`` is given."""

    def __init__(self, counters: EngineCounters | None = None, limits: HttpLimits = DEFAULT_LIMITS) -> None:
        self.exchanges: list[Exchange] = []
        self.counters = counters or EngineCounters()
        self.handler = HttpConnection(ENDPOINTS, self.exchanges.append, self.counters, limits)
        self.now = 100.0

    def _tick(self, ts: float | None) -> float:
        self.now = self.now + 1.0 if ts is None else ts
        return self.now

    def client(self, data: bytes, ts: float | None = None) -> Conn:
        self.handler.data(True, data, self._tick(ts))
        return self

    def server(self, data: bytes, ts: float | None = None) -> Conn:
        self.handler.data(False, data, self._tick(ts))
        return self

    def client_gap(self, missing: int, ts: float | None = None) -> Conn:
        self.handler.gap(True, missing, self._tick(ts))
        return self

    def server_gap(self, missing: int, ts: float | None = None) -> Conn:
        self.handler.gap(False, missing, self._tick(ts))
        return self

    def close(self) -> list[Exchange]:
        self.handler.closed(self._tick(None))
        assert self.counters.exchanges == len(self.exchanges)
        return self.exchanges


def get(path: str = "/", headers: bytes = b"Host: svc\r\n") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\n" + headers + b"\r\n"


def request(method: str, path: str = "/", body: bytes = b"", headers: bytes = b"") -> bytes:
    length = b"Content-Length: %d\r\n" % len(body) if body else b""
    return f"{method} {path} HTTP/1.1\r\nHost: svc\r\n".encode() + headers + length + b"\r\n" + body


def response(status: int = 200, body: bytes = b"hello", headers: bytes = b"", reason: bytes = b"OK") -> bytes:
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" % (status, reason, len(body))
        + headers
        + b"\r\n"
        + body
    )


def chunked(status: int, chunks: list[bytes], trailers: bytes = b"") -> bytes:
    body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n" + trailers + b"\r\n"
    return b"HTTP/1.1 %d OK\r\nTransfer-Encoding: chunked\r\n\r\n" % status + body


def summary(exchanges: list[Exchange]) -> list[tuple[str, str, int | None, tuple[str, ...]]]:
    return [(e.method, e.target, e.status, e.flags) for e in exchanges]
