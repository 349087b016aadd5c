"""The committed captures under ``tests/pcaps/`` and what a test needs to know about them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.utils import PcapReader

PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
LAB_HTTP = PCAPS / "lab-http.pcap"
"""Every HTTP/1.x scenario of tests.support.scenarios.record_http_lab: nginx on 80, an http.server peer on 8080."""
LAB_FLOWS = PCAPS / "lab-flows.pcap"
"""DNS, TLS, SSH, FTP, ICMP and HTTP on 8000 between two namespaces (record_flows_lab)."""


@dataclass(frozen=True)
class LabCapture:
    path: Path
    server_ip: str
    client_ip: str


def lab_capture(path: Path) -> LabCapture:
    """The capture with its two hosts, read from its first SYN (they change when it is recorded again)."""
    with PcapReader(str(path)) as packets:
        for packet in packets:
            if TCP in packet and packet[TCP].flags == "S":
                return LabCapture(path, packet[IP].dst, packet[IP].src)
    raise ValueError(f"{path} has no SYN")
