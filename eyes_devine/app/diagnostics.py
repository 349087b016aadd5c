"""Everything `eyes-devine interfaces` reports, gathered once into plain data.

Each probe turns its failure into a line with the fix; nothing here raises for
a missing privilege, library or daemon, because this is the command people run
when capture does not work.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import asdict, dataclass

from eyes_devine import __version__
from eyes_devine.adapters.capture import check_capture_readiness
from eyes_devine.adapters.docker import bridge_networks, connect, container_veths
from eyes_devine.adapters.host import check_privileges, read_host_interfaces
from eyes_devine.app.discovery import Discovery, discover
from eyes_devine.app.profiles import Profile, load_profile
from eyes_devine.config import Settings, bpf_filter


@dataclass(frozen=True, slots=True)
class Report:
    discovery: Discovery
    diagnostics: dict[str, object]

    def to_dict(self) -> dict[str, object]:
        return {
            "interfaces": [row.to_dict() for row in self.discovery.interfaces],
            "diagnostics": self.diagnostics,
        }


def gather(settings: Settings, profile: Profile | None = None) -> Report:
    """Probe the host. Raises ProfileError or UnknownInterfaceError for bad input only."""
    profile = profile or load_profile(path=settings.profile_path)
    client, docker_status = connect(settings.docker_environment)
    networks = bridge_networks(client) if client is not None else {}
    veths = container_veths(client) if client is not None else {}
    if client is not None:
        client.close()
    found = discover(read_host_interfaces(), profile, settings.interfaces, settings.interfaces_source, networks,
                     veths)
    bpf = bpf_filter(settings)
    readiness = check_capture_readiness(bpf)
    privileges = check_privileges()
    diagnostics: dict[str, object] = {
        "eyes_devine": __version__,
        "os": profile.os,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "profile": profile.source,
        "selection": {"mode": found.mode, "selected": list(found.selected), "hint": found.hint},
        "capture": {
            "ready": readiness.filter_ok and privileges.can_capture,
            "filter": bpf,
            "filter_source": "CAPTURE_FILTER" if settings.capture_filter else "ports",
            **asdict(readiness),
        },
        "privileges": asdict(privileges),
        "docker": asdict(docker_status),
    }
    return Report(found, diagnostics)


class FilterError(ValueError):
    """The capture filter does not compile (or libpcap is missing); the message says which and how to fix it."""


def capture_selection(settings: Settings, profile: Profile | None = None) -> Discovery:
    """The interfaces `run` and `watch` capture: what `interfaces` selects, without its per-container probes.

    Raises ProfileError or UnknownInterfaceError for bad input, FilterError for a filter that cannot work.
    """
    profile = profile or load_profile(path=settings.profile_path)
    readiness = check_capture_readiness(bpf_filter(settings))
    if not readiness.filter_ok:
        raise FilterError(readiness.detail)
    client, _status = connect(settings.docker_environment)
    networks = bridge_networks(client) if client is not None else {}
    if client is not None:
        client.close()
    return discover(read_host_interfaces(), profile, settings.interfaces, settings.interfaces_source, networks)
