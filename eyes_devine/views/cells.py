"""Cell formats every table shares: times, endpoints, latencies, statuses, owners, rule ids.

Plain text helpers (used by the streaming `read` table too) and rich cells that
cut themselves with an ellipsis rather than wrap.  Every cell holding text from
the network or from Docker goes through :func:`cut` or :func:`plain`, which escape
what a terminal would act on (see :mod:`eyes_devine.views.safe`) and never read
rich markup.
"""

from __future__ import annotations

import time

from rich.text import Text

from eyes_devine.records import Attribution, Exchange, outcome
from eyes_devine.views.safe import safe

STATUS_STYLES = {2: "green", 3: "cyan", 4: "yellow", 5: "red"}
"""Status classes as rich styles (the `read` table uses the same colours as escape codes)."""
TARGET_MAX = 200
"""Characters of a target kept before the table's own ellipsis, so one huge URL cannot dominate the layout."""
ALERT_STYLE = "red"
"""Exchanges that matched a suspicious-request rule: their target and rule ids."""


def endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def latency(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.1f}ms" if ms < 1000 else f"{ms / 1000:.2f}s"


def clock(ts: float, today: tuple[int, ...]) -> str:
    """The time of day, with the date in front when ``ts`` is not ``today`` (year, month, day)."""
    local = time.localtime(ts)
    if tuple(local[:3]) == today:
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%Y-%m-%d %H:%M:%S", local)


def cut(text: str, style: str = "") -> Text:
    """Outside text as a cell that ends in an ellipsis rather than wrapping."""
    return Text(safe(text), style=style, no_wrap=True, overflow="ellipsis")


def plain(text: str, style: str = "") -> Text:
    """Outside text as a cell, escaped, never read as markup."""
    return Text(safe(text), style=style)


def owner(attribution: Attribution) -> Text:
    """Whom a record belongs to: the serving container, else the calling one (dim, with an arrow)."""
    if attribution.container or attribution.container_id:
        return cut(attribution.container or attribution.container_id or "")
    if attribution.client_container or attribution.client_container_id:
        return cut(f"{attribution.client_container or attribution.client_container_id} →", style="dim")
    return Text("-", style="dim")


def status(code: int | None) -> Text:
    if code is None:
        return Text("-", style="dim")
    return Text(str(code), style=STATUS_STYLES.get(code // 100, ""))


def rules(alerts: tuple[str, ...]) -> Text:
    """The ids of the rules a record matched, in red; empty when none."""
    return cut(",".join(alerts), style=ALERT_STYLE) if alerts else Text("")


OUTCOME_STYLES = {"answered": "bold red", "redirected": "yellow", "refused": "green", "failed": "magenta",
                  "no_response": "dim"}
"""An attack answered is the one to look at first."""


def outcome_cell(x: Exchange) -> Text:
    """What the server did with the request: answered, redirected, refused, failed, no_response."""
    name = outcome(x)
    return Text(name, style=OUTCOME_STYLES[name])


def short_target(target: str) -> str:
    return target if len(target) <= TARGET_MAX else target[: TARGET_MAX - 1] + "…"
