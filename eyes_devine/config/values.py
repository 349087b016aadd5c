"""Values a person typed, checked at start: a number out of bounds is one line naming the flag or variable."""

from __future__ import annotations

import math
import re


class ConfigError(ValueError):
    """A flag or variable has a value we cannot use; the message names it and says what is expected."""


WHOLE = re.compile(r"[0-9]{1,15}")
"""ASCII digits only: str.isdigit() also accepts "²" and other digits int() refuses."""


def bounded_whole(flag: int | None, variable: str | None, flag_name: str, variable_name: str, default: int,
             bounds: tuple[int, int]) -> int:
    """A whole number from a flag or a variable, within ``bounds``: a number too big for the database or the
    memory is bad input, said at once (exit 2), not an error on every batch later."""
    if flag is not None:
        value, source = str(flag), flag_name
    elif variable and variable.strip():
        value, source = variable.strip(), variable_name
    else:
        return default
    low, high = bounds
    if not WHOLE.fullmatch(value) or not low <= int(value) <= high:
        raise ConfigError(f"{source}: {value!r} is not a whole number from {low:,} to {high:,}")
    return int(value)


def parse_number(value: str, what: str, low: float, high: float, noun: str = "a number") -> float:
    """A number a person typed: finite, within bounds (nan and inf are not numbers anyone means)."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or not low <= number <= high:
        raise ConfigError(f"{what}: {value!r} is not {noun} from {low:g} to {high:g}")
    return number


def parse_seconds(value: str, what: str, low: float = 0.1, high: float = 86400.0) -> float:
    """A number of seconds a person typed."""
    return parse_number(value, what, low, high, "a number of seconds")


