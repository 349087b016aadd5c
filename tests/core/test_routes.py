"""Route templates: identifiers fold into placeholders, a container's routes are capped, counts never are."""

from __future__ import annotations

import random
import string

import pytest

from eyes_devine.core.routes import OTHER_METHOD, OTHER_ROUTE, RouteCap, method_label, route_template


@pytest.mark.parametrize(("target", "route"), [
    ("/users/42/orders?page=2", "/users/{id}/orders"),
    ("/users/43/orders", "/users/{id}/orders"),
    ("/items/3fa85f64-5717-4562-b3fc-2c963f66afa6", "/items/{uuid}"),
    ("/reports/2024-05-01/summary", "/reports/{date}/summary"),
    ("/commits/9fceb02d0ae598e95dc970b74767f19372d61af8", "/commits/{hex}"),
    ("/files/aGVsbG8td29ybGQtdGhpcy1pcw", "/files/{token}"),
    ("/static/app.3f2a9c8e1b7d4f60.js", "/static/{token}"),
    ("/blog/intro-to-http2-for-kubernetes-users", "/blog/intro-to-http2-for-kubernetes-users"),
    ("/api/v1/health", "/api/v1/health"),
    ("/a;jsessionid=REDACTED/b", "/a/b"),
    ("/search#frag", "/search"),
    ("/", "/"),
    ("*", "*"),
    ("http://proxy.example/users/7?x=1", "/users/{id}"),
    ("example.com:443", "{authority}"),
])
def test_identifier_segments_become_placeholders(target, route):
    assert route_template(target) == route


def test_a_route_is_bounded_in_length():
    assert len(route_template("/" + "a" * 5000)) <= 201


def test_methods_outside_the_registered_set_are_other():
    assert [method_label(m) for m in ("GET", "PATCH", "QUERY", "get", "FOO", "\x1b[2J")] == \
        ["GET", "PATCH", "QUERY", OTHER_METHOD, OTHER_METHOD, OTHER_METHOD]


def test_a_scan_of_random_paths_stays_within_the_cap_plus_the_overflow_route():
    cap = RouteCap(100)
    rng = random.Random(7)
    real = [cap.route("web", f"/api/items/{i}") for i in range(50)] + [cap.route("web", "/health")]
    scanned = [cap.route("web", "/" + "".join(rng.choices(string.ascii_lowercase, k=12))) for _ in range(3000)]
    assert set(real) == {"/api/items/{id}", "/health"}, "the service's own routes came first and keep their names"
    assert len(set(real) | set(scanned)) == 101 and OTHER_ROUTE in scanned
    assert cap.route("web", "/health") == "/health" and cap.route("api", "/zzz") == "/zzz", "caps are per container"


def test_a_forgotten_container_starts_a_fresh_cap():
    cap = RouteCap(1)
    assert (cap.route("web", "/a"), cap.route("web", "/b")) == ("/a", OTHER_ROUTE)
    cap.forget("web")
    assert cap.route("web", "/b") == "/b"
