"""A local stand-in for AbuseIPDB's v2 check endpoint, answering in its documented shape.

GET /api/v2/check?ipAddress=...&maxAgeInDays=90 with headers ``Key`` and
``Accept: application/json`` → ``{"data": {"ipAddress": ..., "abuseConfidenceScore": N, ...}}``.
Behaviour is switched per test: answer, hang for a while, or refuse with 429
and rate-limit headers; every request is recorded with its time and headers.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "test-key-0123456789"


@dataclass
class Seen:
    at: float
    """time.monotonic() when the request arrived."""
    address: str
    max_age: str | None
    headers: dict[str, str]


@dataclass
class FakeAbuseIPDB:
    scores: dict[str, int] = field(default_factory=dict)
    """Score per address; others get 0."""
    delay: float = 0.0
    """Seconds each answer is held back (a slow or hanging API)."""
    rate_limited: int = 0
    """How many of the next requests get 429 instead of an answer."""
    retry_after: str | None = "2"
    reset_in: float | None = None
    """Seconds until X-RateLimit-Reset, sent with 429s."""
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                address = query.get("ipAddress", [""])[0]
                fake.seen.append(Seen(time.monotonic(), address, query.get("maxAgeInDays", [None])[0],
                                      dict(self.headers.items())))
                if url.path != "/api/v2/check":
                    return self._json(404, {"errors": [{"detail": "not found", "status": 404}]})
                if self.headers.get("Key") != KEY:
                    return self._json(401, {"errors": [{"detail": "Authentication failed.", "status": 401}]})
                if fake.rate_limited > 0:
                    fake.rate_limited -= 1
                    headers = {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "0"}
                    if fake.retry_after is not None:
                        headers["Retry-After"] = fake.retry_after
                    if fake.reset_in is not None:
                        headers["X-RateLimit-Reset"] = str(int(time.time() + fake.reset_in))
                    detail = "Daily rate limit of 1000 requests exceeded for this endpoint."
                    return self._json(429, {"errors": [{"detail": detail, "status": 429}]}, headers)
                if fake.delay:
                    time.sleep(fake.delay)
                score = fake.scores.get(address, 0)
                self._json(200, {"data": {
                    "ipAddress": address, "isPublic": True, "ipVersion": 6 if ":" in address else 4,
                    "isWhitelisted": False, "abuseConfidenceScore": score, "countryCode": "GB",
                    "usageType": "Data Center/Web Hosting/Transit", "isp": "Test ISP", "domain": "example.net",
                    "hostnames": [], "isTor": False, "totalReports": score // 10, "numDistinctUsers": score // 20,
                    "lastReportedAt": "2024-01-01T00:00:00+00:00",
                }}, {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "999"})

            def _json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the client gave up waiting (its timeout): that is what slow tests provoke

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/api/v2/check"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
