"""Whether the server gave what was asked: for an attack, whether it may have worked."""

from __future__ import annotations

import sqlite3

import pytest

from eyes_devine.records import ANSWERED_SQL, OUTCOMES, outcome
from tests.support.records import make


@pytest.mark.parametrize(("status", "body", "expected"), [
    (200, 512, "answered"), (204, 0, "answered"), (101, 0, "answered"), (302, 120, "redirected"),
    (302, 4000, "answered"),
    (301, 0, "redirected"), (404, 0, "refused"), (403, 90, "refused"), (500, 0, "failed"), (503, 10, "failed"),
    (None, 0, "no_response"),
])
def test_the_outcome_follows_the_status_and_whether_a_body_came_back(status, body, expected):
    assert outcome(make(1, status=status, response_bytes=body)) == expected


def test_the_sql_condition_agrees_with_the_function_on_every_status():
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE exchanges (status INTEGER, response_bytes INTEGER)")
    cases = [(status, body) for status in (None, 100, 101, 200, 204, 299, 300, 302, 399, 400, 404, 499, 500, 599)
             for body in (0, 1, 513)]
    connection.executemany("INSERT INTO exchanges VALUES (?, ?)", cases)
    answered = set(connection.execute(f"SELECT status, response_bytes FROM exchanges WHERE {ANSWERED_SQL}"))
    assert answered == {case for case in cases
                        if outcome(make(1, status=case[0], response_bytes=case[1])) == "answered"}
    assert set(OUTCOMES) == {outcome(make(1, status=s, response_bytes=b)) for s, b in cases}
