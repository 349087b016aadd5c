"""Find the host's interfaces, say what each one is, and choose what to capture.

All OS inputs arrive as a list of :class:`~eyes_devine.adapters.host.HostInterface` values (read by
:func:`~eyes_devine.adapters.host.read_host_interfaces` from psutil and, on Linux, /sys), so the rules in
:func:`discover` run the same on recorded macOS and Windows interface lists as
on the live host.

Default selection: every Docker-like bridge of the profile, plus container
veths that are not enslaved to a selected bridge (a packet on a bridge port is
also seen on the bridge; capturing both only costs CPU).  Only when nothing
Docker-like exists do we fall back to the profile's common defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from eyes_devine.adapters.host import HostInterface
from eyes_devine.app.profiles import Profile

ANY_INTERFACE = "any"
"""`-i any` (Linux), as tcpdump and ThreatWatch's NETWORK_INTERFACE=any say it: every interface at once."""


class UnknownInterfaceError(ValueError):
    """An interface was asked for by name and does not exist here."""


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    """One interface with what eyes-devine makes of it: the rows of `eyes-devine interfaces`."""

    name: str
    kind: str
    label: str
    up: bool
    mtu: int
    addresses: tuple[str, ...]
    master: str | None
    docker_network: str | None
    selected: bool
    reason: str
    container: str | None = None
    """For a container veth (Linux): the container at its other end."""

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "label": self.label,
            "selected": self.selected,
            "reason": self.reason,
            "up": self.up,
            "mtu": self.mtu,
            "addresses": list(self.addresses),
            "master": self.master,
            "docker_network": self.docker_network,
            "container": self.container,
        }


@dataclass(frozen=True, slots=True)
class Discovery:
    interfaces: tuple[InterfaceInfo, ...]
    mode: str
    """"requested" (by -i or NETWORK_INTERFACES), "docker", "fallback" or "none"."""
    hint: str | None = None
    """What to set when the choice is a guess or empty."""
    selected: tuple[str, ...] = field(default=())


DOCKER_KINDS_NOTE = "not a container interface"


def discover(
    host_interfaces: Iterable[HostInterface],
    profile: Profile,
    requested: tuple[str, ...] | None = None,
    requested_source: str | None = None,
    docker_networks: Mapping[str, str] | None = None,
    container_veths: Mapping[str, str] | None = None,
) -> Discovery:
    """Classify every interface and choose the ones to capture.

    ``docker_networks`` maps bridge names to Docker network names (from the
    Docker API, when reachable); a bridge Docker names is a Docker bridge even
    when its name matches no pattern (``com.docker.network.bridge.name``).
    ``container_veths`` maps host veth names to container names (Linux, from
    the Docker API). Raises :class:`UnknownInterfaceError` when a requested
    name does not exist.
    """
    docker_networks = docker_networks or {}
    container_veths = container_veths or {}
    hosts = list(host_interfaces)
    if requested and ANY_INTERFACE in requested and profile.os == "linux" and \
            all(host.name != ANY_INTERFACE for host in hosts):
        hosts.append(HostInterface(ANY_INTERFACE, True, 65536))  # Linux's every-interface capture
    classified = [(host, *_classify(host.name, profile, docker_networks)) for host in hosts]

    if requested:
        by_name = {host.name: host for host in hosts}
        if profile.case_insensitive:
            by_name.update({host.name.lower(): host for host in hosts})
        missing = [name for name in requested if _lookup(by_name, name, profile) is None]
        if missing:
            known = ", ".join(host.name for host in hosts) or "none"
            plural = "s" if len(missing) > 1 else ""
            raise UnknownInterfaceError(
                f"unknown interface{plural} {', '.join(repr(n) for n in missing)} "
                f"(from {requested_source or 'the command line'}); interfaces here: {known}"
            )
        chosen = {_lookup(by_name, name, profile).name for name in requested}  # type: ignore[union-attr]
        source = requested_source or "-i"
        rows = [
            _row(host, kind, label, docker_networks, host.name in chosen,
                 f"chosen by {source}" if host.name in chosen else f"not in {source}")
            for host, kind, label in classified
        ]
        rows = [replace(row, container=container_veths.get(row.name)) for row in rows]
        ordered = tuple(_lookup(by_name, name, profile).name for name in requested)  # type: ignore[union-attr]
        return Discovery(tuple(rows), "requested", None, tuple(dict.fromkeys(ordered)))

    bridges = {host.name for host, kind, _ in classified if kind in profile.bridge_kinds}
    rows = []
    for host, kind, label in classified:
        if kind in profile.bridge_kinds:
            selected, reason = True, label
        elif kind in profile.veth_kinds:
            if host.master and host.master in bridges:
                selected, reason = False, f"seen on bridge {host.master}, captured there"
            else:
                selected, reason = True, f"{label} not on a captured bridge"
        else:
            selected, reason = False, DOCKER_KINDS_NOTE
        rows.append(_row(host, kind, label, docker_networks, selected, reason))
    rows = [replace(row, container=container_veths.get(row.name)) for row in rows]
    if any(row.selected for row in rows):
        return Discovery(tuple(rows), "docker", None, tuple(row.name for row in rows if row.selected))
    return _fallback(rows, profile)


def _fallback(rows: list[InterfaceInfo], profile: Profile) -> Discovery:
    """Nothing Docker-like here: take the first common default that exists, and say how to choose."""
    names = {row.name for row in rows}
    every = ", ".join(row.name for row in rows) or "none"
    choice = next((name for name in profile.fallback if name in names), None)
    if choice is None:
        hint = (
            f"No Docker interfaces found and none of the common defaults ({', '.join(profile.fallback)}) exist. "
            f"Set NETWORK_INTERFACES to one or more of: {every}"
        )
        rows = [replace(row, selected=False, reason="no Docker interfaces found") for row in rows]
        return Discovery(tuple(rows), "none", hint, ())
    hint = (
        f"No Docker interfaces found; capturing the common default {choice}. "
        f"To choose, set NETWORK_INTERFACES to one or more of: {every}"
    )
    rows = [
        replace(row, selected=True, reason="fallback: common default, no Docker interfaces found")
        if row.name == choice
        else replace(row, selected=False, reason="no Docker interfaces found")
        for row in rows
    ]
    return Discovery(tuple(rows), "fallback", hint, (choice,))


def _classify(name: str, profile: Profile, docker_networks: Mapping[str, str]) -> tuple[str, str]:
    pattern = profile.classify(name)
    if name in docker_networks and (pattern is None or pattern.kind not in profile.bridge_kinds):
        return "docker_network", "Docker network bridge"
    if pattern is None:
        return "other", "other"
    return pattern.kind, pattern.label


def _lookup(by_name: dict[str, HostInterface], name: str, profile: Profile) -> HostInterface | None:
    return by_name.get(name) or (by_name.get(name.lower()) if profile.case_insensitive else None)


def _row(
    host: HostInterface, kind: str, label: str, docker_networks: Mapping[str, str], selected: bool, reason: str
) -> InterfaceInfo:
    return InterfaceInfo(
        name=host.name,
        kind=kind,
        label=label,
        up=host.up,
        mtu=host.mtu,
        addresses=host.addresses,
        master=host.master,
        docker_network=docker_networks.get(host.name),
        selected=selected,
        reason=reason,
    )

