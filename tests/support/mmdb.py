"""Write tiny MaxMind DB (.mmdb) files, so GeoIP tests need no download and no writer library.

Follows the MaxMind DB File Format Specification 2.0: a binary search tree over
the address bits (24-bit records), 16 zero bytes, the data section, then
``\\xab\\xcd\\xefMaxMind.com`` and the metadata map.  Only what tests need:
strings, doubles, unsigned integers, maps, arrays and booleans, written inline
(no pointers); networks must not overlap.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from pathlib import Path

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"
RECORD_BITS = 24


class Unsigned(int):
    """An unsigned integer of an exact data-format type (5 uint16, 6 uint32, 9 uint64), as metadata needs."""

    kind = 6


class UInt16(Unsigned):
    kind = 5


class UInt64(Unsigned):
    kind = 9


def encode(value: object) -> bytes:
    """One value in the MaxMind DB data format."""
    if isinstance(value, bool):
        return _control(14, int(value))
    if isinstance(value, str):
        raw = value.encode()
        return _control(2, len(raw)) + raw
    if isinstance(value, float):
        return _control(3, 8) + struct.pack(">d", value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError("negative integers are not needed by the tests")
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        kind = value.kind if isinstance(value, Unsigned) else 6 if value < 1 << 32 else 9
        return _control(kind, len(raw)) + raw
    if isinstance(value, dict):
        return _control(7, len(value)) + b"".join(encode(str(k)) + encode(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return _control(11, len(value)) + b"".join(encode(item) for item in value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _control(kind: int, size: int) -> bytes:
    """The control byte (type in the top 3 bits, size below), its size extension and extended type byte."""
    if size < 29:
        first, extra = size, b""
    elif size < 285:
        first, extra = 29, bytes([size - 29])
    elif size < 65821:
        first, extra = 30, (size - 285).to_bytes(2, "big")
    else:
        first, extra = 31, (size - 65821).to_bytes(3, "big")
    if kind <= 7:
        return bytes([(kind << 5) | first]) + extra
    return bytes([first, kind - 7]) + extra


def write_database(path: Path, records: dict[str, dict], database_type: str = "GeoLite2-City",
                   ip_version: int = 6) -> Path:
    """A database answering ``records`` ({"81.2.69.0/24": {...}}); IPv4 networks sit under ::/96 in IPv6 ones."""
    bits = 128 if ip_version == 6 else 32
    tree: list[list[object]] = [[None, None]]  # each record: None (no data), int (node) or bytes (data)
    for text, record in records.items():
        network = ipaddress.ip_network(text)
        if network.version == 6 and ip_version == 4:
            raise ValueError(f"{text}: an IPv4 database cannot hold IPv6 networks")
        address = int(network.network_address)  # ::a.b.c.d has the IPv4 address's value
        depth = bits - network.max_prefixlen + network.prefixlen
        node = 0
        for position in range(depth):
            bit = (address >> (bits - 1 - position)) & 1
            if position == depth - 1:
                tree[node][bit] = encode(record)
            else:
                if tree[node][bit] is None:
                    tree.append([None, None])
                    tree[node][bit] = len(tree) - 1
                node = tree[node][bit]
                assert isinstance(node, int), f"{text} overlaps another network"
    node_count = len(tree)
    data = bytearray()
    body = bytearray()
    for left_right in tree:
        for record in left_right:
            if record is None:
                value = node_count
            elif isinstance(record, int):
                value = record
            else:
                value = node_count + 16 + len(data)
                data += record
            body += value.to_bytes(RECORD_BITS // 8, "big")
    metadata = {
        "binary_format_major_version": UInt16(2),
        "binary_format_minor_version": UInt16(0),
        "build_epoch": UInt64(int(time.time())),
        "database_type": database_type,
        "description": {"en": "eyes-devine test database"},
        "ip_version": UInt16(ip_version),
        "languages": ["en"],
        "node_count": Unsigned(node_count),
        "record_size": UInt16(RECORD_BITS),
    }
    path.write_bytes(bytes(body) + bytes(16) + bytes(data) + METADATA_MARKER + encode(metadata))
    return path


def city_record(iso_code: str, country: str, city: str, latitude: float, longitude: float) -> dict:
    """The shape of a GeoLite2-City record (the parts eyes-devine reads, and a few it does not)."""
    return {
        "city": {"geoname_id": 2643743, "names": {"en": city}},
        "continent": {"code": "EU", "names": {"en": "Europe"}},
        "country": {"iso_code": iso_code, "names": {"en": country}},
        "location": {"accuracy_radius": 100, "latitude": latitude, "longitude": longitude,
                     "time_zone": "Europe/London"},
    }


def country_record(iso_code: str, country: str) -> dict:
    """The shape of a GeoLite2-Country record: no city, no location."""
    return {
        "continent": {"code": "EU", "names": {"en": "Europe"}},
        "country": {"iso_code": iso_code, "names": {"en": country}},
        "registered_country": {"iso_code": iso_code, "names": {"en": country}},
    }
