"""Missing components: skipped on a developer's machine, a failure in CI.

A Docker or capture test that silently skips in CI proves nothing, so under
CI=true every missing piece is a test failure naming what to install.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"required test component missing in CI: {what}", pytrace=False)
    pytest.skip(f"needs {what}")


def require_root() -> None:
    if os.geteuid() != 0:
        missing("root (network namespaces, capture)")


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"{name} (Debian package {package})")
    return path
