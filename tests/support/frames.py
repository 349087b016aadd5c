"""Helpers for the core tests: segments built by hand and a handler that records what it is told."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from eyes_devine.core.tcp import Endpoints
from eyes_devine.records import ACK, Segment

CLIENT = socket.inet_pton(socket.AF_INET, "10.0.0.1")
SERVER = socket.inet_pton(socket.AF_INET, "10.0.0.2")
CLIENT_PORT = 40000
SERVER_PORT = 80


def segment(
    from_client: bool,
    seq: int,
    payload: bytes = b"",
    flags: int = ACK,
    ack: int = 0,
    ts: float = 1.0,
    interface: str = "eth0",
    client_port: int = CLIENT_PORT,
) -> Segment:
    """A segment of the one test connection 10.0.0.1:<client_port> ⇄ 10.0.0.2:80."""
    if from_client:
        ends = (CLIENT, SERVER, client_port, SERVER_PORT)
    else:
        ends = (SERVER, CLIENT, SERVER_PORT, client_port)
    return Segment(ts, interface, *ends, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, 65535, payload)


@dataclass
class Recorder:
    """A StreamHandler keeping every call, in order."""

    endpoints: Endpoints
    opened: float
    events: list[tuple[Any, ...]] = field(default_factory=list)

    def data(self, from_client: bool, payload: bytes, ts: float) -> None:
        self.events.append(("data", from_client, payload))

    def gap(self, from_client: bool, missing: int, ts: float) -> None:
        self.events.append(("gap", from_client, missing))

    def overlap(self, from_client: bool, ts: float) -> None:
        self.events.append(("overlap", from_client))

    def closed(self, ts: float) -> None:
        self.events.append(("closed", ts))

    def stream(self, from_client: bool) -> bytes:
        """Everything delivered in one direction, gaps ignored."""
        return b"".join(e[2] for e in self.events if e[0] == "data" and e[1] == from_client)

    def gaps(self, from_client: bool) -> list[int]:
        return [e[2] for e in self.events if e[0] == "gap" and e[1] == from_client]

    @property
    def closes(self) -> int:
        return sum(1 for e in self.events if e[0] == "closed")


class Recorders(list[Recorder]):
    """A handler factory remembering each handler it made, in order."""

    def __call__(self, endpoints: Endpoints, ts: float) -> Recorder:
        recorder = Recorder(endpoints, ts)
        self.append(recorder)
        return recorder
