"""Where the public end of an exchange is, and whether it is known to be hostile.

The *public end* is the client when its address is public (an inbound request
from the Internet), else the server when its address is public (a container
calling out), else nothing: traffic between containers, private networks and
loopback is never looked up.  Multicast counts as not public.

Per address, what never changes while we run (location, blocklist verdict) is
computed once and kept in an LRU cache; the AbuseIPDB verdict is read from its
client's cache on every call, since the worker thread fills it in later.
Reputation order: the first blocklist that holds the address, else AbuseIPDB.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from eyes_devine.adapters.abuseipdb import AbuseIPDB
from eyes_devine.adapters.blocklist import Blocklist
from eyes_devine.adapters.geoip import GeoIP, Location
from eyes_devine.config import Settings
from eyes_devine.records import NO_PEER, Exchange, Flow, Peer

_Record = TypeVar("_Record", Exchange, Flow)
"""Exchanges and flow summaries share the address and geo/reputation field names."""

CACHE_SIZE = 16384
"""Addresses whose public-ness, location and blocklist verdict are remembered."""


@dataclass(frozen=True, slots=True)
class _Static:
    location: Location | None
    blocklisted: str | None
    peer: Peer
    """What the location and blocklist alone say (shared by every record of this address)."""


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and not address.is_multicast


class Intel:
    """The GeoIP and reputation stage; also answers :meth:`about` for any address (flows, views)."""

    def __init__(self, geoip: GeoIP | None, blocklists: list[Blocklist], abuseipdb: AbuseIPDB | None,
                 cache_size: int = CACHE_SIZE) -> None:
        self._geoip = geoip
        self._blocklists = blocklists
        self._abuseipdb = abuseipdb
        self._static = functools.lru_cache(maxsize=cache_size)(self._look_up)

    def about(self, address: str) -> Peer | None:
        """Location and reputation of a public address; None for one that is not public (or not an address)."""
        static = self._static(address)
        if static is None:
            return None
        reputation = static.blocklisted
        if reputation is None and self._abuseipdb is not None:
            reputation = self._abuseipdb.verdict(address)
        if reputation is None:
            return static.peer
        location = static.location or Location(None, None, None, None)
        return Peer(location.country, location.city, location.latitude, location.longitude, reputation)

    def __call__(self, exchange: Exchange) -> Exchange:
        return self._annotated(exchange)

    def flow(self, flow: Flow) -> Flow:
        """The same fields on a flow summary (its public end chosen the same way)."""
        return self._annotated(flow)

    def _annotated(self, record: _Record) -> _Record:
        peer = self.about(record.client_ip) or self.about(record.server_ip)
        if peer is None or peer == NO_PEER:
            return record
        return record._replace(peer=peer)

    def close(self) -> None:
        if self._abuseipdb is not None:
            self._abuseipdb.close()
        if self._geoip is not None:
            self._geoip.close()

    def _look_up(self, text: str) -> _Static | None:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return None
        if not is_public(address):
            return None
        listed = next((blocklist.name for blocklist in self._blocklists if address in blocklist), None)
        location = self._geoip.locate(text) if self._geoip is not None else None
        blocklisted = f"blocklist:{listed}" if listed is not None else None
        if location is None and blocklisted is None:
            return _Static(None, None, NO_PEER)
        known = location or Location(None, None, None, None)
        return _Static(location, blocklisted,
                       Peer(known.country, known.city, known.latitude, known.longitude, blocklisted))


def open_intel(settings: Settings, log: Callable[[str], None]) -> Intel:
    """The stage as configured; raises GeoIPError or BlocklistError for an unusable file, before any thread starts."""
    blocklists = [Blocklist.builtin(), *(Blocklist.from_file(path) for path in settings.blocklists)]
    geoip = GeoIP(settings.geoip_path) if settings.geoip_path else None
    abuseipdb = AbuseIPDB(settings.abuseipdb_key, settings.abuseipdb_url, log) if settings.abuseipdb_key else None
    return Intel(geoip, blocklists, abuseipdb)
