"""The suspicious-request rules as data: ``rules/http.toml`` shipped in the wheel, and a user's ``--rules FILE``.

A rule book is read once at start and checked whole: a pattern that does not
compile, an unknown field or place to look, a duplicate id is one error naming
the file and the rule, so `run` refuses to start rather than watch with a rule
quietly missing.  The built-in file's first lines document the format.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from eyes_devine.core.signatures import HeaderPattern, HeaderRules
from eyes_devine.packaged import packaged_text

PLACES = ("text", "path", "user_agent", "host", "headers")
"""Where a match looks: the decoded target, its path, the User-Agent, the Host header, the whole head."""
_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MATCH_FIELDS = {"in", "pattern", "needs", "syntax", "unwrap", "ignore_case"}
_RULE_FIELDS = {"id", "catches", "misses", "match", "kind"}


class RuleFileError(ValueError):
    """A rule file we cannot use: the message names the file and the rule."""


class LazyPattern:
    """A built-in pattern, compiled when first searched.

    Compiling the shipped book costs more than reading a small capture, and
    most patterns sit behind a prefilter or a ``needs`` gate that ordinary
    traffic never opens.  The shipped file is compiled whole by its tests; a
    user's file is compiled at start, so a broken pattern is refused there.
    """

    def __init__(self, source: str, flags: int) -> None:
        self.pattern = source
        self.flags = flags

    def search(self, text: str) -> re.Match[str] | None:
        compiled = re.compile(self.pattern, self.flags)
        self.search = compiled.search  # type: ignore[method-assign]  # later searches go straight to C
        return compiled.search(text)


@dataclass(frozen=True, slots=True)
class Match:
    place: str
    """One of :data:`PLACES`."""
    pattern: re.Pattern[str] | LazyPattern
    needs: tuple[str, ...] = ()
    """Literals one of which must be present before the pattern is searched (a cheap gate)."""
    syntax: bool = False
    """Only when the target holds a quote, a bracket, markup, ``;`` or ``@``."""
    unwrap: bool = False
    """Search with nested ``${…}`` lookups unwrapped."""


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    catches: str
    misses: str
    matches: tuple[Match, ...]
    kind: str = "pattern"
    """"pattern", or "burst" (the stateful 4xx burst rule, whose logic is code)."""
    builtin: bool = True
    """A rule of the shipped book (its target matches run behind the shipped prefilter)."""


@dataclass(frozen=True, slots=True)
class RuleBook:
    rules: tuple[Rule, ...]
    target_prefilter: re.Pattern[str]
    """Targets the built-in target rules are matched on: those with anything an attack needs."""
    header_bytes: str
    header_needs: tuple[str, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(rule.id for rule in self.rules)


@lru_cache(maxsize=8)
def header_rules(book: RuleBook) -> HeaderRules:
    """The core's part of a book: every ``headers`` match, judged while a head is parsed."""
    patterns = [HeaderPattern(rule.id, match.pattern, match.needs, match.unwrap)
                for rule in book.rules for match in rule.matches if match.place == "headers"]
    return HeaderRules(patterns, book.header_bytes, book.header_needs)


def parse_rules(text: str, origin: str, builtin: bool) -> tuple[tuple[Rule, ...], dict[str, object]]:
    """The rules of one file, and its ``[prefilter]`` table (the shipped book's only)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RuleFileError(f"{origin}: not TOML: {error}") from None
    unknown = set(data) - {"rule", "prefilter"}
    if unknown:
        raise RuleFileError(f"{origin}: unknown table {sorted(unknown)[0]!r}; a rule file holds [[rule]] tables")
    if not builtin and "prefilter" in data:
        raise RuleFileError(f"{origin}: [prefilter] belongs to the built-in rules; your rules run on every target")
    tables = data.get("rule", [])
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise RuleFileError(f"{origin}: each rule is a [[rule]] table (two brackets)")
    rules = []
    for index, table in enumerate(tables):
        rules.append(_rule(table, f"{origin}: rule {table.get('id', f'#{index + 1}')!r}", builtin))
    if not rules:
        raise RuleFileError(f"{origin}: no [[rule]] in it")
    return tuple(rules), data.get("prefilter", {})


def _rule(table: dict[str, object], where: str, builtin: bool) -> Rule:
    unknown = set(table) - _RULE_FIELDS
    if unknown:
        raise RuleFileError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    rule_id = table.get("id")
    if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
        raise RuleFileError(f"{where}: id must be lower-case words joined by '-', such as my-probe")
    kind = table.get("kind", "pattern")
    if kind not in ("pattern", "burst") or (kind == "burst" and not builtin):
        raise RuleFileError(f"{where}: kind {kind!r} is not one a rule file can use (pattern)")
    entries = table.get("match", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise RuleFileError(f"{where}: each match is a [[rule.match]] table")
    matches = tuple(_match(entry, where, builtin) for entry in entries)
    if kind == "pattern" and not matches:
        raise RuleFileError(f"{where}: no [[rule.match]]; give at least one pattern")
    return Rule(rule_id, str(table.get("catches", "")), str(table.get("misses", "")), matches, kind, builtin)


def _match(entry: dict[str, object], where: str, builtin: bool) -> Match:
    unknown = set(entry) - _MATCH_FIELDS
    if unknown:
        raise RuleFileError(f"{where}: unknown match field {sorted(unknown)[0]!r}")
    place = entry.get("in")
    if place not in PLACES:
        raise RuleFileError(f"{where}: match 'in' must be one of {', '.join(PLACES)}, not {place!r}")
    source = entry.get("pattern")
    if not isinstance(source, str) or not source:
        raise RuleFileError(f"{where}: a match needs a pattern")
    flags = re.IGNORECASE if entry.get("ignore_case") else 0
    try:
        pattern = LazyPattern(source, flags) if builtin else re.compile(source, flags)
    except re.error as error:
        raise RuleFileError(f"{where}: pattern does not compile: {error}") from None
    needs = entry.get("needs", [])
    if not isinstance(needs, list) or not all(isinstance(need, str) and need for need in needs):
        raise RuleFileError(f"{where}: needs must be a list of non-empty strings")
    return Match(place, pattern, tuple(needs), bool(entry.get("syntax", False)),  # type: ignore[arg-type]
                 bool(entry.get("unwrap", False)))


def rule_book(user_file: str | None = None) -> RuleBook:
    """The shipped rules, and the user's after them; raises RuleFileError.  Read once per file: the engine,
    the rules stage and the stored-alerts views all ask."""
    return _rule_book(user_file)


@lru_cache(maxsize=8)
def _rule_book(user_file: str | None) -> RuleBook:
    # One cache key for rule_book() and rule_book(None): lru_cache tells the two spellings apart.
    text, origin = _builtin_text()
    rules, prefilter = parse_rules(text, origin, builtin=True)
    try:
        book = RuleBook(rules, re.compile(str(prefilter["target"])), str(prefilter["header_bytes"]),
                        tuple(prefilter["header_needs"]))  # type: ignore[arg-type]
    except (KeyError, re.error, TypeError) as error:
        raise RuleFileError(f"{origin}: [prefilter] is broken: {error}") from None
    if user_file is None:
        return book
    try:
        user_text = Path(user_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RuleFileError(f"cannot read rule file {user_file}: {getattr(error, 'strerror', None) or error}") \
            from None
    user_rules, _ = parse_rules(user_text, user_file, builtin=False)
    seen = set(book.ids)
    for rule in user_rules:
        if rule.id in seen:
            raise RuleFileError(f"{user_file}: rule {rule.id!r}: that id is taken; choose another")
        seen.add(rule.id)
    return RuleBook(book.rules + user_rules, book.target_prefilter, book.header_bytes, book.header_needs)


def _builtin_text() -> tuple[str, str]:
    found = packaged_text("rules", "rulesets", "http.toml")
    if found is None:
        raise RuleFileError("the built-in rules (http.toml) are missing from this install; reinstall eyes-devine")
    return found
