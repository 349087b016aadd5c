"""Suspicious-request rules: which known attack or reconnaissance patterns an exchange matches.

Sans-I/O and run on every exchange (live on the engine thread, and by `read`
on captures of hundreds of thousands of requests), so the common case must
cost about a microsecond: one regex search (:data:`_SUSPECT`) decides whether
a target holds anything an attack needs at all; only the few that do are
percent-decoded and matched in full, and their verdicts are cached, as targets
repeat.  User agents repeat even more, and are cached the same way.
The patterns aim at few false positives: each needs a shape ordinary requests
do not have (a quote followed by SQL, a tag, a ``../`` segment, a whole
sensitive path segment), not merely a word.

The rules see the target as stored, after credential redaction: a payload
hidden in a redacted query value (``?password=' or 1=1``) is not seen.

Rule ids are stable (they are stored and filtered on): see :data:`RULE_IDS`.
One :class:`RuleSet` belongs to one thread; it is not locked.
"""

from __future__ import annotations

import re
from collections import deque

from eyes_devine.core.signatures import (
    COMMAND_INJECTION,
    FILE_INCLUSION,
    JNDI,
    SHELLSHOCK,
    SSRF_METADATA,
    metadata_host,
    text_rules,
)
from eyes_devine.records import Exchange

PATH_TRAVERSAL = "path-traversal"
SQL_INJECTION = "sql-injection"
XSS = "xss"
SENSITIVE_PATH = "sensitive-path"
SCANNER_USER_AGENT = "scanner-user-agent"
BURST_4XX = "burst-4xx"
RULE_IDS: tuple[str, ...] = (PATH_TRAVERSAL, FILE_INCLUSION, SQL_INJECTION, COMMAND_INJECTION, XSS, JNDI, SHELLSHOCK,
                             SSRF_METADATA, SENSITIVE_PATH, SCANNER_USER_AGENT, BURST_4XX)
"""Every rule id, in the order an exchange's ``alerts`` lists them.  JNDI lookups, Shellshock, command
injection and metadata addresses are also looked for in the headers, by the core while it parses
(:mod:`eyes_devine.core.signatures`): header values are never kept."""
_ORDER = {rule: index for index, rule in enumerate(RULE_IDS)}

BURST_THRESHOLD = 20
"""4xx responses to one client within :data:`BURST_WINDOW` that make a burst: the 20th and every later one
in the window is flagged.  Browsers and crawlers meet a few 404s; twenty in ten seconds is a scanner guessing."""
BURST_WINDOW = 10.0
"""Seconds of capture time (exchange timestamps, so `read` of an old capture judges as live capture did)."""
BURST_CLIENTS = 4096
"""Clients whose recent 4xx times are remembered; the one not seen for longest is forgotten first, so a
spoofed-address flood costs bounded memory (at most BURST_THRESHOLD times per client)."""
VERDICT_CACHE = 4096
"""Distinct suspect targets (and user agents) whose verdicts are kept; the cache is emptied when full."""
CACHED_TARGET_MAX = 512
"""Longer targets and user agents are matched afresh each time (an agent only on its first 512 characters),
so the caches hold at most a few megabytes."""
DECODE_ROUNDS = 3
"""Percent-decoding passes: enough for double and triple encoding, bounded against decoding bombs."""

# Most targets have none of what an attack needs: a character that must be decoded or can carry SQL or
# script (a space is `+` or `%20`, a comment `/**/`), a dot-segment, a sensitive path or file, or the one
# SQL word that needs none of them (information_schema).  One search decides; its alternatives all start
# with a literal, so the engine only stops at those characters.
_SUSPECT = re.compile(
    "|".join(re.escape(c) for c in "%'\"<>()\\;*+`@$|")
    # Literals rather than case-insensitive classes (half the cost): the spellings probes use.
    + r"|\.(?:\.|ini|php|INI|PHP)|_schema|_SCHEMA"
    r"|/(?:\.|etc/|proc/|wp-|WP-|phpmy|phpMy|PhpMy|PHPMY|server-|Server-|SERVER-|actuator|Actuator|ACTUATOR)"
    # A URL in a parameter (a stream wrapper, a metadata address) has a ":/"; every alternative starts with a
    # character ordinary paths seldom hold, so the search only stops there.
    r"|:/"
)

# The rest run on the lower-cased, percent-decoded target of the few that pass _SUSPECT.
_TRAVERSAL = re.compile(  # every alternative starts with a literal, for the same reason as _SUSPECT's
    r"\.\.(?<=[/\\=:]\.\.)(?:[/\\;?&]|$)"  # a ../ or ..\ segment (also ..;/ and a trailing ..)
    r"|/etc/(?:passwd|shadow|group|hosts)\b|/proc/self/|:\\windows\\"
    r"|\.ini\b(?:(?<=\bwin\.ini)|(?<=\bboot\.ini)|(?<=\bsystem\.ini))"
)
# What most SQL and all script need: a quote, a bracket, markup, a statement separator or @@.
_SYNTAX = re.compile(r"['\"`()<>;@]")
# SQL after a quote or bracket.  Each pattern below starts with a character class or a literal, so the regex
# engine jumps between the few places it could start instead of trying every position of the target.
_SQL_QUOTED = re.compile(
    r"""['"`)](?:"""
    r"""(?<=['`)])\s*(?:or|and|xor|\|\||&&)\b\s*['"(]?\w+['"]?\s*(?:[=<>]|like\b|is\b)"""  # ' or 1=1, ' and 'a'='a
    r"""|(?<=")\s*(?:or|and)\b\s*(?P<q>"?)(?P<w>\w+)(?P=q)\s*=\s*(?P=q)(?P=w)\b"""  # " or "1"="1, not "a" and x=1
    r"""|(?<=')\s*(?:--|\#|/\*)|(?<=")\s*--"""  # a string closed, the rest of the query commented out
    r"""|(?<=['"])\s*;\s*(?:drop|select|insert|update|delete|exec|shutdown|declare)\b)"""  # a stacked query
)
# SQL keywords, in :func:`_sql_injection` only once one of them is present.
_SQL_SPACE = r"(?:\s|/\*.*?\*/)+"
_SQL_KEYWORDS = re.compile(
    rf"\bunion{_SQL_SPACE}(?:all{_SQL_SPACE}|distinct{_SQL_SPACE})?select\b"
    r"|\b(?:pg_)?sleep\s*\(\s*\d|\bbenchmark\s*\(\s*\d|\bwaitfor\s+delay\s+'"
    r"|\binformation_schema\b|@@version\b|\bxp_cmdshell\b|\bload_file\s*\("
)
_SQL_TAUTOLOGY = re.compile(r"\s(?:or|and)\s+(?P<n>\d+)\s*=\s*(?P=n)\b")  # 1 or 1=1, without quotes
# Script: a tag, or an event handler inside one (after a space, quote or slash: not a query parameter named onload)...
_XSS_MARKUP = re.compile(
    r"[<\s/\"'](?:(?<=<)(?:script|svg|iframe)\b"
    r"|on(?:error|load|mouseover|focus|toggle|animationstart|pointerenter|begin)\s*=)"
)
# ...or a call, looked for with `in` first.
_XSS_CALLS = re.compile(r"javascript:\s*[\w$.]+\s*\(|\balert\s*[(`]|\bdocument\.cookie\b")
# On the decoded path only: whole segments, anywhere (probes try /blog/wp-admin as well as /wp-admin).
_SENSITIVE = re.compile(
    r"/\.(?:env(?:\.[\w.-]+)?|git|svn|aws|ds_store|htpasswd)(?:/|$)"
    r"|/wp-admin(?:$|/(?!admin-ajax\.php$))"  # admin-ajax.php serves a WordPress site's ordinary visitors
    r"|/wp-login\.php$|/phpmyadmin[\w.-]*(?:/|$)|/server-(?:status|info)(?:/|$)"
    r"|/(?:wp-)?config\.php(?:\.\w+|~)?$"
    r"|/actuator(?:$|/(?!health(?:/|$)))"  # /actuator/health is every orchestrator's liveness probe
)
_SCANNER = re.compile(
    r"\b(?:sqlmap|nikto|masscan|zgrab|nmap|nuclei|wpscan|dirbuster|gobuster|feroxbuster|wfuzz|fuzz faster u fool"
    r"|acunetix|netsparker|openvas|nessus|w3af|arachni|skipfish|havij|zmeu|commix|jaeles|whatweb)",
    re.IGNORECASE,
)


def decode_target(target: str) -> tuple[str, str]:
    """(path, whole target) lower-cased and percent-decoded up to :data:`DECODE_ROUNDS` times, with ``+`` a
    space (as in a query).  An absolute-form target (a proxy request) loses its scheme and authority; the path
    always starts with a slash."""
    if target[:1] != "/":
        scheme = target.find("://")
        if scheme >= 0:
            start = target.find("/", scheme + 3)
            target = target[start:] if start >= 0 else "/"
        else:
            target = "/" + target  # "../x" is as much a traversal as "/../x"
    raw_path = target.partition("?")[0]
    text = _unquote(target.replace("+", " ") if "+" in target else target)
    # The path ends at the first "?" as sent, not at one an escape decoded to.
    path = _unquote(raw_path) if "%" in raw_path or "+" in raw_path else text[: len(raw_path)]
    return path, text


def _unquote(text: str) -> str:
    for _ in range(DECODE_ROUNDS):
        if "%" not in text:
            break
        decoded = _percent_decode(text)
        if decoded == text:
            break
        text = decoded
    return text.lower()


_BYTE = {f"{high}{low}": chr(int(f"{high}{low}", 16))
         for high in "0123456789abcdefABCDEF" for low in "0123456789abcdefABCDEF"}
"""Every spelling of a %XX escape → its byte as a character."""


def _percent_decode(text: str) -> str:
    """One pass of percent-decoding, each escape to the Latin-1 character of its byte.

    The patterns are ASCII, so decoding UTF-8 would find nothing more; this is several times
    faster than urllib's ``unquote``.  A malformed escape stays as it was.
    """
    parts = text.split("%")
    for index in range(1, len(parts)):
        part = parts[index]
        byte = _BYTE.get(part[:2])
        parts[index] = byte + part[2:] if byte is not None else "%" + part
    return "".join(parts)


def target_rules(target: str) -> tuple[str, ...]:
    """The ids of the rules that look only at the target."""
    return _decoded_target_rules(target) if _SUSPECT.search(target) else ()


def _decoded_target_rules(target: str) -> tuple[str, ...]:
    path, text = decode_target(target)
    syntax = _SYNTAX.search(text) is not None
    found = []
    if _TRAVERSAL.search(text):
        found.append(PATH_TRAVERSAL)
    if _sql_injection(text, syntax):
        found.append(SQL_INJECTION)
    if syntax and (_XSS_MARKUP.search(text) or (("javascript:" in text or "alert" in text or "document.cookie" in text)
                                                and _XSS_CALLS.search(text))):
        found.append(XSS)
    if _SENSITIVE.search(path):
        found.append(SENSITIVE_PATH)
    signatures = text_rules(text)
    if signatures:
        found = sorted(found + signatures, key=_ORDER.__getitem__)
    return tuple(found)


def _sql_injection(text: str, syntax: bool) -> bool:
    if _SQL_TAUTOLOGY.search(text):
        return True
    if not syntax:  # only these two need no quote, bracket or @
        return ("union" in text or "information_schema" in text) and _SQL_KEYWORDS.search(text) is not None
    if _SQL_QUOTED.search(text):
        return True
    # One C scan per keyword, cheaper than a regex that would stop at each of their first letters.
    return ("union" in text or "sleep" in text or "benchmark" in text or "waitfor" in text or "@@version" in text
            or "information_schema" in text or "xp_cmdshell" in text or "load_file" in text) \
        and _SQL_KEYWORDS.search(text) is not None


def merge_alerts(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    """Rule ids from two looks at one exchange (headers, then target and agent), once each, in rule order."""
    return tuple(sorted(set(first) | set(second), key=_ORDER.__getitem__))


def is_scanner(user_agent: str) -> bool:
    """Whether a User-Agent names a vulnerability scanner or a content-discovery tool."""
    return _SCANNER.search(user_agent) is not None


class RuleSet:
    """Every rule, with the state the burst rule needs; :meth:`match` an exchange to get its rule ids."""

    def __init__(self, burst_threshold: int = BURST_THRESHOLD, burst_window: float = BURST_WINDOW,
                 burst_clients: int = BURST_CLIENTS) -> None:
        if burst_threshold < 1 or burst_clients < 1:
            raise ValueError("burst_threshold and burst_clients must be at least 1")
        self.burst_threshold = burst_threshold
        self.burst_window = burst_window
        self.burst_clients = burst_clients
        self._targets: dict[str, tuple[str, ...]] = {}
        self._agents: dict[str, bool] = {}
        self._hosts: dict[str, bool] = {}
        self._errors: dict[str, deque[float]] = {}
        """Client address → times of its latest 4xx, oldest first; the dict's order is least recent first."""

    def match(self, x: Exchange) -> tuple[str, ...]:
        """The ids of the rules ``x`` matches, in :data:`RULE_IDS` order (usually none), besides those the core
        found in its headers (already in ``x.alerts``)."""
        target = x.target
        found = () if _SUSPECT.search(target) is None else self._suspect_target(target)
        agent = x.user_agent
        if agent is not None:
            scanner = self._agents.get(agent)
            if scanner is None:
                scanner = is_scanner(agent[:CACHED_TARGET_MAX])  # tools name themselves first
                if len(agent) <= CACHED_TARGET_MAX:
                    if len(self._agents) >= VERDICT_CACHE:
                        self._agents.clear()
                    self._agents[agent] = scanner
            if scanner:
                found += (SCANNER_USER_AGENT,)
        host = x.host
        if host is not None:
            to_metadata = self._hosts.get(host)
            if to_metadata is None:
                to_metadata = metadata_host(host)
                if len(self._hosts) >= VERDICT_CACHE:
                    self._hosts.clear()
                self._hosts[host] = to_metadata
            if to_metadata and SSRF_METADATA not in found:
                found = tuple(sorted((*found, SSRF_METADATA), key=_ORDER.__getitem__))
        status = x.status
        if status is not None and 400 <= status < 500 and self._burst(x.client_ip, x.ts):
            found += (BURST_4XX,)
        return found

    def _suspect_target(self, target: str) -> tuple[str, ...]:
        """The full match costs microseconds: remember it, as targets repeat."""
        found = self._targets.get(target)
        if found is None:
            found = _decoded_target_rules(target)
            if len(target) <= CACHED_TARGET_MAX:
                if len(self._targets) >= VERDICT_CACHE:
                    self._targets.clear()
                self._targets[target] = found
        return found

    def _burst(self, client: str, ts: float) -> bool:
        """Count a 4xx for ``client``; whether it is at least the threshold-th within the window."""
        errors = self._errors.pop(client, None)  # popped and put back: the dict stays least recent first
        if errors is None:
            errors = deque(maxlen=self.burst_threshold)
            if len(self._errors) >= self.burst_clients:
                del self._errors[next(iter(self._errors))]
        self._errors[client] = errors
        errors.append(ts)
        return len(errors) == self.burst_threshold and ts - errors[0] < self.burst_window

    @property
    def tracked_clients(self) -> int:
        """Clients whose 4xx times are remembered now (bounded by ``burst_clients``)."""
        return len(self._errors)
