"""Redaction of secrets before anything leaves the HTTP layer.

Request targets are the only free text the HTTP layer keeps that can carry
credentials (API keys in query strings, passwords in absolute-form URLs), so
they are rewritten here.  Header values that carry credentials are never stored
at all: :data:`SENSITIVE_HEADERS` names them for any code that handles headers.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

REDACTED = "REDACTED"

SENSITIVE_HEADERS: frozenset[str] = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
"""Lower-case header names whose values must never be stored."""

# A query parameter is sensitive when its lower-cased name contains one of these ("key"
# but not "keyword", so search boxes stay readable) ...
SENSITIVE_WORDS = (
    "token",
    "secret",
    "passw",
    "pwd",
    "session",
    "auth",
    "signature",
    "credential",
    "key",
    "jwt",
    "private",
    "cookie",
)
_SENSITIVE_PART = re.compile("|".join("key(?!word)" if word == "key" else word for word in SENSITIVE_WORDS))
# ... or is exactly one of these short names (too generic to match as substrings).
SENSITIVE_NAMES = frozenset({"sig", "sid", "code", "otp", "pass", "pw", "ticket", "hash"})
# One name=value pair: the name starts after a separator (or the start of the query).
_PARAM = re.compile(r"(?<![^&;])([^&;=]*)=([^&;]*)")
# Pre-check over the whole lower-cased query: can any parameter be sensitive at all?  The
# words and names above, factored by first letter because re tries alternatives one by one.
_MAYBE_SENSITIVE = re.compile(
    r"t(?:oken|icket=)|s(?:ecret|ession|ig(?:nature|=)|id=)|p(?:ass(?:w|=)|wd|rivate|w=)|auth"
    r"|c(?:redential|ookie|ode=)|key|jwt|otp=|hash="
)


def redact_target(target: str) -> str:
    """The request-target with credential-like query values and URL userinfo replaced.

    Everything else is kept exactly as sent (encoding, order, separators); the
    common origin-form target without a query returns after one ``in`` check.
    """
    if target[:1] == "/":
        if "?" not in target:
            return target
        return _redact_query(target)
    return _redact_query(_redact_userinfo(target))


def is_sensitive_param(name: str) -> bool:
    """Whether a query parameter name (possibly percent-encoded) looks like a credential."""
    if "%" in name or "+" in name:
        name = unquote_plus(name)
    name = name.lower()
    return _SENSITIVE_PART.search(name) is not None or name in SENSITIVE_NAMES


def _redact_query(target: str) -> str:
    start = target.find("?")
    if start < 0:
        return target
    start += 1
    end = target.find("#", start)
    if end < 0:
        end = len(target)
    query = target[start:end]
    # Percent-encoded names could hide a sensitive word from the pre-check.
    if "%" not in query and _MAYBE_SENSITIVE.search(query.lower()) is None:
        return target
    redacted = _PARAM.sub(_redact_pair, query)
    if redacted == query:
        return target
    return target[:start] + redacted + target[end:]


def _redact_pair(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    if value and is_sensitive_param(name):
        return f"{name}={REDACTED}"
    return match.group(0)


def _redact_userinfo(target: str) -> str:
    """``scheme://user:pass@host/...`` -> ``scheme://REDACTED@host/...``."""
    scheme_end = target.find("://")
    if scheme_end < 0:
        return target
    start = scheme_end + 3
    end = len(target)
    for stop in "/?#":
        found = target.find(stop, start, end)
        if found >= 0:
            end = found
    at = target.rfind("@", start, end)
    if at < 0:
        return target
    return target[:start] + REDACTED + target[at:]
