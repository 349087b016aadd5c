"""Records as table rows and back, the same for SQLite and PostgreSQL: a bucket column, then the flat fields."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TypeVar

from eyes_devine.records import (
    EXCHANGE_FIELDS,
    FLOW_FIELDS,
    NO_ATTRIBUTION,
    NO_PEER,
    Exchange,
    Flow,
    MonitorStatus,
    bucket_of,
    exchange_from_values,
    exchange_values,
    flow_from_values,
    flow_values,
)

T = TypeVar("T")

COLUMNS = ", ".join(EXCHANGE_FIELDS)
FLOW_COLUMNS = ", ".join(FLOW_FIELDS)
_FLAGS = EXCHANGE_FIELDS.index("flags")
_ALERTS = EXCHANGE_FIELDS.index("alerts")


def exchange_row(x: Exchange) -> tuple[object, ...]:
    """(bucket, *fields), flags and alerts space-joined: they are identifiers from a fixed vocabulary."""
    values = list(exchange_values(x))
    values[_FLAGS] = " ".join(x.flags)
    values[_ALERTS] = " ".join(x.alerts)
    return (bucket_of(x), *values)


def flow_row(flow: Flow) -> tuple[object, ...]:
    return (bucket_of(flow), *flow_values(flow))


_REPEATED = ("interface", "client_ip", "server_ip", "method", "host", "http_version", "reason", "user_agent",
             "content_type", "container", "client_container", "container_id", "client_container_id", "country",
             "city", "reputation", "observer")
"""Fields whose values repeat across a container's exchanges: held once each (sys.intern), they cut the
memory of 100 containers x 1000 exchanges by about a third."""
_REPEATED_INDEXES = tuple(EXCHANGE_FIELDS.index(name) for name in _REPEATED)
_MAX_SHARED = 4096
_shared_parts: dict[object, object] = {}


def _shared(part: T) -> T:
    """One object for equal attributions and peers read back, as attribution shares them when it builds them."""
    found = _shared_parts.get(part)
    if found is None:
        if len(_shared_parts) >= _MAX_SHARED:
            _shared_parts.clear()
        found = _shared_parts[part] = part
    return found  # type: ignore[return-value]


def exchange_of(row: Sequence[object]) -> Exchange:
    """The exchange a row of :data:`COLUMNS` holds."""
    values = list(row)
    values[_FLAGS] = tuple(str(values[_FLAGS]).split())
    values[_ALERTS] = tuple(str(values[_ALERTS]).split())
    for index in _REPEATED_INDEXES:
        value = values[index]
        if value.__class__ is str:
            values[index] = sys.intern(value)  # type: ignore[arg-type]
    x = exchange_from_values(values)
    if x.attribution is NO_ATTRIBUTION and x.peer is NO_PEER:
        return x
    return x._replace(attribution=_shared(x.attribution), peer=_shared(x.peer))


def flow_of(row: Sequence[object]) -> Flow:
    """The flow summary a row of :data:`FLOW_COLUMNS` holds."""
    return flow_from_values(list(row))


def status_row(status: MonitorStatus) -> tuple[object, ...]:
    """(updated, started, pid, host, version, sniffers as JSON, stopped): the status table's columns."""
    return (status.updated, status.started, status.pid, status.host, status.version,
            json.dumps(dict(status.sniffers)), status.stopped)


def status_of(row: Sequence[object]) -> MonitorStatus:
    """The status a row of :func:`status_row`'s columns holds; ValueError (or TypeError) when it is damaged."""
    updated, started, pid, host, version, sniffers, stopped = row
    try:
        states = json.loads(sniffers).items()  # type: ignore[arg-type]
    except AttributeError as error:  # JSON, but not an object
        raise ValueError(error) from None
    return MonitorStatus(float(updated), float(started), int(pid), str(host), str(version),  # type: ignore[arg-type]
                         tuple((str(name), str(state)) for name, state in states), bool(stopped))
