"""Suspicious-request rules: which known attack or reconnaissance patterns an exchange matches.

The rules are data (``rules/http.toml``, shipped in the wheel; a user's own
with ``--rules FILE``: :mod:`eyes_devine.enrich.rule_data`); this module runs
them.  Sans-I/O and run on every exchange (live on the engine thread, and by
`read` on captures of hundreds of thousands of requests), so the common case
must cost about a microsecond: one regex search (the book's target prefilter)
decides whether a target holds anything an attack needs at all; only the few
that do are percent-decoded and matched in full, and their verdicts are
cached, as targets repeat.  User agents and Host headers repeat even more, and
are cached the same way.  Header values are judged by the core while it
parses (they are never kept); their verdicts arrive in ``x.alerts``.

The rules see the target as stored, after credential redaction: a payload
hidden in a redacted query value (``?password=' or 1=1``) is not seen.

Rule ids are stable (they are stored and filtered on): see :data:`RULE_IDS`.
One :class:`RuleSet` belongs to one thread; it is not locked.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable

from eyes_devine.core.signatures import unwrap_lookups
from eyes_devine.enrich.rule_data import Rule, RuleBook, rule_book
from eyes_devine.records import Exchange

PATH_TRAVERSAL = "path-traversal"
FILE_INCLUSION = "file-inclusion"
SQL_INJECTION = "sql-injection"
COMMAND_INJECTION = "command-injection"
XSS = "xss"
JNDI_LOOKUP = "jndi-lookup"
SHELLSHOCK = "shellshock"
SSRF_METADATA = "ssrf-metadata"
SENSITIVE_PATH = "sensitive-path"
SCANNER_USER_AGENT = "scanner-user-agent"
BURST_4XX = "burst-4xx"
RULE_IDS: tuple[str, ...] = rule_book().ids
"""Every built-in rule id, in the order an exchange's ``alerts`` lists them (a user's rules come after)."""

BURST_THRESHOLD = 20
"""4xx responses to one client within :data:`BURST_WINDOW` that make a burst: the 20th and every later one
in the window is flagged.  Browsers and crawlers meet a few 404s; twenty in ten seconds is a scanner guessing."""
BURST_WINDOW = 10.0
"""Seconds of capture time (exchange timestamps, so `read` of an old capture judges as live capture did)."""
BURST_CLIENTS = 4096
"""Clients whose recent 4xx times are remembered; the one not seen for longest is forgotten first, so a
spoofed-address flood costs bounded memory (at most BURST_THRESHOLD times per client)."""
VERDICT_CACHE = 4096
"""Distinct suspect targets (and user agents, hosts) whose verdicts are kept; a cache is emptied when full."""
CACHED_TARGET_MAX = 512
"""Longer targets and user agents are matched afresh each time (an agent only on its first 512 characters),
so the caches hold at most a few megabytes."""
DECODE_ROUNDS = 3
"""Percent-decoding passes: enough for double and triple encoding, bounded against decoding bombs."""

METADATA_SERVERS = frozenset({"169.254.169.254", "fd00:ec2::254"})
"""A request sent to the metadata service itself (an SDK fetching credentials) names it in Host: not SSRF."""

# What most SQL and all script need: a quote, a bracket, markup, a statement separator or @@.
_SYNTAX = re.compile(r"['\"`()<>;@]")


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


class RuleSet:
    """Every rule of a book, with the state the burst rule needs; :meth:`match` an exchange to get its rule ids."""

    def __init__(self, book: RuleBook | None = None, burst_threshold: int = BURST_THRESHOLD,
                 burst_window: float = BURST_WINDOW, burst_clients: int = BURST_CLIENTS) -> None:
        if burst_threshold < 1 or burst_clients < 1:
            raise ValueError("burst_threshold and burst_clients must be at least 1")
        book = book or rule_book()
        self.book = book
        self.burst_threshold = burst_threshold
        self.burst_window = burst_window
        self.burst_clients = burst_clients
        self._order = {rule: index for index, rule in enumerate(book.ids)}
        self._prefilter = book.target_prefilter.search
        self._builtin_targets = _matches(book.rules, ("text", "path"), builtin=True)
        self._user_targets = _matches(book.rules, ("text", "path"), builtin=False)
        self._agent_matches = _matches(book.rules, ("user_agent",))
        self._host_matches = _matches(book.rules, ("host",))
        self._burst_rule = next((rule.id for rule in book.rules if rule.kind == "burst"), None)
        self._targets: dict[str, tuple[str, ...]] = {}
        self._agents: dict[str, tuple[str, ...]] = {}
        self._hosts: dict[str, tuple[str, ...]] = {}
        self._errors: dict[str, deque[float]] = {}
        """Client address → times of its latest 4xx, oldest first; the dict's order is least recent first."""
        self.match = self._matcher()
        """The ids of the rules an exchange matches, in the book's order (usually none), besides those the core
        found in its headers (already in ``x.alerts``).  A closure over this set's tables, built once: it runs on
        every exchange, and local lookups cost a fraction of attribute lookups."""

    def annotate(self, x: Exchange) -> Exchange:
        """``x`` with the rules it matches merged into its ``alerts`` (the core's verdict on its headers)."""
        found = self.match(x)
        if not found:
            return x
        return x._replace(alerts=self.merge(x.alerts, found) if x.alerts else found)

    def _matcher(self) -> Callable[[Exchange], tuple[str, ...]]:
        prefilter, judge_target, merge = self._prefilter, self._target, self.merge
        every_target = bool(self._user_targets)  # a user's target rules run behind no prefilter
        agent_matches, agents = self._agent_matches, self._agents
        host_matches, hosts = self._host_matches, self._hosts
        known_agent, known_host = agents.get, hosts.get  # the caches are emptied in place, never replaced
        burst_rule, burst = self._burst_rule, self._burst

        def match(x: Exchange) -> tuple[str, ...]:
            target = x.target
            found = judge_target(target) if every_target or prefilter(target) is not None else ()
            agent = x.user_agent
            if agent is not None:
                verdict = known_agent(agent)
                if verdict is None:
                    verdict = _run(agent_matches, agent[:CACHED_TARGET_MAX])  # tools name themselves first
                    if len(agent) <= CACHED_TARGET_MAX:
                        _remember(agents, agent, verdict)
                if verdict:
                    found = merge(found, verdict)
            host = x.host
            if host is not None:
                verdict = known_host(host)
                if verdict is None:
                    verdict = _run(host_matches, host.lower())
                    if len(host) <= CACHED_TARGET_MAX:
                        _remember(hosts, host, verdict)
                if verdict and x.server_ip not in METADATA_SERVERS:
                    found = merge(found, verdict)
            if burst_rule is not None:
                status = x.status
                if status is not None and 400 <= status < 500 and burst(x.client_ip, x.ts):
                    found = merge(found, (burst_rule,))
            return found

        return match

    def merge(self, first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
        """Rule ids from two looks at one exchange, once each, in the book's order."""
        if not first:
            return second
        return tuple(sorted(set(first) | set(second), key=self._order.__getitem__))

    def target_rules(self, target: str) -> tuple[str, ...]:
        """The ids of the rules that look at the target only (decoded, whatever the prefilter says)."""
        return self._target(target, cached=False)

    def _target(self, target: str, cached: bool = True) -> tuple[str, ...]:
        """The full match costs microseconds: remember it, as targets repeat."""
        found = self._targets.get(target) if cached else None
        if found is None:
            path, text = decode_target(target)
            matches = self._builtin_targets + self._user_targets if self._prefilter(target) is not None \
                else self._user_targets
            found = _run(matches, text, path, _SYNTAX.search(text) is not None)
            if len(found) > 1:
                found = tuple(sorted(found, key=self._order.__getitem__))
            if cached and len(target) <= CACHED_TARGET_MAX:
                _remember(self._targets, target, found)
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


_Matches = tuple[tuple[str, str, re.Pattern[str], tuple[str, ...], bool, bool], ...]
"""(rule id, place, pattern, needs, syntax, unwrap) for each match of a kind, in the book's order."""


def _matches(rules: tuple[Rule, ...], places: tuple[str, ...], builtin: bool | None = None) -> _Matches:
    return tuple((rule.id, match.place, match.pattern, match.needs, match.syntax, match.unwrap)
                 for rule in rules if builtin is None or rule.builtin == builtin
                 for match in rule.matches if match.place in places)


def _run(matches: _Matches, text: str, path: str | None = None, syntax: bool = True) -> tuple[str, ...]:
    """The ids of the rules one of whose ``matches`` finds ``text`` (``path`` for path matches)."""
    found: list[str] = []
    unwrapped: str | None = None
    for rule, place, pattern, needs, needs_syntax, unwrap in matches:
        if rule in found or (needs_syntax and not syntax):
            continue
        subject = path if place == "path" else text
        if subject is None or (needs and not any(need in subject for need in needs)):
            continue
        if unwrap:
            if place == "path":
                subject = unwrap_lookups(subject)
            else:
                if unwrapped is None:
                    unwrapped = unwrap_lookups(text)
                subject = unwrapped
        if pattern.search(subject):
            found.append(rule)
    return tuple(found)


def _remember(cache: dict[str, tuple[str, ...]], key: str, verdict: tuple[str, ...]) -> None:
    if len(cache) >= VERDICT_CACHE:
        cache.clear()
    cache[key] = verdict


_DEFAULT: list[RuleSet] = []


def _default() -> RuleSet:
    if not _DEFAULT:
        _DEFAULT.append(RuleSet())
    return _DEFAULT[0]


def target_rules(target: str) -> tuple[str, ...]:
    """The ids of the built-in rules that look only at the target (a convenience for tests and tools)."""
    default = _default()
    return default.target_rules(target) if default._prefilter(target) is not None else ()


def is_scanner(user_agent: str) -> bool:
    """Whether a User-Agent names a vulnerability scanner or a content-discovery tool."""
    return SCANNER_USER_AGENT in _run(_default()._agent_matches, user_agent)
