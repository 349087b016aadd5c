"""IP blocklists: plain lines, FireHOL netsets and Spamhaus DROP, looked up in logarithmic time.

All three formats are one IP address or CIDR network per line with comments;
they differ only in comment style, which :func:`parse` accepts together:

    # plain or FireHOL:   203.0.113.7        198.51.100.0/24    2001:db8::/32
    ; Spamhaus DROP:      1.10.16.0/20 ; SBL256894
    Spamhaus DROP JSON:   {"cidr": "1.10.16.0/20", "sblid": "SBL256894", "rir": "apnic"}

Networks are held as merged, sorted integer ranges per IP version, so a lookup
is one ``bisect`` whatever the list's size (FireHOL level1 has ~4,500 networks,
some lists hundreds of thousands).
"""

from __future__ import annotations

import bisect
import ipaddress
import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

BUILTIN_NAME = "builtin"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlocklistError(ValueError):
    """A blocklist file is missing or holds a line that is not an address; the message names file and line."""


def parse(lines: Iterable[str], source: str) -> list[IPNetwork]:
    """The networks on ``lines``; ``source`` names the file in errors."""
    networks: list[IPNetwork] = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if line.startswith("{"):
            entry = _json_entry(line, source, number)
            if entry is None:
                continue
            line = entry
        else:
            line = line.split("#", 1)[0].split(";", 1)[0].strip()
            if not line:
                continue
        try:
            networks.append(ipaddress.ip_network(line, strict=False))
        except ValueError:
            raise BlocklistError(f"blocklist {source} line {number}: {line[:60]!r} is not an IP address or CIDR "
                                 "network; give a plain, FireHOL (.netset/.ipset) or Spamhaus DROP list") from None
    return networks


def _json_entry(line: str, source: str, number: int) -> str | None:
    """The ``cidr`` of a Spamhaus DROP JSON line; None for its closing metadata line."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        raise BlocklistError(f"blocklist {source} line {number}: not valid JSON") from None
    if not isinstance(entry, dict) or entry.get("type") == "metadata":
        return None
    cidr = entry.get("cidr")
    if not isinstance(cidr, str):
        raise BlocklistError(f"blocklist {source} line {number}: a JSON line without a \"cidr\" (Spamhaus DROP JSON)")
    return cidr


class Blocklist:
    """One named list; ``address in blocklist`` for an ``ipaddress`` address."""

    def __init__(self, name: str, networks: Iterable[IPNetwork]) -> None:
        self.name = name
        self.entries = 0
        ranges: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for network in networks:
            ranges[network.version].append((int(network.network_address), int(network.broadcast_address)))
            self.entries += 1
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for version, spans in ranges.items():
            merged = _merge(spans)
            self._starts[version] = [start for start, _ in merged]
            self._ends[version] = [end for _, end in merged]

    @classmethod
    def from_file(cls, path: str) -> Blocklist:
        """A list named after the file (``drop.txt`` gives verdicts ``blocklist:drop``)."""
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            raise BlocklistError(f"blocklist {path}: {error.strerror or error}; give --blocklist a readable file of "
                                 "IPs/CIDRs (plain, FireHOL or Spamhaus DROP)") from None
        return cls(Path(path).stem, parse(text.splitlines(), path))

    @classmethod
    def builtin(cls) -> Blocklist:
        """The list shipped in the package (eyes_devine/data/blocklist.txt, which says what it holds and why)."""
        text = resources.files("eyes_devine").joinpath("data", "blocklist.txt").read_text(encoding="utf-8")
        return cls(BUILTIN_NAME, parse(text.splitlines(), "builtin"))

    def __contains__(self, address: IPAddress) -> bool:
        value = int(address)
        starts = self._starts[address.version]
        index = bisect.bisect_right(starts, value) - 1
        return index >= 0 and value <= self._ends[address.version][index]

    def __len__(self) -> int:
        return self.entries


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping and touching ranges joined, in order."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 1:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
