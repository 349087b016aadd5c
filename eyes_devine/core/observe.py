"""The decoder for flow summaries (``--all-traffic``): every frame through the general path, every transport shown.

Every TCP, UDP, ICMP and ICMPv6 packet goes to the :data:`~eyes_devine.core.decode.Observe`
callback, and TCP segments are still returned, with the same counts as
:mod:`eyes_devine.core.decode`'s fast path.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from eyes_devine.core.decode import (
    AF_INET,
    AF_INET6,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    IPPROTO_AH,
    IPPROTO_FRAGMENT,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV4,
    IPV6,
    IPV6_SKIPPABLE,
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
    PORTS,
    VLAN_TPIDS,
    Decode,
    Observe,
    tcp_segment,
    unsupported,
)
from eyes_devine.records import EngineCounters, Segment

_Packet = tuple[int, bytes, bytes, int, int]
"""An IP packet's transport protocol, source, destination, and where its transport header starts and it ends."""


def _ipv4_packet(frame: bytes, off: int, counters: EngineCounters) -> _Packet | None:
    """:func:`_ipv4` for the observing path, for any transport (kept apart: the TCP-only path builds no tuple)."""
    vihl, total, frag, proto, src, dst = IPV4.unpack_from(frame, off)
    header = (vihl & 0x0F) << 2
    available = len(frame) - off
    if total == 0:
        total = available
    if vihl >> 4 != 4 or header < 20 or not header <= total <= available:
        counters.undecodable += 1
        return None
    if frag & 0x3FFF:
        counters.ip_fragments += 1
        return None
    return proto, src, dst, off + header, off + total


def _ipv6_packet(frame: bytes, off: int, counters: EngineCounters) -> _Packet | None:
    """:func:`_ipv6` for the observing path, for any transport: the header chain walked as there."""
    version_class_flow, length, next_header, src, dst = IPV6.unpack_from(frame, off)
    pos = off + 40
    end = pos + length if length else len(frame)
    if version_class_flow >> 28 != 6 or end > len(frame):
        counters.undecodable += 1
        return None
    while True:
        if next_header in IPV6_SKIPPABLE:
            next_header, pos = frame[pos], pos + ((frame[pos + 1] + 1) << 3)
        elif next_header == IPPROTO_FRAGMENT:
            if ((frame[pos + 2] << 8) | frame[pos + 3]) & 0xFFF9:
                counters.ip_fragments += 1
                return None
            next_header, pos = frame[pos], pos + 8  # an atomic fragment is a whole packet
        elif next_header == IPPROTO_AH:
            next_header, pos = frame[pos], pos + ((frame[pos + 1] + 2) << 2)
        else:
            return next_header, src, dst, pos, end
        if pos > end:
            counters.undecodable += 1
            return None


_Locate = Callable[[bytes], int]
"""Where a frame's IP header starts, or -1 when the frame carries no IP."""


def _ip_locator(linktype: int) -> _Locate:
    if linktype == LINKTYPE_ETHERNET:
        return lambda frame: _after_ethertype(frame, (frame[12] << 8) | frame[13], 14)
    if linktype == LINKTYPE_LINUX_SLL:
        return lambda frame: _after_ethertype(frame, (frame[14] << 8) | frame[15], 16)
    if linktype == LINKTYPE_LINUX_SLL2:
        return lambda frame: _after_ethertype(frame, (frame[0] << 8) | frame[1], 20)
    if linktype in (LINKTYPE_RAW, LINKTYPE_DLT_RAW12, LINKTYPE_DLT_RAW14):
        return lambda frame: 0
    if linktype == LINKTYPE_IPV4:  # the link type fixes the version, as for the plain decoder
        return lambda frame: 0 if frame[0] >> 4 == 4 else -1
    if linktype == LINKTYPE_IPV6:
        return lambda frame: 0 if frame[0] >> 4 == 6 else -1
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return _after_loopback
    raise unsupported(linktype)


def _after_ethertype(frame: bytes, ethertype: int, off: int) -> int:
    while ethertype in VLAN_TPIDS:
        ethertype = (frame[off + 2] << 8) | frame[off + 3]
        off += 4
    return off if ethertype in (ETHERTYPE_IPV4, ETHERTYPE_IPV6) else -1


def _after_loopback(frame: bytes) -> int:
    """As the plain decoder: the family names the IP version, and a packet of the other version is not read."""
    family = int.from_bytes(frame[:4], "little")
    if family > 0xFF:
        family = int.from_bytes(frame[:4], "big")
    version = 4 if family == AF_INET else 6 if family in AF_INET6 else 0
    return 4 if version and len(frame) > 4 and frame[4] >> 4 == version else -1


def observing_decoder(linktype: int, counters: EngineCounters, observe: Observe) -> Decode:
    """A decoder showing every TCP, UDP and ICMP packet to ``observe`` and returning TCP segments as usual."""
    locate = _ip_locator(linktype)
    unpack_ports = PORTS.unpack_from

    def decode(frame: bytes, ts: float, interface: str) -> Segment | None:
        counters.packets += 1
        counters.bytes += len(frame)
        try:
            off = locate(frame)
            version = frame[off] >> 4 if off >= 0 else 0
            if version == 4:
                packet = _ipv4_packet(frame, off, counters)
            elif version == 6:
                packet = _ipv6_packet(frame, off, counters)
            else:
                counters.undecodable += 1
                return None
            if packet is None:
                return None
            proto, src, dst, start, end = packet
            if proto == IPPROTO_TCP:
                segment = tcp_segment(frame, start, end, src, dst, ts, interface, counters)
                if segment is not None:
                    observe(ts, interface, proto, src, dst, segment.src_port, segment.dst_port, segment.flags,
                            end - off, segment.payload)
                return segment
            counters.undecodable += 1  # as without an observer: "not TCP"
            if proto == IPPROTO_UDP:
                if end - start >= 8:
                    sport, dport = unpack_ports(frame, start)
                    observe(ts, interface, proto, src, dst, sport, dport, 0, end - off, frame[start + 8 : end])
            elif proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6:
                observe(ts, interface, proto, src, dst, 0, 0, 0, end - off, frame[start:end])
            return None
        except (struct.error, IndexError):
            counters.undecodable += 1
            return None

    return decode
