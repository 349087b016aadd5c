"""Pairing on its own, without a parser: requests and losses in, which request each response answers out."""

from __future__ import annotations

from eyes_devine.core.http.pairing import MAX_QUEUED, Pairing, Request
from eyes_devine.records import EngineCounters


def pairing() -> tuple[Pairing, list[Request]]:
    given_up: list[Request] = []
    return Pairing(EngineCounters(), given_up.append), given_up


def request(pairing: Pairing, ts: float, target: str) -> Request:
    req = Request(ts, None)
    req.target = target
    pairing.enqueue(req)
    return req


def test_responses_answer_requests_first_in_first_out():
    pairs, _ = pairing()
    a, b = request(pairs, 1.0, "/a"), request(pairs, 1.1, "/b")
    assert pairs.pair(1.2) is a and pairs.pair(1.3) is b
    assert pairs.pair(1.4) is None and pairs.unpaired_responses == 1


def test_a_response_to_a_request_lost_in_a_hole_is_dropped_not_paired_with_the_next():
    pairs, _ = pairing()
    pairs.requests_lost(120, sure=1.0)  # a hole that surely began a request
    b = request(pairs, 2.0, "/b")
    assert pairs.pair(1.5) is None, "the answer to the lost request"
    assert pairs.pair(2.5) is b


def test_after_response_bytes_are_lost_the_next_response_pairs_with_the_latest_request_sent_before_it():
    pairs, given_up = pairing()
    a, b, c = request(pairs, 1.0, "/a"), request(pairs, 2.0, "/b"), request(pairs, 3.0, "/c")
    pairs.responses_lost(5000, began=True)
    assert pairs.pair(2.5) is b
    assert given_up == [a] and set(a.flags) == {"gap", "no_response"}
    assert pairs.pair(3.5) is c


def test_a_full_queue_gives_up_its_oldest_request_and_drops_its_late_response():
    pairs, given_up = pairing()
    requests = [request(pairs, float(i), f"/{i}") for i in range(MAX_QUEUED + 1)]
    assert given_up == [requests[0]] and {"no_response", "overflow"} <= set(requests[0].flags)
    assert pairs.pair(MAX_QUEUED + 1.0) is None, "the response of the request given up"
    assert pairs.pair(MAX_QUEUED + 2.0) is requests[1]
