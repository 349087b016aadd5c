"""AbuseIPDB against a local server in its documented shape: verdicts arrive later, capture never waits.

The stage is fed exchanges while the API is slow, down or rate limited, and
timed: feeding must not be delayed by any of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from email.message import Message

import pytest

from eyes_devine.adapters.abuseipdb import RATE_LIMIT_PAUSE, AbuseIPDB, _rate_limit_pause
from eyes_devine.adapters.blocklist import Blocklist, parse
from eyes_devine.enrich.intel import Intel
from eyes_devine.records import Exchange
from tests.support.fake_abuseipdb import KEY, FakeAbuseIPDB

HOSTILE = "81.2.69.160"


@pytest.fixture
def fake() -> Iterator[FakeAbuseIPDB]:
    server = FakeAbuseIPDB(scores={HOSTILE: 90, "81.2.69.161": 49, "2a02:c7f::10": 75})
    yield server
    server.close()


@pytest.fixture
def client(fake: FakeAbuseIPDB) -> Iterator[Callable[..., AbuseIPDB]]:
    made: list[AbuseIPDB] = []

    def make(log: Callable[[str], None] = print, **options) -> AbuseIPDB:
        made.append(AbuseIPDB(KEY, fake.url, log, **options))
        return made[-1]

    yield make
    for each in made:
        each.close()


def exchange(client_ip: str) -> Exchange:
    return Exchange(1.0, "eth0", client_ip, 40000, "172.17.0.2", 80, "GET", "/", None, "1.1", 200, "OK", 1.0, 1.0, 0, 0,
                    None, None)


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def feed(intel: Intel, count: int, client_ip: str = HOSTILE) -> tuple[float, list[Exchange]]:
    """Annotate ``count`` exchanges; the seconds it took and what came out."""
    batch = [exchange(client_ip) for _ in range(count)]
    started = time.perf_counter()
    annotated = [intel(item) for item in batch]
    return time.perf_counter() - started, annotated


def test_the_first_exchange_has_no_verdict_and_later_ones_do(fake, client):
    abuse = client()
    intel = Intel(None, [], abuse)
    assert intel(exchange(HOSTILE)).peer.reputation is None  # asked in the background, not waited for
    wait_for(lambda: fake.seen)
    wait_for(lambda: abuse.score(HOSTILE) is not None)
    assert intel(exchange(HOSTILE)).peer.reputation == "abuseipdb:90"
    (request,) = fake.seen
    assert (request.address, request.max_age) == (HOSTILE, "90")
    assert request.headers["Key"] == KEY and request.headers["Accept"] == "application/json"


def test_scores_under_50_and_private_peers_give_no_verdict(fake, client):
    abuse = client()
    intel = Intel(None, [], abuse)
    for address in ("81.2.69.161", "2a02:c7f::10", "172.17.0.9", "10.0.0.1"):
        intel(exchange(address))
    wait_for(lambda: abuse.score("81.2.69.161") is not None and abuse.score("2a02:c7f::10") is not None)
    assert intel(exchange("81.2.69.161")).peer.reputation is None
    assert intel(exchange("2a02:c7f::10")).peer.reputation == "abuseipdb:75"
    assert sorted(seen.address for seen in fake.seen) == ["2a02:c7f::10", "81.2.69.161"]  # private: never asked


def test_a_blocklist_verdict_comes_first_and_saves_the_request(fake, client):
    intel = Intel(None, [Blocklist("drop", parse([HOSTILE], "drop"))], client())
    assert intel(exchange(HOSTILE)).peer.reputation == "blocklist:drop"
    time.sleep(0.2)
    assert fake.seen == []


def test_a_slow_api_does_not_delay_exchanges(fake, client):
    fake.delay = 5.0
    intel = Intel(None, [], client(timeout=10.0))
    elapsed, annotated = feed(intel, 1000)
    print(f"1000 exchanges annotated in {elapsed * 1000:.1f} ms while the API takes 5 s to answer")
    assert elapsed < 1.0 and {item.peer.reputation for item in annotated} == {None}
    wait_for(lambda: fake.seen)
    assert len(fake.seen) == 1  # one request per address, however many exchanges
    asked = fake.seen[0].at
    wait_for(lambda: intel(exchange(HOSTILE)).peer.reputation == "abuseipdb:90", timeout=15)
    print(f"verdict available {time.monotonic() - asked:.1f} s after the request")


def test_an_outage_is_logged_once_and_does_not_delay_exchanges(fake, client):
    fake.delay = 30.0  # hangs past the client's timeout
    lines: list[str] = []
    intel = Intel(None, [], client(log=lines.append, timeout=0.3))
    started = time.perf_counter()
    for index in range(200):  # many different peers while the API hangs, then times out
        intel(exchange(f"81.2.{index}.1"))
        if index == 100:
            time.sleep(0.5)  # long enough for the first request to time out
    elapsed = time.perf_counter() - started - 0.5
    print(f"200 exchanges from new peers annotated in {elapsed * 1000:.1f} ms during an outage; log: {lines}")
    assert elapsed < 1.0
    assert len(lines) == 1 and "AbuseIPDB unavailable" in lines[0] and "TimeoutError" in lines[0]
    assert len(fake.seen) == 1  # backing off: no second request within the first 5 s


def test_a_rate_limit_stops_requests_until_the_reset(fake, client):
    fake.rate_limited, fake.retry_after = 1, "2"
    lines: list[str] = []
    abuse = client(log=lines.append)
    intel = Intel(None, [], abuse)
    intel(exchange(HOSTILE))
    wait_for(lambda: lines)
    assert "rate limit" in lines[0] and "2 s" in lines[0]
    elapsed, _ = feed(intel, 1000, "81.2.69.161")  # more peers while limited: queued, not asked
    for index in range(50):
        intel(exchange(f"89.160.20.{index}"))
    time.sleep(1.0)
    assert len(fake.seen) == 1 and elapsed < 1.0
    wait_for(lambda: intel(exchange(HOSTILE)).peer.reputation == "abuseipdb:90", timeout=10)
    first, retry = fake.seen[0], fake.seen[1]
    assert retry.address == HOSTILE and retry.at - first.at >= 1.9
    print(f"rate limited: next request {retry.at - first.at:.2f} s later (Retry-After: 2)")
    wait_for(lambda: len(fake.seen) == 53)  # then the 51 queued peers, once each


def test_rate_limit_pause_comes_from_retry_after_or_the_reset_time():
    def headers(**values: str) -> Message:
        message = Message()
        for name, value in values.items():
            message[name.replace("_", "-")] = value
        return message

    assert _rate_limit_pause(headers(Retry_After="29")) == 29
    in_a_minute = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 55 <= _rate_limit_pause(headers(Retry_After=in_a_minute)) <= 61
    assert 115 <= _rate_limit_pause(headers(X_RateLimit_Reset=str(int(time.time()) + 120))) <= 121
    assert _rate_limit_pause(headers(X_RateLimit_Reset=str(int(time.time()) - 5))) == 1
    assert _rate_limit_pause(headers()) == RATE_LIMIT_PAUSE


def test_a_refused_key_is_logged_once(fake):
    lines: list[str] = []
    abuse = AbuseIPDB("wrong-key", fake.url, lines.append)
    try:
        abuse.score(HOSTILE)
        wait_for(lambda: lines)
        abuse.score("81.2.69.161")
        time.sleep(0.3)
        assert len(lines) == 1 and "HTTP 401" in lines[0] and "ABUSEIPDB_API_KEY" in lines[0]
        assert abuse.score(HOSTILE) is None
    finally:
        abuse.close()


def test_answers_are_cached_until_they_expire(fake, client):
    now = [0.0]
    abuse = client(ttl=100.0, clock=lambda: now[0])
    abuse.score(HOSTILE)
    wait_for(lambda: abuse.score(HOSTILE) == 90)
    for _ in range(100):
        abuse.score(HOSTILE)
    assert len(fake.seen) == 1
    fake.scores[HOSTILE] = 10
    now[0] = 101.0
    assert abuse.score(HOSTILE) == 90  # the stale score while it is refreshed
    wait_for(lambda: abuse.score(HOSTILE) == 10)
    assert len(fake.seen) == 2


def test_the_cache_and_queue_are_bounded(fake, client):
    fake.delay = 0.5
    abuse = client(cache_size=3, queue_size=2)
    for index in range(10):
        abuse.score(f"81.2.69.{index}")
    assert abuse.dropped >= 7  # one in flight, two queued, the rest not asked
    fake.delay = 0.0
    for index in range(10, 16):
        abuse.score(f"81.2.69.{index}")
        wait_for(lambda index=index: abuse.score(f"81.2.69.{index}") is not None)
    assert [abuse.score(f"81.2.69.{index}") is not None for index in range(15, 9, -1)] == [True] * 3 + [False] * 3
