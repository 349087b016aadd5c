"""The container map: which container owned an address or a published port at a given moment.

Sans-I/O: the Docker adapter (:class:`~eyes_devine.adapters.docker.DockerWatcher`) feeds it container
descriptions and event times; the pipeline asks it about each exchange and flow
(one implementation serves both).  It is
time-versioned because addresses are reused: when a container dies and its IP
passes to a new one, an exchange is attributed to whoever held the address at
the exchange's own time, never to the later owner and never, after the hand
over, to the earlier one.  Closed ownership intervals are kept for
``history_seconds`` so exchanges that complete late (a slow response, a queue)
still find who served them.

Not thread-safe: the caller serialises changes with lookups (one lock in the
pipeline), because both are cheap dictionary work.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from eyes_devine.records import Attribution, ContainerInfo, Exchange, Flow

Record = TypeVar("Record", Exchange, Flow)
MAX_SHARED_ATTRIBUTIONS = 4096
"""Pairs of ends whose Attribution is shared; past this the cache starts again (containers come and go)."""

WILDCARD_HOST_IPS = frozenset({"", "0.0.0.0", "::"})
"""A binding on every host address."""


@dataclass(slots=True)
class _Tenure:
    """One owner of one address (or published port) from ``start`` until ``end`` (None: still)."""

    info: ContainerInfo
    start: float
    end: float | None = None


class ContainerMap:
    """Address and published-port ownership over time, plus the containers running now."""

    def __init__(self, history_seconds: float = 600.0, host_addresses: Iterable[str] = ()) -> None:
        self.history_seconds = history_seconds
        self._running: dict[str, ContainerInfo] = {}
        self._tenures: dict[str | tuple[int, str], list[_Tenure]] = {}
        """An IP address, or (host port, host IP or "" for all), → its owners, oldest first."""
        self._gateways: set[str] = set()
        self._host_addresses: frozenset[str] = frozenset()
        self._attributions: dict[tuple[tuple[str, str] | None, tuple[str, str] | None], Attribution] = {}
        self.set_host_addresses(host_addresses)

    def set_host_addresses(self, addresses: Iterable[str]) -> None:
        """The host's own addresses: a request to one of them on a published port goes to a container."""
        self._host_addresses = frozenset(addresses)

    def __len__(self) -> int:
        return len(self._running)

    def current(self) -> list[ContainerInfo]:
        """The containers running now, by name."""
        return sorted(self._running.values(), key=lambda info: info.name)

    def follow_ports(self) -> frozenset[int]:
        """Every port a running container exposes or publishes, on either side of the mapping."""
        ports: set[int] = set()
        for info in self._running.values():
            ports.update(info.ports)
            ports.update(binding.host_port for binding in info.published)
        return frozenset(ports)

    # -- changes ------------------------------------------------------------------

    def replace_all(self, infos: Iterable[ContainerInfo], ts: float) -> None:
        """A fresh listing (at start, after a reconnect): anything not in it ended at ``ts``."""
        infos = list(infos)
        listed = {info.id for info in infos}
        for container_id in [cid for cid in self._running if cid not in listed]:
            self.remove(container_id, ts)
        for info in infos:
            self.upsert(info, ts)

    def upsert(self, info: ContainerInfo, ts: float) -> None:
        """A container started or changed (renamed, network connected or disconnected) at ``ts``."""
        previous = self._running.get(info.id)
        if previous == info:
            return
        self._running[info.id] = info
        self._gateways.update(info.gateways)
        if previous is not None:  # renamed, or networks changed: later exchanges see the new description
            for key in self._keys(previous):
                self._end(key, info.id, ts)
        for key in self._keys(info):
            self._begin(key, info, ts)
        self._prune(ts)

    def remove(self, container_id: str, ts: float) -> None:
        """A container died or was removed at ``ts``: its addresses and ports are free from then on."""
        previous = self._running.pop(container_id, None)
        if previous is None:
            return
        for key in self._keys(previous):
            self._end(key, container_id, ts)
        self._prune(ts)

    @staticmethod
    def _keys(info: ContainerInfo) -> list[str | tuple[int, str]]:
        keys: list[str | tuple[int, str]] = list(info.addresses)
        for binding in info.published:
            host_ip = "" if binding.host_ip in WILDCARD_HOST_IPS else binding.host_ip
            keys.append((binding.host_port, host_ip))
        return list(dict.fromkeys(keys))  # 0.0.0.0 and :: bindings of one port are one key

    def _begin(self, key: str | tuple[int, str], info: ContainerInfo, ts: float) -> None:
        tenures = self._tenures.setdefault(key, [])
        if tenures and tenures[-1].end is None:
            tenures[-1].end = ts  # the event that freed it was missed (daemon was away): hand over now
        # Start where the last owner left off: nothing else can have held the address in between,
        # and an exchange racing the start event still finds its server.
        start = tenures[-1].end if tenures else float("-inf")
        tenures.append(_Tenure(info, min(start, ts)))  # type: ignore[type-var]

    def _end(self, key: str | tuple[int, str], container_id: str, ts: float) -> None:
        tenures = self._tenures.get(key)
        if tenures and tenures[-1].end is None and tenures[-1].info.id == container_id:
            tenures[-1].end = ts

    def _prune(self, now: float) -> None:
        horizon = now - self.history_seconds
        for key in [key for key, tenures in self._tenures.items() if tenures[0].end is not None
                    and tenures[0].end < horizon]:
            kept = [tenure for tenure in self._tenures[key] if tenure.end is None or tenure.end >= horizon]
            if kept:
                self._tenures[key] = kept
            else:
                del self._tenures[key]

    # -- questions ----------------------------------------------------------------

    def describe(self, short_id: str) -> ContainerInfo | None:
        """The running container with this short id, else the latest one that held an address or port within the
        history (a removed container's late records are still described)."""
        for info in self._running.values():
            if info.id.startswith(short_id):
                return info
        for tenures in self._tenures.values():
            for tenure in reversed(tenures):
                if tenure.info.id.startswith(short_id):
                    return tenure.info
        return None

    def lookup(self, address: str, ts: float) -> ContainerInfo | None:
        """The container that held ``address`` at ``ts``."""
        return self._owner(address, ts)

    def _owner(self, key: str | tuple[int, str], ts: float) -> ContainerInfo | None:
        tenures = self._tenures.get(key)
        if not tenures:
            return None
        for tenure in reversed(tenures):
            if tenure.start <= ts:
                return tenure.info if tenure.end is None or ts < tenure.end else None
        return None

    def published_owner(self, server_ip: str, server_port: int, ts: float) -> ContainerInfo | None:
        """The container behind a published port, when ``server_ip`` is one of the host's own addresses."""
        if not self._is_host_address(server_ip):
            return None
        return self._owner((server_port, server_ip), ts) or self._owner((server_port, ""), ts)

    def _is_host_address(self, address: str) -> bool:
        if address in self._host_addresses or address in self._gateways:
            return True
        try:
            return ipaddress.ip_address(address).is_loopback
        except ValueError:
            return False

    def attribute(self, record: Record) -> Record:
        """The exchange or flow with the serving and calling containers as they were at its start."""
        ts = record[0]  # Exchange.ts, Flow.ts_first
        server = self._owner(record.server_ip, ts) or self.published_owner(record.server_ip, record.server_port, ts)
        client = self._owner(record.client_ip, ts)
        if server is None and client is None:
            return record
        return record._replace(attribution=self._attribution(server, client))

    def _attribution(self, server: ContainerInfo | None, client: ContainerInfo | None) -> Attribution:
        """One shared Attribution per pair of ends: a container's thousands of records hold the same object."""
        key = (server.id, server.name) if server else None, (client.id, client.name) if client else None
        attribution = self._attributions.get(key)
        if attribution is None:
            if len(self._attributions) >= MAX_SHARED_ATTRIBUTIONS:
                self._attributions.clear()
            attribution = self._attributions[key] = Attribution(
                container=server.name if server else None,
                client_container=client.name if client else None,
                container_id=server.short_id if server else None,
                client_container_id=client.short_id if client else None,
            )
        return attribution
