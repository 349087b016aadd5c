"""Thin wrappers around one outside thing each: capture sockets, capture files, the Docker Engine, the host,
GeoIP, AbuseIPDB, blocklist files, the database.  An adapter knows records, never the core or another adapter."""
