"""The commands that read what `run` stored: `requests`, `alerts`, `flows`."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import click

from eyes_devine.cli.group import main
from eyes_devine.cli.options import (
    ENVIRONMENT_HELP,
    EXIT_FAILURE,
    EXIT_OK,
    build_settings,
    fail,
    observer_filter,
    observer_name,
    store_options,
)
from eyes_devine.config import Settings


@main.command(epilog=ENVIRONMENT_HELP)
@store_options
@observer_filter
@click.option("-c", "--container", metavar="NAME|ID", help="Served or sent by this container (name, or id prefix).")
@click.option("--status", metavar="CODE|Nxx", help="Only this status (404) or class (5xx).")
@click.option("--method", metavar="METHOD", help="Only this request method (any case).")
@click.option("--path-contains", metavar="TEXT", help="Only request-targets containing TEXT.")
@click.option("--since", metavar="AGE|TIME", help="Only newer than an age (90s, 10m, 2h, 1d) or an ISO-8601 time.")
@click.option("-n", "--limit", type=click.IntRange(min=1, max=1_000_000), default=100, show_default=True,
              help="The newest N matching exchanges.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines with the exchange keys instead of the table.")
def requests(as_json: bool, limit: int, since: str | None, status: str | None, **flags: Any) -> None:
    """Show the exchanges `eyes-devine run` stored, oldest of the selection first.

    Opens the database read-only, so it works while `run` is writing.
    """
    import time

    from eyes_devine.adapters.store.query import Query
    from eyes_devine.config import parse_since, parse_status

    db_path = flags.pop("db_path")
    settings = build_settings(db_path=db_path)
    try:
        query = Query(
            container=flags["container"], method=flags["method"], path_contains=flags["path_contains"], limit=limit,
            observer=observer_name(flags["observer"]),
            status=parse_status(status) if status else None,
            since=parse_since(since, time.time()) if since else None,
        )
    except ValueError as error:
        fail(str(error))

    from eyes_devine.views.requests_table import requests_table

    _show_stored(settings, lambda store: store.query(query), as_json, requests_table, "no stored exchanges match")


@main.command(epilog=ENVIRONMENT_HELP)
@store_options
@observer_filter
@click.option("-c", "--container", metavar="NAME|ID", help="Served or sent by this container (name, or id prefix).")
@click.option("--rule", metavar="ID",
              help="Only exchanges that matched this rule: a built-in id, or one of the --rules file's.")
@click.option("--rules", "rules_path", metavar="FILE",
              help="The rule file `run` was given, so --rule knows its ids [EYES_DEVINE_RULES].")
@click.option("--since", metavar="AGE|TIME", help="Only newer than an age (90s, 10m, 2h, 1d) or an ISO-8601 time.")
@click.option("-n", "--limit", type=click.IntRange(min=1, max=1_000_000), default=100, show_default=True,
              help="The newest N matching exchanges.")
@click.option("--answered", is_flag=True,
              help="Only attacks the server answered (2xx, or a 3xx with more than a 512-byte notice of body): the "
                   "ones that may have worked.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON Lines with the exchange keys and outcome instead of the table.")
def alerts(as_json: bool, limit: int, since: str | None, rule: str | None, container: str | None,
           db_path: str | None, answered: bool, rules_path: str | None, observer: str | None) -> None:
    """Show the stored exchanges that matched a suspicious-request rule, oldest of the selection first.

    \b
    Rules: path-traversal, file-inclusion (php://, ....//), sql-injection,
    command-injection, xss (in the percent-decoded target); jndi-lookup and
    ssrf-metadata (169.254.169.254 and its forms), also in headers; shellshock
    (in headers);
    sensitive-path (/.env, /.git/, /wp-admin, /phpmyadmin, ...),
    scanner-user-agent (sqlmap, nikto, masscan, zgrab, ...),
    burst-4xx (20 or more 4xx answers to one client within 10 s).

    \b
    Outcome: answered (2xx, or a 3xx with a page), redirected (other 3xx),
    refused (4xx), failed (5xx), no_response.
    """
    import time

    from eyes_devine.adapters.store.query import Query
    from eyes_devine.config import parse_since
    from eyes_devine.views.alerts_table import alerts_table
    from eyes_devine.views.jsonl import alert_json_line

    settings = build_settings(db_path=db_path, rules_path=rules_path)
    if rule is not None:
        from eyes_devine.enrich.rule_data import RuleFileError, rule_book

        try:
            known = rule_book(settings.rules_path).ids
        except RuleFileError as error:
            fail(str(error))
        if rule not in known:
            fail(f"--rule {rule!r} is not a rule id; the rules are {', '.join(known)}")
    try:
        query = Query(container=container, alerted=True, rule=rule, limit=limit, answered=answered,
                      observer=observer_name(observer),
                      since=parse_since(since, time.time()) if since else None)
    except ValueError as error:
        fail(str(error))
    _show_stored(settings, lambda store: store.query(query), as_json, alerts_table,
                 "no stored exchanges matched a rule" + (" and were answered" if answered else ""), alert_json_line)


def _show_stored(settings: Settings, ask: Callable[[Any], Awaitable[list[Any]]], as_json: bool,
                 table: Callable[[list[Any], float], Any], nothing: str,
                 json_line: Callable[[Any], str] | None = None) -> None:
    """Print what ``ask`` finds in the database, opened read-only, oldest first: JSON Lines, or ``table``.

    A missing or damaged database: one line and exit 1.
    """
    from eyes_devine.adapters.store.errors import StoreError
    from eyes_devine.app.stored import fetch
    from eyes_devine.views.stdout import ReaderGone, print_records

    try:
        found = fetch(settings, ask)
    except StoreError as error:
        fail(str(error), EXIT_FAILURE)
    if not found and not as_json:
        click.echo(nothing, err=True)
        return
    try:
        print_records(found, as_json, table, *([json_line] if json_line else []))
    except ReaderGone:
        sys.exit(EXIT_OK)


@main.command(epilog=ENVIRONMENT_HELP)
@store_options
@observer_filter
@click.option("-c", "--container", metavar="NAME|ID", help="Served or started by this container (name, or id prefix).")
@click.option("--protocol", metavar="NAME",
              help="Only this protocol: dns, tls, ssh, ftp, http, tcp, udp, icmp or icmpv6.")
@click.option("--since", metavar="AGE|TIME", help="Only active after an age (90s, 10m, 2h, 1d) or an ISO-8601 time.")
@click.option("-n", "--limit", type=click.IntRange(min=1, max=1_000_000), default=100, show_default=True,
              help="The N flows that ended last.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines with the flow keys instead of the table.")
def flows(as_json: bool, limit: int, since: str | None, protocol: str | None, container: str | None,
          db_path: str | None, observer: str | None) -> None:
    """Show the flows `eyes-devine run --all-traffic` stored, oldest of the selection first.

    A flow is one TCP, UDP or ICMP conversation: its ends, what it carried (by
    payload signature, else by port), the TLS server name, packets and bytes
    each way. Opens the database read-only, so it works while `run` writes.
    """
    import time

    from eyes_devine.adapters.store.query import FlowQuery
    from eyes_devine.config import parse_since
    from eyes_devine.core.flows import PROTOCOLS
    from eyes_devine.views.flows_table import flows_table

    settings = build_settings(db_path=db_path)
    if protocol is not None and protocol.lower() not in PROTOCOLS:
        fail(f"--protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    try:
        query = FlowQuery(container=container, protocol=protocol, limit=limit, observer=observer_name(observer),
                          since=parse_since(since, time.time()) if since else None)
    except ValueError as error:
        fail(str(error))

    _show_stored(settings, lambda store: store.query_flows(query), as_json, flows_table,
                 "no stored flows match (flows are stored by `eyes-devine run --all-traffic`)")


@main.command(epilog=ENVIRONMENT_HELP + "\n\n\b\nExit codes:\n  0  healthy\n  1  unhealthy, or no database\n"
              "  2  bad flag")
@store_options
@click.option("--observer", metavar="NAME",
              help="In a PostgreSQL database many hosts write: the run of this host [EYES_DEVINE_OBSERVER; "
                   "default the hostname].")
@click.option("--max-age", default="30", show_default=True, metavar="SECONDS",
              help="A status older than this is stale: unhealthy.")
def health(max_age: str, **flags: Any) -> None:
    """Say whether a `run` is capturing and storing into --db now: exit 0, or 1 with the reason.

    Reads the status `run` keeps in its database (every sniffer up, written
    within --max-age seconds by the store's writer); opens no capture, needs
    no privileges. For Docker's HEALTHCHECK, compose and systemd watchdogs.
    """
    import time

    from eyes_devine.adapters.store.errors import StoreError
    from eyes_devine.app.health import judge, read_status
    from eyes_devine.cli.options import seconds

    bound = seconds(max_age, "--max-age")
    from eyes_devine.adapters.store.opener import display

    settings = build_settings(db_path=flags.pop("db_path"), observer=flags.pop("observer"))
    try:
        status = read_status(settings.db_path, settings.observer)
    except StoreError as error:
        fail(f"unhealthy: {error}", EXIT_FAILURE)
    verdict = judge(status, time.time(), bound, display(settings.db_path))
    click.echo(verdict.line)
    sys.exit(EXIT_OK if verdict.healthy else EXIT_FAILURE)
