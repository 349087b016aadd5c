"""Redaction of secrets before anything leaves the HTTP layer.

The few free-text fields an exchange keeps can carry credentials: the
request-target (API keys in the query, session ids in path parameters, JWTs
anywhere, passwords in absolute-form URLs), the Host header (userinfo) and the
User-Agent (tokens some clients embed).  They are rewritten here, before a
record exists, so no sink, log or database page ever holds them.  Header values
that carry credentials are never stored at all: :data:`SENSITIVE_HEADERS` names
them for any code that handles headers.

This runs on every exchange: each function first asks, with a few ``in``
checks or one regex search, whether anything could be a secret at all.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote_plus

REDACTED = "REDACTED"

SENSITIVE_HEADERS: frozenset[str] = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
"""Lower-case header names whose values must never be stored."""

# A parameter name is split into lower-case words (at separators and camelCase humps: "apiKey", "X-Amz-Signature",
# "AWSAccessKeyId") and is a secret's name when ...
SECRET_PARTS = (
    "token", "secret", "passw", "passphrase", "passcode", "passkey", "pwd", "session", "sessid", "credential",
    "signature", "jwt", "cookie", "bearer", "authoriz", "authoris", "authent", "authcode", "hmac",
    "assertion", "saml", "apikey", "accesskey", "authkey", "privatekey", "signingkey", "masterkey", "clientkey",
    "appkey", "consumerkey", "subscriptionkey", "licensekey", "licencekey", "encryptionkey",
)
"""... a word contains one of these (distinctive wherever they are: "client_secret", "PHPSESSID") ..."""
SECRET_WORDS = ("key", "auth", "authn", "authz", "pin", "sig", "sid", "otp", "totp", "pass", "pw", "private",
                "verifier")
"""... or a whole word is one of these (too short to match inside words: "api_key" but not "keyword" or "monkey",
"user_pin" but not "spinner", "auth" but not "author") ..."""
SECRET_NAMES = frozenset({"code", "ticket", "hash"})
"""... or the whole name is one of these (an OAuth authorization code, a CAS ticket, a signed link's hash; as
words they are ordinary: "zip_code", "file_hash")."""
_SECRET_NAME = re.compile(
    "|".join(SECRET_PARTS) + "|(?<![a-z])(?:" + "|".join(SECRET_WORDS) + ")(?![a-z])"
)
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
# One name=value pair in the query or the fragment, after the separator that begins it.  A "?" ends a value here
# too, so a nested URL's query is read as well (?next=/reset?token=...); a secret's value runs on to the next
# "&", ";" or "#" (_VALUE_END), as a "?" in a password is part of it.  No part can end but where it does
# (possessive), and every match starts past the last: linear in the target whatever it holds.
_PARAM = re.compile(r"[?&;#]([^?&;#=]*+)=([^?&;#]*+)")
_VALUE_END = re.compile(r"[&;#]")
# A path parameter (";jsessionid=", in any segment).
_PATH_PARAM = re.compile(r";([^;/=]*+)=([^;/]*+)")
# Pre-check over the lower-cased query and fragment: can any parameter be a secret at all?  Every part, word and name
# above contains one of these; factored by first letter, as re tries alternatives one by one (and skips to
# the positions holding a first letter).
_MAYBE_SECRET = re.compile(
    r"a(?:uth|ssertion)|b(?:earer)|c(?:o(?:okie|de=)|redential)|h(?:mac|ash=)|jwt|key|otp"
    r"|p(?:ass|w|in|rivate)|s(?:i[dg]|e(?:cret|ssion)|aml)|t(?:oken|icket=)|verifier"
)
# A JSON Web Token as JOSE libraries write it: base64url parts, the first a JSON header ("{\"" is "eyJ").  A JWE
# (header, key - empty for direct encryption -, iv, ciphertext, tag); a JWS whose payload is JSON too, signed or
# unsigned (alg none: an empty or no third part); or any other three-part JWS.  One base64 JSON string alone
# (an image service's options in a path) is no token.
_B64 = "[A-Za-z0-9_-]"
_JWT = re.compile(  # possessive: no part can end but where its run of base64 does (see _redact_jwts)
    rf"eyJ{_B64}{{8,}}+\.(?:{_B64}*+\.{_B64}++\.{_B64}++\.{_B64}++|eyJ{_B64}*+(?:\.{_B64}*+)?|{_B64}++\.{_B64}*+)"
)
_B64_RUN = re.compile(f"{_B64}*+")
# In a User-Agent: a bearer token after its scheme, and name=value pairs between the agent's own separators.
_BEARER = re.compile(r"(\bbearer\s+)[^\s;,()]+", re.IGNORECASE)
_AGENT_PAIR = re.compile(r"(?<![^\s;,()=&])([^\s;,()=&]++)=([^\s;,()&]*+)")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# A percent-encoded name could hide a secret word from the pre-check (values may hold "%" freely).
_ENCODED_NAME = re.compile(r"[?&;#][^?&;#=%]*+%")


def redact_target(target: str) -> str:
    """The request-target with secrets replaced by ``REDACTED``: values of parameters with a secret's name (in
    the query, the fragment and path parameters), JWTs wherever they are, and userinfo.

    Everything else is kept exactly as sent (encoding, order, separators); the
    common origin-form target, without a query, fragment, path parameter or
    token, returns after four ``in`` checks.
    """
    if target[:1] == "/":
        if "?" not in target and ";" not in target and "#" not in target and "eyJ" not in target:
            return target
    else:
        target = _redact_userinfo(target)
    if "eyJ" in target:
        target = _redact_jwts(target)
    end = target.find("?")
    if end < 0:
        end = len(target)
    fragment = target.find("#", 0, end)
    if fragment >= 0:
        end = fragment
    params = target[end:]
    if target.find(";", 0, end) >= 0:
        path = target[:end]
        redacted = _PATH_PARAM.sub(_redact_path_param, path)
        if redacted != path:
            target = redacted + params
    if params and (_MAYBE_SECRET.search(params.lower()) is not None
                   or "%" in params and _ENCODED_NAME.search(params) is not None):
        redacted = _redact_params(params)
        if redacted is not params:
            target = target[:len(target) - len(params)] + redacted
    return target


@lru_cache(maxsize=4096)  # names repeat: a client sending ?api_key= sends it with every request
def is_sensitive_param(name: str) -> bool:
    """Whether a parameter name (percent-encoded or not, any case) names a credential.

    Decoded once, as a server decodes it.  When in doubt it says yes: a value
    lost from a record costs less than a credential kept in one.
    """
    if "%" in name or "+" in name:
        name = unquote_plus(name)
    words = _HUMP.sub("_", name).lower()
    return words in SECRET_NAMES or _SECRET_NAME.search(words) is not None


def _redact_params(params: str) -> str:
    """The query and fragment (from the ``?`` or ``#`` that begins them, one of whose names may be a secret's),
    their secret values replaced.

    A fragment never reaches a server from a browser; one on the wire is read
    as a query is, since ``#access_token=`` is how tokens travel in fragments.
    """
    pieces: list[str] = []
    copied = at = 0
    while (pair := _PARAM.search(params, at)) is not None:
        at = pair.end()
        if is_sensitive_param(pair[1]):
            start = pair.start(2)
            end = _VALUE_END.search(params, start)
            end = len(params) if end is None else end.start()
            if end > start:
                pieces += (params[copied:start], REDACTED)
                copied = at = end
    if not pieces:
        return params
    pieces.append(params[copied:])
    return "".join(pieces)


def _redact_path_param(match: re.Match[str]) -> str:
    name, value = match.groups()
    return f";{name}={REDACTED}" if value and is_sensitive_param(name) else match[0]


def _redact_jwts(text: str) -> str:
    """Every JWT in ``text`` replaced.

    An ``eyJ`` that begins no token is skipped with the rest of its run of
    base64: a later ``eyJ`` in the same run has its header end where this one's
    did and fails as it did, so a run of crafted ``eyJ`` costs linear time.
    """
    pieces: list[str] = []
    copied = 0
    at = text.find("eyJ")
    while at >= 0:
        token = _JWT.match(text, at)
        if token is None:
            at = text.find("eyJ", _B64_RUN.match(text, at).end())  # type: ignore[union-attr]
        else:
            pieces += (text[copied:at], REDACTED)
            copied = token.end()
            at = text.find("eyJ", copied)
    if not pieces:
        return text
    pieces.append(text[copied:])
    return "".join(pieces)


def redact_user_agent(agent: str) -> str:
    """A User-Agent with the secrets some clients put there replaced: JWTs, ``Bearer <token>``, and
    ``name=value`` pairs with a secret's name (``MyApp/1.0 (token=…)``); browsers' agents return at once."""
    if "=" not in agent and "eyJ" not in agent and "bearer" not in agent.lower():  # any case: BeArEr too
        return agent
    redacted = _redact_jwts(agent) if "eyJ" in agent else agent
    redacted = _BEARER.sub(rf"\1{REDACTED}", redacted)
    if "=" in redacted:
        redacted = _AGENT_PAIR.sub(_redact_agent_pair, redacted)
    return agent if redacted == agent else redacted


def _redact_agent_pair(match: re.Match[str]) -> str:
    name, value = match.groups()
    return f"{name}={REDACTED}" if value and is_sensitive_param(name) else match.group(0)


def redact_host(host: str) -> str:
    """A Host header value with its userinfo (``user:pass@host``, which no client should send) replaced."""
    if "@" not in host:
        return host
    return REDACTED + host[host.rfind("@"):]


def _redact_userinfo(target: str) -> str:
    """``http://user:pass@host/…`` -> ``http://REDACTED@host/…``; ``user:pass@host:443`` (CONNECT's authority-form)
    -> ``REDACTED@host:443``."""
    scheme = _SCHEME.match(target)
    start = scheme.end() if scheme is not None else 0
    end = len(target)
    for stop in "/?#":
        found = target.find(stop, start, end)
        if found >= 0:
            end = found
    at = target.rfind("@", start, end)
    if at < 0:
        return target
    return target[:start] + REDACTED + target[at:]
