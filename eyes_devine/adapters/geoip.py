"""Where a public address is: country, city and coordinates from a MaxMind-format database (.mmdb).

Works with GeoLite2/GeoIP2 City and Country databases and others in their
shape (DB-IP Lite, for instance).  The file is memory-mapped by the maxminddb
library and never downloaded or updated here.  Callers cache answers per
address (see eyes_devine.enrich.intel), since the same peers come back again and again.
"""

from __future__ import annotations

from dataclasses import dataclass

import maxminddb


@dataclass(frozen=True, slots=True)
class Location:
    country: str | None
    """ISO 3166-1 alpha-2 code."""
    city: str | None
    """English city name (City databases only)."""
    latitude: float | None
    longitude: float | None


class GeoIPError(ValueError):
    """The database cannot be opened or is not a MaxMind DB; the message names the file and the fix."""


class GeoIP:
    """A read-only MaxMind DB; ``locate`` never raises for an address."""

    def __init__(self, path: str) -> None:
        try:
            self._reader = maxminddb.open_database(path)
        except FileNotFoundError:
            raise GeoIPError(f"GeoIP database {path}: no such file; give --geoip a GeoLite2-City.mmdb or "
                             "GeoLite2-Country.mmdb (free from MaxMind, or DB-IP Lite in .mmdb format)") from None
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else "not a MaxMind DB file"
            raise GeoIPError(f"GeoIP database {path}: {reason}; give --geoip a GeoLite2-City.mmdb or "
                             "GeoLite2-Country.mmdb (the .mmdb inside MaxMind's tar.gz, not the archive or a CSV "
                             "edition)") from None

    def locate(self, address: str) -> Location | None:
        """The address's location, or None when the database knows nothing about it."""
        try:
            record = self._reader.get(address)
        except ValueError:  # an IPv6 address in an IPv4-only database, or not an address
            return None
        if not isinstance(record, dict):
            return None
        country = record.get("country") or record.get("registered_country") or {}
        location = record.get("location") or {}
        found = Location(
            country=country.get("iso_code"),
            city=(record.get("city") or {}).get("names", {}).get("en"),
            latitude=location.get("latitude"),
            longitude=location.get("longitude"),
        )
        return None if found == Location(None, None, None, None) else found

    def close(self) -> None:
        self._reader.close()
