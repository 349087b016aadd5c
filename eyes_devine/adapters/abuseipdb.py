"""AbuseIPDB's v2 check endpoint, asked from a thread of its own so capture never waits for it.

The annotating stage calls :meth:`AbuseIPDB.score`, which only reads a cache
and, for an address it has not seen, puts it on a bounded queue: the first
exchange from a new peer carries no AbuseIPDB verdict, later ones do.  The
worker thread asks the API one address at a time and handles its failures
without help from anyone:

- a timeout, refused connection, 5xx or unreadable answer: back off (5 s,
  doubling to 10 min) and log one line when trouble starts and one when it ends;
- 401/403 (bad key): the same, with the key named in the line;
- 429 (rate limit): no request at all until ``Retry-After`` (seconds or an
  HTTP date) or ``X-RateLimit-Reset`` (epoch seconds) says the limit resets.

Answers are cached for hours (scores move slowly and the free plan allows
1,000 checks a day); the cache and the queue are bounded.
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from email.message import Message
from email.utils import parsedate_to_datetime

from eyes_devine import __version__

SUSPECT_SCORE = 50
"""The abuseConfidenceScore from which a peer is reported (AbuseIPDB's own examples use 50 as "likely abusive")."""
MAX_AGE_DAYS = 90
CACHE_TTL = 6 * 3600.0
CACHE_SIZE = 10_000
QUEUE_SIZE = 512
TIMEOUT = 3.0
BACKOFF_FIRST = 5.0
BACKOFF_MAX = 600.0
RATE_LIMIT_PAUSE = 900.0
"""How long to stay quiet after a 429 that says nothing about when the limit resets."""


class AbuseIPDB:
    """Confidence scores for public addresses, learned in the background; ``score`` never blocks."""

    def __init__(self, key: str, url: str, log: Callable[[str], None], *, timeout: float = TIMEOUT,
                 ttl: float = CACHE_TTL, cache_size: int = CACHE_SIZE, queue_size: int = QUEUE_SIZE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._key = key
        self._url = url
        self._log = log
        self._timeout = timeout
        self._ttl = ttl
        self._cache_size = cache_size
        self._clock = clock
        self._cache: dict[str, tuple[float, int]] = {}
        """address -> (expiry on ``clock``, score); insertion order is age, the oldest goes first when full."""
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue(queue_size)
        self._stopping = threading.Event()
        self._backoff = 0.0
        self._trouble: str | None = None
        self.dropped = 0
        """Addresses not checked because the queue was full (the API is slower than new peers arrive)."""
        self._thread = threading.Thread(target=self._run, name="eyes-devine-abuseipdb", daemon=True)
        self._thread.start()

    def score(self, address: str) -> int | None:
        """The cached score (a stale one while it is refreshed), or None until the worker has asked."""
        now = self._clock()
        with self._lock:
            entry = self._cache.get(address)
            if (entry is None or entry[0] <= now) and address not in self._pending:
                try:
                    self._queue.put_nowait(address)
                    self._pending.add(address)
                except queue.Full:
                    self.dropped += 1
        return entry[1] if entry is not None else None

    def verdict(self, address: str) -> str | None:
        """``abuseipdb:<score>`` when the cached score reaches :data:`SUSPECT_SCORE`."""
        score = self.score(address)
        return f"abuseipdb:{score}" if score is not None and score >= SUSPECT_SCORE else None

    def close(self) -> None:
        """Stop the worker; a request in flight is abandoned (the thread is a daemon)."""
        self._stopping.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass  # the worker sees the event after its current address
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while True:
            address = self._queue.get()
            if address is None or self._stopping.is_set():
                return
            while True:
                pause, retry = self._ask(address)
                if pause > 0 and self._stopping.wait(pause):
                    return
                if not retry:
                    break
            with self._lock:
                self._pending.discard(address)

    def _ask(self, address: str) -> tuple[float, bool]:
        """One request: how long to pause before the next one, and whether to ask for this address again."""
        query = urllib.parse.urlencode({"ipAddress": address, "maxAgeInDays": MAX_AGE_DAYS})
        request = urllib.request.Request(f"{self._url}?{query}", headers={
            "Key": self._key, "Accept": "application/json", "User-Agent": f"eyes-devine/{__version__}"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                score = int(json.loads(response.read())["data"]["abuseConfidenceScore"])
        except urllib.error.HTTPError as error:
            if error.code == 429:
                pause = _rate_limit_pause(error.headers)
                self._log(f"AbuseIPDB rate limit reached; no checks for {pause:.0f} s "
                          f"(until {time.strftime('%H:%M:%S', time.localtime(time.time() + pause))})")
                return pause, True
            if error.code in (401, 403):
                return self._failed(f"HTTP {error.code}: the key in ABUSEIPDB_API_KEY was refused"), False
            if 400 <= error.code < 500:  # this address was refused (422: not checkable); do not ask again soon
                self._remember(address, 0)
                return 0.0, False
            return self._failed(f"HTTP {error.code}"), False
        except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError) as error:
            # URLError and timeouts are OSErrors; the rest: a cut-off or malformed answer
            reason = getattr(error, "reason", None) or error
            return self._failed(f"{type(error).__name__}: {reason}"), False
        self._remember(address, score)
        if self._trouble is not None:
            self._log("AbuseIPDB answers again; reputation checks resumed")
            self._trouble, self._backoff = None, 0.0
        return 0.0, False

    def _failed(self, reason: str) -> float:
        """Back off, doubling; log only when trouble starts, not once per request."""
        if self._trouble is None:
            self._log(f"AbuseIPDB unavailable ({reason}); reputation checks pause and retry with backoff, "
                      "capture is not affected")
        self._trouble = reason
        self._backoff = min(BACKOFF_MAX, self._backoff * 2 if self._backoff else BACKOFF_FIRST)
        return self._backoff

    def _remember(self, address: str, score: int) -> None:
        with self._lock:
            self._cache.pop(address, None)
            self._cache[address] = (self._clock() + self._ttl, score)
            while len(self._cache) > self._cache_size:
                del self._cache[next(iter(self._cache))]


def _rate_limit_pause(headers: Message) -> float:
    """Seconds until the limit resets, from ``Retry-After`` or ``X-RateLimit-Reset``, at least one."""
    retry_after = (headers.get("Retry-After") or "").strip()
    reset = (headers.get("X-RateLimit-Reset") or "").strip()
    if retry_after.isdigit():
        return max(1.0, float(retry_after))
    if retry_after:
        try:
            return max(1.0, parsedate_to_datetime(retry_after).timestamp() - time.time())
        except (TypeError, ValueError):
            pass
    if reset.isdigit():
        return max(1.0, int(reset) - time.time())
    return RATE_LIMIT_PAUSE
