"""Security annotations on each exchange: suspicious-request rules, GeoIP, IP reputation.

One :class:`Annotator` runs its stages in order on every exchange, after
Docker attribution and before storage and output, on the engine thread (live)
or the reading loop (`read`).  A stage takes an exchange and returns it, or a
copy with its fields filled in; it must be cheap and never block: anything
slow (a web API) happens on the stage's own thread, and the stage only reads
what that thread has already learned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from eyes_devine.adapters.blocklist import BlocklistError
from eyes_devine.adapters.geoip import GeoIPError
from eyes_devine.config import Settings
from eyes_devine.enrich.intel import Intel, open_intel
from eyes_devine.enrich.rule_data import RuleFileError, rule_book
from eyes_devine.enrich.rules import RuleSet
from eyes_devine.records import Exchange, Flow


class Stage(Protocol):
    def __call__(self, exchange: Exchange) -> Exchange: ...


class Annotator:
    """The stages settings ask for, applied in order; ``close`` stops their background work."""

    def __init__(self, stages: list[Stage], closers: list[Callable[[], None]] | None = None,
                 flow_stages: list[Callable[[Flow], Flow]] | None = None) -> None:
        self.stages = stages
        self.flow_stages = flow_stages or []
        """What applies to flow summaries too: GeoIP and reputation (the rules are about HTTP)."""
        self._closers = closers or []

    def __call__(self, exchange: Exchange) -> Exchange:
        for stage in self.stages:
            exchange = stage(exchange)
        return exchange

    def annotate_flow(self, flow: Flow) -> Flow:
        for stage in self.flow_stages:
            flow = stage(flow)
        return flow

    def close(self) -> None:
        for close in self._closers:
            close()


def build_annotator(settings: Settings, log: Callable[[str], None]) -> Annotator:
    """Rules always; GeoIP and reputation as configured.  Raises SecurityConfigError for unusable files."""
    stages: list[Stage] = []
    closers: list[Callable[[], None]] = []
    _add_rules(settings, log, stages, closers)
    intel = _add_intel(settings, log, stages, closers)
    return Annotator(stages, closers, [intel.flow])


class SecurityConfigError(ValueError):
    """A --geoip database or --blocklist file cannot be used; one line naming it and the fix."""


def _add_rules(settings: Settings, log: Callable[[str], None], stages: list[Stage],
               closers: list[Callable[[], None]]) -> None:
    """Suspicious-request rules (eyes_devine.enrich.rules)."""
    try:
        ruleset = RuleSet(rule_book(settings.rules_path))
    except RuleFileError as error:
        raise SecurityConfigError(str(error)) from None
    stages.append(ruleset.annotate)


def _add_intel(settings: Settings, log: Callable[[str], None], stages: list[Stage],
               closers: list[Callable[[], None]]) -> Intel:
    """GeoIP and IP reputation (eyes_devine.enrich.intel); the built-in blocklist is always on."""
    try:
        intel = open_intel(settings, log)
    except (GeoIPError, BlocklistError) as error:
        raise SecurityConfigError(str(error)) from None
    stages.append(intel)
    closers.append(intel.close)
    return intel
