"""Link layer → IPv4/IPv6 → TCP, one captured frame at a time, without I/O.

:func:`decoder_for` builds, for one pcap link type, a function turning a frame
into a :class:`~eyes_devine.records.Segment` or ``None``.  It never raises on bad
input: anything that is not a whole TCP segment over unfragmented IPv4/IPv6 is
counted and dropped.  Every frame handed in is counted in ``packets``/``bytes``;
IP fragments (we do not reassemble them) in ``ip_fragments``; everything else
that yields no segment (ARP, UDP, truncated or malformed frames) in
``undecodable``.

A frame cut short by the capture's snap length is dropped rather than delivered
with a short payload: a short payload would shift every later byte of the
stream, whereas a missing segment becomes a hole that TCP reassembly reports
as a gap.  An IP length of zero (what Linux shows for TSO/"BIG TCP" super
packets captured on the sending host) means "up to the end of the frame".

This is the hot path.  Ethernet, Linux cooked (SLL, SLL2) and raw IP frames
carrying a plain IPv4 header (no options, no fragment) are decoded with two
precompiled ``struct`` unpacks; every other shape takes the general path.

Flow summaries (``--all-traffic``) need UDP and ICMP too: given an
:data:`Observe` callback, :func:`decoder_for` returns instead a decoder that
walks every frame through the general path, shows each TCP, UDP, ICMP and
ICMPv6 packet to the callback, and still returns TCP segments (with the same
counts).  Without one, the fast path above is all there is.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from eyes_devine.records import EngineCounters, Segment

LINKTYPE_NULL = 0
"""BSD loopback: 4-byte address family in the capturing host's byte order."""
LINKTYPE_ETHERNET = 1
LINKTYPE_DLT_RAW12 = 12
"""DLT_RAW as written by some systems instead of LINKTYPE_RAW."""
LINKTYPE_DLT_RAW14 = 14
"""DLT_RAW on OpenBSD."""
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
"""OpenBSD loopback: 4-byte address family in network byte order."""
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

Decode = Callable[[bytes, float, str], Segment | None]
"""(frame, timestamp, interface name) → segment, or None when the frame carries no usable TCP."""

Observe = Callable[[float, str, int, bytes, bytes, int, int, int, int, bytes], None]
"""(timestamp, interface, IP protocol, source address, destination address, source port, destination port,
TCP flags, IP length, transport payload): one packet, for flow summaries.  ICMP and ICMPv6 have ports of 0
and their whole message (type, code, ...) as the payload; UDP and ICMP have flags of 0."""

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58


class UnsupportedLinkType(ValueError):
    """The capture's link type is not one we can decode."""


ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))
AF_INET = 2
AF_INET6 = frozenset((10, 23, 24, 28, 30))
"""Linux, Windows, NetBSD/OpenBSD, FreeBSD, macOS."""
IPV6_SKIPPABLE = frozenset((0, 43, 60))
"""Hop-by-hop, routing and destination options: length in 8-byte units after the first 8."""
_IPPROTO_TCP = IPPROTO_TCP
IPPROTO_FRAGMENT = 44
IPPROTO_AH = 51

_IPV4_FIELDS = "BxH2xHxB2x4s4s"
"""version/IHL, total length, flags/fragment offset, protocol, source, destination."""
IPV4 = struct.Struct("!" + _IPV4_FIELDS)
IPV6 = struct.Struct("!IHBx16s16s")
_TCP = struct.Struct("!HHIIBBH")
"""ports, seq, ack, data offset byte, flags, window."""
PORTS = struct.Struct("!HH")
_new = tuple.__new__
"""Builds a Segment from a tuple of its fields without the named tuple's Python-level constructor (half the
cost, once per packet)."""


def decoder_for(linktype: int, counters: EngineCounters, observe: Observe | None = None) -> Decode:
    """The decode function for one pcap link type, counting into ``counters``.

    With ``observe``, every TCP, UDP and ICMP packet is also shown to it (see the module docstring).
    """
    if observe is not None:
        from eyes_devine.core.observe import observing_decoder  # imports this module: not at the top

        return observing_decoder(linktype, counters, observe)
    if linktype == LINKTYPE_ETHERNET:
        return _framed(counters, "12xH", 14, _ethernet_general)
    if linktype == LINKTYPE_LINUX_SLL:
        return _framed(counters, "14xH", 16, _sll_general)
    if linktype == LINKTYPE_LINUX_SLL2:
        return _framed(counters, "H18x", 20, _sll2_general)
    if linktype in (LINKTYPE_RAW, LINKTYPE_DLT_RAW12, LINKTYPE_DLT_RAW14):
        return _raw(counters, _ip_by_version)
    if linktype == LINKTYPE_IPV4:
        return _raw(counters, _ipv4_at_0)
    if linktype == LINKTYPE_IPV6:
        return _guarded(counters, _ipv6_at_0)
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return _guarded(counters, _loopback)
    raise unsupported(linktype)


def unsupported(linktype: int) -> UnsupportedLinkType:
    return UnsupportedLinkType(
        f"unsupported link type {linktype}: eyes-devine decodes Ethernet (1), Linux cooked SLL (113) "
        "and SLL2 (276), raw IP (12, 14, 101, 228, 229) and BSD loopback (0, 108)"
    )


_General = Callable[[bytes, float, str, EngineCounters], Segment | None]


def _framed(counters: EngineCounters, link_fields: str, ip_off: int, general: _General) -> Decode:
    """A decoder for a link header carrying an EtherType, with the IPv4/TCP fast path inlined."""
    unpack_head = struct.Struct("!" + link_fields + _IPV4_FIELDS).unpack_from
    unpack_tcp = _TCP.unpack_from
    tcp_off = ip_off + 20

    def decode(frame: bytes, ts: float, interface: str) -> Segment | None:
        counters.packets += 1
        size = len(frame)
        counters.bytes += size
        try:
            ethertype, vihl, total, frag, proto, src, dst = unpack_head(frame, 0)
            if (
                ethertype == ETHERTYPE_IPV4
                and vihl == 0x45
                and proto == _IPPROTO_TCP
                and not frag & 0x3FFF
                and 40 <= total <= size - ip_off
            ):
                sport, dport, seq, ack, doff, flags, window = unpack_tcp(frame, tcp_off)
                start = tcp_off + ((doff >> 4) << 2)
                end = ip_off + total
                if doff >= 0x50 and start <= end:
                    return _new(Segment, (ts, interface, src, dst, sport, dport, seq, ack, flags, window,
                                          frame[start:end]))
            return general(frame, ts, interface, counters)
        except (struct.error, IndexError):
            counters.undecodable += 1
            return None

    return decode


def _raw(counters: EngineCounters, general: _General) -> Decode:
    """A decoder for frames that start with the IP header, with the IPv4/TCP fast path inlined."""
    unpack_ip = IPV4.unpack_from
    unpack_tcp = _TCP.unpack_from

    def decode(frame: bytes, ts: float, interface: str) -> Segment | None:
        counters.packets += 1
        size = len(frame)
        counters.bytes += size
        try:
            vihl, total, frag, proto, src, dst = unpack_ip(frame, 0)
            if vihl == 0x45 and proto == _IPPROTO_TCP and not frag & 0x3FFF and 40 <= total <= size:
                sport, dport, seq, ack, doff, flags, window = unpack_tcp(frame, 20)
                start = 20 + ((doff >> 4) << 2)
                if doff >= 0x50 and start <= total:
                    return _new(Segment, (ts, interface, src, dst, sport, dport, seq, ack, flags, window,
                                                   frame[start:total]))
            return general(frame, ts, interface, counters)
        except (struct.error, IndexError):
            counters.undecodable += 1
            return None

    return decode


def _guarded(counters: EngineCounters, general: _General) -> Decode:
    """A decoder with no IPv4 fast path."""

    def decode(frame: bytes, ts: float, interface: str) -> Segment | None:
        counters.packets += 1
        counters.bytes += len(frame)
        try:
            return general(frame, ts, interface, counters)
        except (struct.error, IndexError):
            counters.undecodable += 1
            return None

    return decode


# The general path.  These may raise struct.error/IndexError on short frames; the
# decoders above turn that into an ``undecodable`` count.


def _ethernet_general(frame: bytes, ts: float, interface: str, counters: EngineCounters) -> Segment | None:
    return _by_ethertype(frame, (frame[12] << 8) | frame[13], 14, ts, interface, counters)


def _sll_general(frame: bytes, ts: float, interface: str, counters: EngineCounters) -> Segment | None:
    return _by_ethertype(frame, (frame[14] << 8) | frame[15], 16, ts, interface, counters)


def _sll2_general(frame: bytes, ts: float, interface: str, counters: EngineCounters) -> Segment | None:
    return _by_ethertype(frame, (frame[0] << 8) | frame[1], 20, ts, interface, counters)


def _by_ethertype(
    frame: bytes, ethertype: int, off: int, ts: float, interface: str, counters: EngineCounters
) -> Segment | None:
    """Dispatch on an EtherType whose payload starts at ``off``, skipping (stacked) VLAN tags."""
    while ethertype in VLAN_TPIDS:
        ethertype = (frame[off + 2] << 8) | frame[off + 3]
        off += 4
    if ethertype == ETHERTYPE_IPV4:
        return _ipv4(frame, off, ts, interface, counters)
    if ethertype == ETHERTYPE_IPV6:
        return _ipv6(frame, off, ts, interface, counters)
    counters.undecodable += 1
    return None


def _loopback(frame: bytes, ts: float, interface: str, counters: EngineCounters) -> Segment | None:
    """NULL/LOOP: the address family is a small number, so its byte order shows in which end is zero."""
    family = int.from_bytes(frame[:4], "little")
    if family > 0xFF:
        family = int.from_bytes(frame[:4], "big")
    if family == AF_INET:
        return _ipv4(frame, 4, ts, interface, counters)
    if family in AF_INET6:
        return _ipv6(frame, 4, ts, interface, counters)
    counters.undecodable += 1
    return None


def _ip_by_version(frame: bytes, ts: float, interface: str, counters: EngineCounters) -> Segment | None:
    version = frame[0] >> 4
    if version == 4:
        return _ipv4(frame, 0, ts, interface, counters)
    if version == 6:
        return _ipv6(frame, 0, ts, interface, counters)
    counters.undecodable += 1
    return None


def _ipv4_at_0(frame: bytes, ts: float, interface: str, counters: EngineCounters) -> Segment | None:
    return _ipv4(frame, 0, ts, interface, counters)


def _ipv6_at_0(frame: bytes, ts: float, interface: str, counters: EngineCounters) -> Segment | None:
    return _ipv6(frame, 0, ts, interface, counters)


def _ipv4(frame: bytes, off: int, ts: float, interface: str, counters: EngineCounters) -> Segment | None:
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
    if proto != _IPPROTO_TCP:
        counters.undecodable += 1
        return None
    return tcp_segment(frame, off + header, off + total, src, dst, ts, interface, counters)


def _ipv6(frame: bytes, off: int, ts: float, interface: str, counters: EngineCounters) -> Segment | None:
    version_class_flow, length, next_header, src, dst = IPV6.unpack_from(frame, off)
    pos = off + 40
    end = pos + length if length else len(frame)
    if version_class_flow >> 28 != 6 or end > len(frame):
        counters.undecodable += 1
        return None
    while next_header != _IPPROTO_TCP:
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
            counters.undecodable += 1
            return None
        if pos > end:
            counters.undecodable += 1
            return None
    return tcp_segment(frame, pos, end, src, dst, ts, interface, counters)


def tcp_segment(
    frame: bytes, off: int, end: int, src: bytes, dst: bytes, ts: float, interface: str, counters: EngineCounters
) -> Segment | None:
    """The TCP header at ``off``; ``end`` (within the frame) is where the IP packet ends."""
    if end - off < 20:
        counters.undecodable += 1
        return None
    sport, dport, seq, ack, doff, flags, window = _TCP.unpack_from(frame, off)
    start = off + ((doff >> 4) << 2)
    if doff < 0x50 or start > end:
        counters.undecodable += 1
        return None
    return _new(Segment, (ts, interface, src, dst, sport, dport, seq, ack, flags, window, frame[start:end]))
