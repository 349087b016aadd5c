"""The scapy adapter for live capture: the only module (with pcapfile) that imports scapy."""

from __future__ import annotations

from dataclasses import dataclass

LINKTYPE_ETHERNET = 1


@dataclass(frozen=True, slots=True)
class CaptureReadiness:
    scapy_version: str | None
    libpcap: bool
    filter_ok: bool
    detail: str
    """The filter error, or what is missing and how to install it."""


def check_capture_readiness(bpf: str) -> CaptureReadiness:
    """Is scapy importable, is libpcap there to compile BPF, and does ``bpf`` compile?

    Compiling against a dead Ethernet handle needs no privileges, so a typo in
    a filter is reported before anyone runs as root.
    """
    try:
        import scapy
        from scapy.arch.common import compile_filter
        from scapy.error import Scapy_Exception
    except ImportError as error:
        return CaptureReadiness(None, False, False, f"scapy is not importable ({error}); reinstall eyes-devine")
    try:
        compile_filter(bpf, linktype=LINKTYPE_ETHERNET)
    except ImportError:
        return CaptureReadiness(
            scapy.VERSION, False, False,
            "libpcap not found: install it (Debian/Ubuntu: apt-get install libpcap0.8; macOS: built in; "
            "Windows: Npcap in WinPcap-compatible mode)",
        )
    except (Scapy_Exception, OSError) as error:
        return CaptureReadiness(scapy.VERSION, True, False, f"BPF filter does not compile: {error}")
    return CaptureReadiness(scapy.VERSION, True, True, "libpcap compiles the filter")
