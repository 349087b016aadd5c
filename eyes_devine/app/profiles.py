"""Per-OS interface profiles: which names mean what, and what to capture by default.

The profiles are data (``interfaces/*.toml`` at the top of the repository) so
people can read and extend them without touching code.  A wheel carries them as
``eyes_devine/profiles/``; a source checkout or editable install reads the
top-level folder.  A user's own file can replace the built-in one.
"""

from __future__ import annotations

import fnmatch
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from eyes_devine.packaged import packaged_text

KINDS: dict[str, str] = {
    "docker_bridge": "Docker default bridge",
    "docker_network": "Docker user-defined bridge",
    "container_veth": "container veth",
    "docker_vm_adapter": "Docker Desktop VM adapter",
    "podman_bridge": "Podman bridge",
    "cni_bridge": "Kubernetes CNI bridge",
    "cni_veth": "Kubernetes pod link",
    "cni_overlay": "Kubernetes overlay",
    "vm_adapter": "VM / virtual adapter",
    "physical": "physical",
    "loopback": "loopback",
    "tunnel": "tunnel",
    "other": "other",
}
"""Every kind a profile may name, with how it is described to people."""

OS_NAMES = ("linux", "darwin", "windows")


class ProfileError(ValueError):
    """A profile file is missing or malformed; the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class Pattern:
    glob: str
    kind: str
    label: str


@dataclass(frozen=True, slots=True)
class Profile:
    os: str
    source: str
    """Where the profile was read from, for diagnostics."""
    patterns: tuple[Pattern, ...]
    bridge_kinds: frozenset[str]
    veth_kinds: frozenset[str]
    fallback: tuple[str, ...]
    case_insensitive: bool

    def classify(self, name: str) -> Pattern | None:
        """The first pattern matching ``name``, or None."""
        key = name.lower() if self.case_insensitive else name
        for pattern in self.patterns:
            glob = pattern.glob.lower() if self.case_insensitive else pattern.glob
            if fnmatch.fnmatchcase(key, glob):
                return pattern
        return None


def current_os() -> str:
    """The profile name for the running OS."""
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "darwin"
    if sys.platform in ("win32", "cygwin"):
        return "windows"
    return "linux"


def load_profile(os_name: str | None = None, path: str | Path | None = None) -> Profile:
    """Load the built-in profile for ``os_name`` (default: this OS), or the file at ``path``."""
    if path is not None:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as error:
            raise ProfileError(f"cannot read interface profile {file}: {error.strerror}") from None
        return parse_profile(text, str(file))
    os_name = os_name or current_os()
    if os_name not in OS_NAMES:
        raise ProfileError(f"no built-in interface profile for {os_name!r}; known: {', '.join(OS_NAMES)}")
    text, source = _builtin_text(os_name)
    return parse_profile(text, source)


def _builtin_text(os_name: str) -> tuple[str, str]:
    found = packaged_text("interfaces", "profiles", f"{os_name}.toml")
    if found is None:
        raise ProfileError(f"built-in interface profile {os_name}.toml is missing from this install; reinstall "
                           "eyes-devine")
    return found


def parse_profile(text: str, source: str) -> Profile:
    """Parse and validate a profile, so a typo fails at load with its location, not later."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"{source}: not valid TOML: {error}") from None
    os_name = data.get("os")
    if os_name not in OS_NAMES:
        raise ProfileError(f"{source}: 'os' must be one of {', '.join(OS_NAMES)}, got {os_name!r}")
    selection = data.get("selection", {})
    if not isinstance(selection, dict):
        raise ProfileError(f"{source}: [selection] must be a table")
    patterns = []
    for index, entry in enumerate(data.get("pattern", [])):
        where = f"{source}: pattern #{index + 1}"
        if not isinstance(entry, dict) or not isinstance(entry.get("glob"), str) or not entry["glob"]:
            raise ProfileError(f"{where}: needs a non-empty 'glob'")
        kind = entry.get("kind")
        if kind not in KINDS:
            raise ProfileError(f"{where}: unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
        patterns.append(Pattern(entry["glob"], kind, str(entry.get("label") or KINDS[kind])))
    bridge_kinds = _kind_list(selection, "bridges", source)
    veth_kinds = _kind_list(selection, "veths", source)
    fallback = selection.get("fallback", [])
    if not isinstance(fallback, list) or not all(isinstance(name, str) for name in fallback):
        raise ProfileError(f"{source}: selection.fallback must be a list of interface names")
    return Profile(
        os=os_name,
        source=source,
        patterns=tuple(patterns),
        bridge_kinds=bridge_kinds,
        veth_kinds=veth_kinds,
        fallback=tuple(fallback),
        case_insensitive=os_name == "windows",
    )


def _kind_list(selection: dict, key: str, source: str) -> frozenset[str]:
    kinds = selection.get(key, [])
    if not isinstance(kinds, list):
        raise ProfileError(f"{source}: selection.{key} must be a list of kinds")
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise ProfileError(f"{source}: selection.{key} names unknown kinds {unknown}; known kinds: {', '.join(KINDS)}")
    return frozenset(kinds)
