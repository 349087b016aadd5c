"""Stages that map a record to a record after the core: attribution to containers, rules, GeoIP, reputation.

Each stage is cheap and never blocks: what is slow (a web API) runs on the
stage's own thread and the stage only reads what that thread has learned.
Lookup adapters (GeoIP, blocklists, AbuseIPDB) may be used here.
"""
