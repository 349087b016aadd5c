"""Route templates: the low-cardinality name of what a request asked for, for metric labels and span names.

A path is the request's identity; a route is its shape.  ``/users/42/orders``
and ``/users/43/orders`` are one route, ``/users/{id}/orders``, as a web
framework would name it.  Metric labels and OpenTelemetry's ``http.route``
must be bounded: every distinct label value is a series a Prometheus server
keeps, and a scanner sends 100,000 distinct paths in a minute.  Two bounds
hold that: segments that look like identifiers become placeholders, and
:class:`RouteCap` keeps at most N routes per container, counting the rest under
one overflow route (counts stay exact; only the names fold).

Methods are bounded the same way, as the semantic conventions say: a method
outside the registered set is ``_OTHER``.
"""

from __future__ import annotations

import re
from functools import lru_cache

OTHER_ROUTE = "/{other}"
"""Where routes past a container's cap are counted."""
KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"})
"""HTTP methods the OpenTelemetry conventions name; others are ``_OTHER`` (a method is attacker-chosen text)."""
OTHER_METHOD = "_OTHER"
MAX_ROUTE_LENGTH = 200
"""Longer routes are cut: a label is for reading, not for storing paths."""

_PLACEHOLDERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[0-9]+"), "{id}"),
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "{uuid}"),
    (re.compile(r"(?:19|20)[0-9]{2}-[01][0-9]-[0-3][0-9](?:[T ][0-9:.]+Z?)?"), "{date}"),
    (re.compile(r"[0-9a-fA-F]{16,}"), "{hex}"),
)
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9_\-+=.~]{16,}")
_KINDS = (re.compile(r"[0-9]"), re.compile(r"[A-Z]"), re.compile(r"[a-z]"))


def _segment(segment: str) -> str:
    segment = segment.split(";", 1)[0]  # path parameters (;jsessionid=...) are not part of the route
    for pattern, placeholder in _PLACEHOLDERS:
        if pattern.fullmatch(segment):
            return placeholder
    if _TOKEN_ALPHABET.fullmatch(segment) and sum(1 for kind in _KINDS if kind.search(segment)) >= 2 \
            and not (segment.islower() and "-" in segment):  # a slug such as intro-to-http2-for-kubernetes-users
        return "{token}"
    return segment


def route_template(target: str) -> str:
    """:func:`_route_template`, remembered for targets short enough to keep as cache keys."""
    return _cached_route(target) if len(target) <= 512 else _route_template(target)


def _route_template(target: str) -> str:
    """The route of a request target: query and fragment dropped, identifier-like segments replaced.

    ``/users/42/orders?page=2`` → ``/users/{id}/orders``; an absolute-form target
    (a proxy request) is reduced to its path; ``*`` stays ``*`` and a CONNECT
    authority is ``{authority}``.
    """
    path = target.split("?", 1)[0].split("#", 1)[0]
    if path == "*":
        return path
    if not path.startswith("/"):
        scheme, separator, rest = path.partition("://")
        if not separator:
            return "{authority}"
        path = "/" + rest.partition("/")[2]
    route = "/".join(_segment(segment) for segment in path.split("/"))
    return route if len(route) <= MAX_ROUTE_LENGTH else route[:MAX_ROUTE_LENGTH] + "…"


_cached_route = lru_cache(maxsize=8192)(_route_template)


def method_label(method: str) -> str:
    """The method as a bounded label: a registered method, else ``_OTHER``."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


class RouteCap:
    """At most ``limit`` routes per container; further routes are counted as :data:`OTHER_ROUTE`.

    The first routes a container serves keep their names (a service's real
    routes come before a scan of random ones, and stay named after it).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._routes: dict[str, set[str]] = {}

    def route(self, container: str, target: str) -> str:
        route = route_template(target)
        known = self._routes.get(container)
        if known is None:
            known = self._routes[container] = set()
        if route in known:
            return route
        if len(known) < self.limit:
            known.add(route)
            return route
        return OTHER_ROUTE

    def forget(self, container: str) -> None:
        """A removed container's routes no longer count against anyone's cap."""
        self._routes.pop(container, None)
