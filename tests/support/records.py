"""Records built for tests: exchanges of a few made-up containers."""

from __future__ import annotations

from dataclasses import replace

from eyes_devine.records import Exchange

WEB = "a1b2c3d4e5f6"
API = "0b0b0b0b0b0b"
WORKER = "c0ffee000001"
T0 = 1_714_564_800.0  # 2024-05-01 12:00:00 UTC


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
        request_bytes=0,
        response_bytes=512,
        user_agent="curl/8.5",
        content_type="application/json",
    )
    return replace(x, **changes)
