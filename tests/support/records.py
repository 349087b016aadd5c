"""Records built for tests: exchanges and flows of a few made-up containers, from flat field names."""

from __future__ import annotations

from collections.abc import Mapping

from eyes_devine.records import (
    ATTRIBUTION_FIELDS,
    NO_ATTRIBUTION,
    NO_PEER,
    PEER_FIELDS,
    Attribution,
    Exchange,
    Flow,
    Peer,
)
from eyes_devine.sinks import NO_LOSSES, SinkCounters

WEB = "a1b2c3d4e5f6"
API = "0b0b0b0b0b0b"
WORKER = "c0ffee000001"
T0 = 1_714_564_800.0  # 2024-05-01 12:00:00 UTC


def with_fields(record: Exchange | Flow, **flat: object) -> Exchange | Flow:
    """``record`` with fields changed by their flat names (``container=`` goes into the attribution, ``country=``
    into the peer), as the storage columns and --json keys name them."""
    attribution = {name: flat.pop(name) for name in ATTRIBUTION_FIELDS if name in flat}
    peer = {name: flat.pop(name) for name in PEER_FIELDS if name in flat}
    if attribution:
        current = record.attribution if record.attribution is not NO_ATTRIBUTION else Attribution()
        flat["attribution"] = Attribution(**{**_as_dict(current, ATTRIBUTION_FIELDS), **attribution})
    if peer:
        current = record.peer if record.peer is not NO_PEER else Peer()
        flat["peer"] = Peer(**{**_as_dict(current, PEER_FIELDS), **peer})
    return record._replace(**flat)


def _as_dict(part: object, names: tuple[str, ...]) -> dict[str, object]:
    return {name: getattr(part, name) for name in names}


def make(i: int, **changes: object) -> Exchange:
    x = Exchange(
        ts=T0 + i / 1000,
        interface="docker0",
        client_ip="172.17.0.3",
        client_port=40000 + i % 20000,
        server_ip="172.17.0.2",
        server_port=80,
        method="GET",
        target=f"/items/{i}",
        host="web",
        http_version="1.1",
        status=200,
        reason="OK",
        latency_ms=1.5,
        duration_ms=1.75,
        request_bytes=0,
        response_bytes=512,
        user_agent="curl/8.5",
        content_type="application/json",
    )
    return with_fields(x, **changes)  # type: ignore[return-value]


def flow(index: int, protocol: str = "dns", ts: float = 1_800_000_000.0, **fields: object) -> Flow:
    transport = "udp" if protocol in ("dns", "udp") else "icmp" if protocol == "icmp" else "tcp"
    base = Flow(ts, ts + 0.5, "br0", transport, protocol, "10.0.0.3", 40000 + index, "10.0.0.2",
                {"dns": 53, "tls": 443, "ssh": 22, "icmp": 0}.get(protocol, 9000), 1, 60, 1, 90)
    return with_fields(base, **fields)  # type: ignore[return-value]


class Collected:
    """A sink that keeps every record it is given, for tests: ``exchanges`` and ``flows`` in arrival order."""

    name = "collected"

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.flows: list[Flow] = []

    def accept(self, record: Exchange | Flow) -> None:
        (self.flows if type(record) is Flow else self.exchanges).append(record)  # type: ignore[arg-type]

    def flush(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float) -> None:
        pass

    def counters(self) -> SinkCounters:
        count = len(self.exchanges) + len(self.flows)
        return SinkCounters(count, count, 0)

    def losses(self) -> Mapping[str, int]:
        return NO_LOSSES
