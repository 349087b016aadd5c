"""The container inventory's table, the same for SQLite and PostgreSQL: tenures as rows and back, and its bounds.

A tenure is written twice, open when it begins and closed when it ends, and
keyed by (observer, container id, start): the closed row replaces the open
one, and a batch sent again (after a commit whose outcome was lost, or from
the spool) changes nothing.  So unlike the records, the table needs no
idempotency key.

Bounded two ways, per observer, apart from ``--keep`` (which counts records
per container): tenures that ended longer ago than ``--retain`` go with the
records of that time, and of those that ended, only the newest
:data:`MAX_ENDED_TENURES` are kept.  Tenures still open are never deleted:
they describe containers that run now.
"""

from __future__ import annotations

from collections.abc import Sequence

from eyes_devine.records import ContainerInfo, ContainerTenure, PublishedPort

MAX_ENDED_TENURES = 100_000
"""Ended tenures kept per observer (about 35 MB in SQLite; bounding costs a batch that carries tenures some 5 ms
then): a host that starts a container a minute keeps two months of them."""
INVENTORY_SINCE = 8
"""The first SQLite schema with the inventory (PostgreSQL: 3)."""

TENURE_FIELDS = ("observer", "container_id", "name", "image", "compose_project", "compose_service", "addresses",
                 "gateways", "published", "ports", "started", "ended")
TENURE_COLUMNS = ", ".join(TENURE_FIELDS)
_DESCRIPTION = TENURE_FIELDS[2:]
"""What a row sent again, or closed, replaces."""


def upsert(placeholder: str) -> str:
    """The statement that stores one tenure, as the store's driver marks parameters (``?`` or ``%s``)."""
    values = ", ".join([placeholder] * len(TENURE_FIELDS))
    changes = ", ".join(f"{name} = excluded.{name}" for name in _DESCRIPTION)
    return (f"INSERT INTO containers ({TENURE_COLUMNS}) VALUES ({values}) "
            f"ON CONFLICT (observer, container_id, started) DO UPDATE SET {changes}")


def cap(placeholder: str) -> str:
    """The delete of one observer's ended tenures beyond the newest :data:`MAX_ENDED_TENURES` (parameters: the
    observer, the observer, the bound)."""
    return (f"DELETE FROM containers WHERE observer = {placeholder} AND ended <= (SELECT ended FROM containers "
            f"WHERE observer = {placeholder} AND ended IS NOT NULL ORDER BY ended DESC LIMIT 1 OFFSET {placeholder})")


def select(placeholder: str, observer: str | None, open_only: bool) -> tuple[str, list[object]]:
    """The tenures of ``observer`` (every observer's: None), those still open only if asked, oldest first."""
    conditions, params = [], []
    if observer is not None:
        conditions.append(f"observer = {placeholder}")
        params.append(observer)
    if open_only:
        conditions.append("ended IS NULL")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT {TENURE_COLUMNS} FROM containers{where} ORDER BY started, id", params


OBSERVERS = "SELECT observer, count(*) FROM containers GROUP BY observer ORDER BY observer"
"""Whose inventory the database holds, and how many tenures each."""


def tenure_row(tenure: ContainerTenure) -> tuple[object, ...]:
    """The row of :data:`TENURE_FIELDS`: lists space-joined, published ports as Docker shows them."""
    info = tenure.info
    return (tenure.observer, info.id, info.name, info.image, info.compose_project, info.compose_service,
            " ".join(info.addresses), " ".join(info.gateways), " ".join(map(_published, info.published)),
            " ".join(map(str, info.ports)), tenure.started, tenure.ended)


def tenure_of(row: Sequence[object]) -> ContainerTenure:
    """The tenure a row of :data:`TENURE_FIELDS` holds; ValueError when it is damaged."""
    (observer, container_id, name, image, project, service, addresses, gateways, published, ports, started,
     ended) = row
    info = ContainerInfo(
        id=str(container_id), name=str(name), image=str(image),
        compose_project=None if project is None else str(project),
        compose_service=None if service is None else str(service),
        addresses=tuple(str(addresses).split()), gateways=tuple(str(gateways).split()),
        published=tuple(_published_of(text) for text in str(published).split()),
        ports=tuple(int(port) for port in str(ports).split()),
    )
    return ContainerTenure(info, float(started),  # type: ignore[arg-type]
                           None if ended is None else float(ended), None if observer is None else str(observer))  # type: ignore[arg-type]


def _published(binding: PublishedPort) -> str:
    """``0.0.0.0:8080->80``, ``[::]:8080->80``, ``:8080->80`` (every address, no host IP given)."""
    host = f"[{binding.host_ip}]" if ":" in binding.host_ip else binding.host_ip
    return f"{host}:{binding.host_port}->{binding.container_port}"


def _published_of(text: str) -> PublishedPort:
    host, arrow, container_port = text.rpartition("->")
    host_ip, colon, host_port = host.rpartition(":")
    if not arrow or not colon:
        raise ValueError(f"{text!r} is not a published port")
    return PublishedPort(host_ip.removeprefix("[").removesuffix("]"), int(host_port), int(container_port))
