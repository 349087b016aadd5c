"""Data shipped with eyes-devine: inside the wheel, or at the top of a source checkout.

The interface profiles (``interfaces/``) and the rules (``rules/``) are kept at
the top of the repository for people to read and extend; the wheel maps each
folder into the package.  An editable install or a checkout has no such copy,
so the file is looked for in the checkout next.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def packaged_text(folder: str, in_wheel: str, name: str) -> tuple[str, str] | None:
    """The text of ``name`` and where it came from ("built-in NAME", or the checkout's path); None when this
    install has neither the wheel's ``eyes_devine/<in_wheel>/`` copy nor the checkout's ``<folder>/``."""
    packaged = importlib.resources.files("eyes_devine").joinpath(in_wheel, name)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8"), f"built-in {name}"
    checkout = Path(__file__).resolve().parents[1] / folder / name
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8"), str(checkout)
    return None
