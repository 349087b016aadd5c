"""Frames built with scapy for the decoder and flow tests: every link type, IPv4 and IPv6 variants."""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, TCP, IPOption_Router_Alert
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.packet import Packet

from eyes_devine.core.decode import (
    LINKTYPE_DLT_RAW12,
    LINKTYPE_DLT_RAW14,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)

ALL_LINKTYPES = (
    LINKTYPE_NULL,
    LINKTYPE_ETHERNET,
    LINKTYPE_DLT_RAW12,
    LINKTYPE_DLT_RAW14,
    LINKTYPE_RAW,
    LINKTYPE_LOOP,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL2,
)
PAYLOAD = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n"


def v4(payload: bytes = PAYLOAD, **ip: object) -> Packet:
    return (
        IP(src="192.0.2.1", dst="198.51.100.7", **ip)
        / TCP(sport=41000, dport=8080, seq=1000, ack=2000, flags="PA", window=512)
        / payload
    )


def v6(*extensions: Packet, payload: bytes = PAYLOAD) -> Packet:
    packet: Packet = IPv6(src="2001:db8::1", dst="2001:db8::2")
    for extension in extensions:
        packet = packet / extension
    return packet / TCP(sport=41000, dport=8080, seq=1000, ack=2000, flags="PA", window=512) / payload


LINK_PREFIXES = {
    LINKTYPE_ETHERNET: bytes.fromhex("020000000002020000000001"),
    LINKTYPE_LINUX_SLL: bytes.fromhex("0000000100060200000000010000"),
    LINKTYPE_LINUX_SLL2: bytes.fromhex("0000"),
}



def valid_frame(linktype: int, ipv6: bool) -> bytes:
    """A frame of ``linktype`` carrying one IPv4 (or, where the link type allows, IPv6) TCP segment."""
    if linktype == LINKTYPE_IPV4:
        ipv6 = False
    elif linktype == LINKTYPE_IPV6:
        ipv6 = True
    ip = bytes(v6(IPv6ExtHdrDestOpt()) if ipv6 else v4(options=[IPOption_Router_Alert()]))
    ethertype = b"\x86\xdd" if ipv6 else b"\x08\x00"
    if linktype == LINKTYPE_ETHERNET:
        return LINK_PREFIXES[linktype] + b"\x81\x00\x00\x07" + ethertype + ip
    if linktype == LINKTYPE_LINUX_SLL:
        return LINK_PREFIXES[linktype] + ethertype + ip
    if linktype == LINKTYPE_LINUX_SLL2:
        return ethertype + bytes(18) + ip
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return struct.pack("<I", 30 if ipv6 else 2) + ip
    return ip
