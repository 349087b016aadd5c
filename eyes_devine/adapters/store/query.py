"""What `requests`, `alerts` and `flows` ask of the store, as SQL conditions."""

from __future__ import annotations

import re
from dataclasses import dataclass

from eyes_devine.records import ANSWERED_SQL


@dataclass(frozen=True, slots=True)
class Query:
    """What `requests` asks for; every filter is optional and they combine with AND.

    ``container`` matches the serving or the calling container, by exact name or
    by id prefix (as the docker CLI does); ``status`` is an inclusive range from
    :func:`~eyes_devine.config.parse_status`; ``since`` is epoch seconds from
    :func:`~eyes_devine.config.parse_since`;
    ``alerted`` keeps exchanges that matched any suspicious-request rule, ``rule``
    those that matched that one (a whole rule id, as in eyes_devine.enrich.rules).
    """

    container: str | None = None
    status: tuple[int, int] | None = None
    method: str | None = None
    path_contains: str | None = None
    since: float | None = None
    limit: int | None = 100
    alerted: bool = False
    rule: str | None = None
    answered: bool = False
    """Only exchanges whose server gave what was asked (see :func:`~eyes_devine.records.outcome`)."""
    observer: str | None = None
    """Only what this host captured (``--observer``)."""

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, not {self.limit}")


_HEX = re.compile(r"[0-9a-f]+")


SQLITE, POSTGRESQL = "sqlite", "postgresql"


def where_clause(q: Query, dialect: str = SQLITE) -> tuple[str, list[object]]:
    """The WHERE clause of ``q`` and its parameters: ``?`` placeholders for SQLite, ``%s`` for PostgreSQL."""
    clauses: list[str] = []
    params: list[object] = []
    contains = "instr" if dialect == SQLITE else "strpos"
    if q.observer is not None:
        clauses.append("observer = ?")
        params.append(q.observer)
    if q.container:
        match = ["container = ?", "client_container = ?"]
        params += [q.container, q.container]
        prefix = q.container.lower()[:12]  # stored ids are short ids; a full id names the same container
        if _HEX.fullmatch(prefix):
            match += ["substr(container_id, 1, ?) = ?", "substr(client_container_id, 1, ?) = ?"]
            params += [len(prefix), prefix, len(prefix), prefix]
        clauses.append(f"({' OR '.join(match)})")
    if q.status is not None:
        clauses.append("status BETWEEN ? AND ?")
        params += list(q.status)
    if q.method:
        clauses.append("upper(method) = upper(?)")
        params.append(q.method)
    if q.path_contains:
        clauses.append(f"{contains}(target, ?) > 0")  # a plain substring: no LIKE wildcards to escape
        params.append(q.path_contains)
    if q.since is not None:
        clauses.append("ts >= ?")
        params.append(q.since)
    if q.alerted or q.rule:
        clauses.append("alerts != ''")  # the exchanges_alerted index holds just these rows
    if q.rule:
        clauses.append(f"{contains}(' ' || alerts || ' ', ?) > 0")  # ids are space-joined: match whole ids
        params.append(f" {q.rule} ")
    if q.answered:
        clauses.append(ANSWERED_SQL)
    return _where(clauses, dialect), params


def _where(clauses: list[str], dialect: str) -> str:
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    return where if dialect == SQLITE else where.replace("?", "%s")


@dataclass(frozen=True, slots=True)
class FlowQuery:
    """What `flows` asks for: ``container`` as in :class:`Query`, ``protocol`` a label such as dns or tls,
    ``since`` epoch seconds compared with each flow's last packet."""

    container: str | None = None
    protocol: str | None = None
    since: float | None = None
    limit: int | None = 100
    observer: str | None = None

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, not {self.limit}")


def flow_where_clause(q: FlowQuery, dialect: str = SQLITE) -> tuple[str, list[object]]:
    where, params = where_clause(Query(container=q.container, observer=q.observer, limit=None))
    clauses = [where.removeprefix(" WHERE ")] if where else []
    if q.protocol:
        clauses.append("protocol = ?")
        params.append(q.protocol.lower())
    if q.since is not None:
        clauses.append("ts_last >= ?")
        params.append(q.since)
    return _where(clauses, dialect), params
