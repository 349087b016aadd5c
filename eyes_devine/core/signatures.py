"""Attack signatures judged in a request's headers while it is parsed: header values are never kept.

Header values reach no record (credentials live there), so the only moment a
rule can see them is the parse.  The patterns are data (the rule book's
``headers`` matches, see ``rules/http.toml``), handed to the core as
:class:`HeaderRules`; the request side asks each head whether it holds any
rare byte (:meth:`HeaderRules.suspect`: one C pass that is false for almost
every head, a browser's included), and :meth:`HeaderRules.judge` about the few
that do.  Only the verdict (rule ids) is kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

LOOKUP_ROUNDS = 8
"""Nested lookups unwrapped (``${${lower:j}${::-n}di:…}``), bounded against a head built to loop."""
_LOOKUP = re.compile(r"\$\{(?>(?:lower|upper)\s*:\s*+|date\s*:\s*+'?|[^${}]*?:-)([^${}']*+)'?\}")
"""An obfuscating lookup whose value is its argument: ${lower:j}, ${upper:J}, ${::-j}, ${env:X:-j}, ${date:'j'}."""


def unwrap_lookups(text: str) -> str:
    """``text`` with the lookups that only spell their argument replaced by it, innermost first (Log4Shell's
    obfuscations: ``${${lower:j}ndi:…}`` is ``${jndi:…}``)."""
    for _ in range(LOOKUP_ROUNDS):
        unwrapped = _LOOKUP.sub(r"\1", text)
        if unwrapped == text:
            break
        text = unwrapped
    return text


class Searcher(Protocol):
    """A compiled pattern, or one compiled when first searched."""

    def search(self, text: str, /) -> re.Match[str] | None: ...


@dataclass(frozen=True, slots=True)
class HeaderPattern:
    """One ``headers`` match of a rule: a pattern searched in the lower-cased head."""

    rule: str
    pattern: Searcher
    needs: tuple[str, ...] = ()
    """Literals one of which must be in the head before the pattern is searched."""
    unwrap: bool = False
    """Search the head with its nested lookups unwrapped (:func:`unwrap_lookups`)."""


class HeaderRules:
    """The rule book's header patterns, and the rare bytes without which no head is judged."""

    def __init__(self, patterns: Sequence[HeaderPattern], rare_bytes: str, needs: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        rare = rare_bytes.encode("latin-1")
        self.marks = bytes(byte ^ 1 if byte in rare else byte for byte in range(256))
        """Each rare byte to another, every other byte to itself: ``head.translate(marks) is head`` when the head has
        no rare byte (bytes.translate returns the very object when nothing changed; a table without deletions is
        its cheapest loop, about half the cost of deleting the ordinary bytes)."""
        self._marks_but_and = bytes(byte ^ 1 if byte in rare and byte != 0x26 else byte for byte in range(256))
        """As :attr:`marks`, with ``&`` left alone: a lone ``&`` separates a query's fields."""
        self._needs = tuple(need.encode("latin-1") for need in needs)

    def suspect(self, head: bytes) -> bool:
        """Whether ``head`` is worth :meth:`judge`: it holds a rare byte, and not only the ``&`` of a query."""
        return head.translate(self._marks_but_and) is not head or head.find(b"&&") >= 0

    def judge(self, head: bytes) -> tuple[str, ...]:
        """The ids of the rules whose header patterns ``head`` matches, in the book's order (usually none)."""
        if not any(need in head for need in self._needs):
            return ()
        text = head.decode("latin-1").lower()
        unwrapped: str | None = None
        found: list[str] = []
        for header in self.patterns:
            if header.rule in found or (header.needs and not any(need in text for need in header.needs)):
                continue
            subject = text
            if header.unwrap:
                if unwrapped is None:
                    unwrapped = unwrap_lookups(text)
                subject = unwrapped
            if header.pattern.search(subject):
                found.append(header.rule)
        return tuple(found)
