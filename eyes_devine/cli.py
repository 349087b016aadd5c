"""The `eyes-devine` command: parses flags, builds Settings, hands off. Nothing else lives here.

Exit codes: 0 success, 1 a runtime failure (capture, file, daemon), 2 bad input
(a flag, a variable, an interface name, a profile).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import click

from eyes_devine import __version__
from eyes_devine.app.discovery import UnknownInterfaceError
from eyes_devine.app.profiles import ProfileError
from eyes_devine.config import ENVIRONMENT_VARIABLES, ConfigError, Settings
from eyes_devine.enrich.rules import RULE_IDS

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

ENVIRONMENT_HELP = "\b\nEnvironment:\n" + "\n".join(
    f"  {name:<23} {text}" for name, text in ENVIRONMENT_VARIABLES.items()
)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """One clear line on stderr and a non-zero exit: the only way commands report bad input."""
    click.echo(f"eyes-devine: {message}", err=True)
    sys.exit(code)


def capture_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The flags every capturing or diagnosing command shares."""
    command = click.option(
        "--profile", "profile_path", metavar="FILE",
        help="Interface profile TOML replacing the built-in one for this OS [EYES_DEVINE_PROFILE].",
    )(command)
    command = click.option(
        "--filter", "capture_filter", metavar="BPF",
        help="Full BPF filter replacing the port filter, tcpdump syntax [CAPTURE_FILTER].",
    )(command)
    command = click.option(
        "--ports", metavar="LIST",
        help="Comma-separated TCP ports carrying HTTP [EYES_DEVINE_PORTS; default 80,8080,8000,3000,5000].",
    )(command)
    command = click.option(
        "-i", "--interface", "interfaces", multiple=True, metavar="NAME",
        help="Interface to capture; repeat for more. Overrides discovery [NETWORK_INTERFACES=a,b].",
    )(command)
    return command


def build_settings(**flags: Any) -> Settings:
    flags = {name: value for name, value in flags.items() if value is not None}
    try:
        return Settings.build(os.environ, **flags)
    except ConfigError as error:
        fail(str(error))


def docker_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Flags of the commands that attribute exchanges to containers."""
    return click.option(
        "--no-follow-docker-ports", "follow_docker_ports", is_flag=True, default=True, flag_value=False,
        help="Capture only --ports; by default ports containers expose or publish join the filter as they start.",
    )(command)


def user_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-u", "--user", metavar="NAME",
        help="Open the capture sockets as root, then become NAME (groups, gid, uid, no_new_privs), "
             "as tcpdump -Z does.",
    )(command)


def account_for(user: str | None) -> Any:
    """The account behind --user, checked before anything starts: bad input is one line and exit 2."""
    if user is None:
        return None
    from eyes_devine.adapters.host import PrivilegeDropError, forbid_new_privileges, resolve_account

    if hasattr(os, "geteuid") and os.geteuid() != 0:
        fail("--user needs eyes-devine to start as root (it drops to the user after opening the capture)")
    try:
        account = resolve_account(user)
        forbid_new_privileges()  # here, on the main thread, before any other thread exists
    except PrivilegeDropError as error:
        fail(str(error))
    return account


def security_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """GeoIP and IP reputation: where public peers are, and whether they are known to be hostile."""
    command = click.option(
        "--blocklist", "blocklists", multiple=True, metavar="FILE",
        help="IP/CIDR blocklist (plain, FireHOL or Spamhaus DROP) added to the built-in one; repeatable "
             "[EYES_DEVINE_BLOCKLISTS=a,b].",
    )(command)
    return click.option(
        "--geoip", "geoip_path", metavar="FILE",
        help="MaxMind .mmdb (GeoLite2 City or Country) for country, city and coordinates of public peers "
             "[EYES_DEVINE_GEOIP].",
    )(command)


def annotator_for(settings: Settings, log: Callable[[str], None] = lambda line: None) -> Any:
    """Rules, GeoIP and reputation as configured; an unusable file is one line and exit 2."""
    from eyes_devine.enrich.annotator import SecurityConfigError, build_annotator

    try:
        return build_annotator(settings, log)
    except SecurityConfigError as error:
        fail(str(error))


def all_traffic_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--all-traffic", is_flag=True, default=None,
        help="Also summarise every TCP, UDP and ICMP flow per container (DNS, TLS with SNI, SSH, FTP, HTTP, ICMP) "
             "for `eyes-devine flows`; captures every IP packet, HTTP is still parsed on the HTTP ports.",
    )(command)


def store_options(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db", "db_path", metavar="FILE",
        help="SQLite database [EYES_DEVINE_DB; default ~/.local/share/eyes-devine/exchanges.db, "
             "as root /var/lib/eyes-devine/exchanges.db].",
    )(command)


@click.group(epilog=ENVIRONMENT_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="eyes-devine")
def main() -> None:
    """See the HTTP every Docker container serves and sends, live, without touching the apps."""


@main.command(epilog=ENVIRONMENT_HELP)
@capture_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of the table.")
def interfaces(as_json: bool, **flags: Any) -> None:
    """List interfaces, what would be captured and why, and whether capture can work here.

    Checks privileges, libpcap, the BPF filter and the Docker Engine, and says
    how to fix what is missing. Exits 0 even when something is missing.
    """
    from eyes_devine.app.diagnostics import gather
    from eyes_devine.views.console import make_console
    from eyes_devine.views.interfaces import render_report

    settings = build_settings(**flags)
    try:
        report = gather(settings)
    except (ProfileError, UnknownInterfaceError) as error:
        fail(str(error))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        render_report(make_console(), report.to_dict())


@main.command(epilog=ENVIRONMENT_HELP)
@click.argument("capture_file", metavar="FILE")
@click.option("--ports", metavar="LIST",
              help="TCP ports carrying HTTP; other TCP is skipped and counted [EYES_DEVINE_PORTS].")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one exchange per line, instead of the table.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
@click.option("--flows", "flows_only", is_flag=True,
              help="Print the file's flows (every TCP, UDP and ICMP conversation, classified) instead of its "
                   "exchanges.")
@security_options
def read(capture_file: str, ports: str | None, as_json: bool, quiet: bool, flows_only: bool, **flags: Any) -> None:
    """Read a pcap or pcapng FILE and print its HTTP exchanges.

    The same engine as live capture: TCP reassembly (reordering, retransmission,
    loss) and HTTP/1.x pairing (keep-alive, pipelining, chunked, 1xx, HEAD).
    Credentials in headers and query strings are never printed. A summary of
    counters goes to stderr. A damaged or truncated file prints what was
    readable, then the error, and exits 1.
    """
    from eyes_devine.adapters.pcapfile import CaptureFileError
    from eyes_devine.app.pipeline import read_capture
    from eyes_devine.core.decode import UnsupportedLinkType
    from eyes_devine.views.console import make_console
    from eyes_devine.views.exchanges import exchange_writer
    from eyes_devine.views.progress import file_progress
    from eyes_devine.views.summary import summary_line

    settings = build_settings(ports=ports, **flags)
    annotate = annotator_for(settings)
    # Our own buffer: one write per line would dominate a large read (and PYTHONUNBUFFERED may be set).
    out = open(sys.stdout.fileno(), "w", buffering=1 << 16, encoding="utf-8", errors="replace", closefd=False)
    flows: list[Any] = []
    if flows_only:
        def emit(exchange: Any) -> None:
            pass
    else:
        emit = exchange_writer(out, as_json, colour=sys.stdout.isatty())
    emit_flow = (lambda flow: flows.append(annotate.annotate_flow(flow))) if flows_only else None
    stderr = make_console(stderr=True)
    try:
        if stderr.is_terminal and not quiet:
            with file_progress(stderr, os.path.basename(capture_file)) as progress:
                result = read_capture(capture_file, settings.ports, emit, progress, annotate, emit_flow)
        else:
            result = read_capture(capture_file, settings.ports, emit, annotate=annotate, emit_flow=emit_flow)
        if flows_only:
            _print_flows(sorted(flows, key=lambda flow: flow.ts_first), as_json, out)
        out.flush()
    except CaptureFileError as error:
        fail(str(error), EXIT_FAILURE)
    except UnsupportedLinkType as error:
        fail(f"{capture_file}: {error}", EXIT_FAILURE)
    except BrokenPipeError:
        # The reader went away (| head): stop quietly, as tcpdump does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_OK)
    if not quiet:
        flows_written = result.engine.tracker.emitted if result.engine.tracker is not None else None
        click.echo(summary_line(capture_file, result.frames, result.engine.counters, flows_written, result.seconds),
                   err=True)
    if result.error is not None:
        fail(str(result.error), EXIT_FAILURE)


@main.command(epilog=ENVIRONMENT_HELP + "\n\n\b\nExit codes:\n  0  stopped by SIGTERM or SIGINT, "
              "everything stored\n  1  capture or the database failed\n  2  bad flag, variable or interface")
@capture_options
@docker_options
@store_options
@click.option("--keep", type=int, metavar="N", help="Exchanges kept per container [EYES_DEVINE_KEEP; default 1000].")
@click.option("--batch-size", type=int, metavar="N",
              help="Most exchanges per SQLite transaction [EYES_DEVINE_BATCH_SIZE; default 500].")
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Log lines on stderr [EYES_DEVINE_LOG_FORMAT].")
@click.option("--stats-interval", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              metavar="SECONDS", help="Seconds between counter lines in the log.")
@click.option("--json", "as_json", is_flag=True, help="Also print every exchange on stdout as JSON Lines.")
@all_traffic_option
@user_option
@security_options
def run(stats_interval: float, as_json: bool, user: str | None, **flags: Any) -> None:
    """Capture, attribute and store HTTP exchanges until SIGTERM or SIGINT (the headless service).

    Captures on the discovered Docker interfaces (or -i / NETWORK_INTERFACES),
    names the containers at both ends through the Docker API, and keeps the
    last --keep exchanges per container in SQLite for `eyes-devine requests`.
    Logs to stderr: what is captured and with which filter, Docker status,
    a line per batch stored and counters every --stats-interval seconds.
    """
    import asyncio

    from eyes_devine.app.logs import ServiceLog
    from eyes_devine.app.service import ServiceOptions, serve

    settings = build_settings(is_root=os.geteuid() == 0 if hasattr(os, "geteuid") else False, **flags)
    account = account_for(user)
    selected, hint = _capture_interfaces(settings)
    log = ServiceLog(sys.stderr, settings.log_format)
    if hint:
        log.warning(hint)
    out = open(sys.stdout.fileno(), "w", buffering=1, encoding="utf-8", closefd=False) if as_json else None
    options = ServiceOptions(interfaces=selected, stats_interval=stats_interval, account=account,
                             annotator=annotator_for(settings, log.warning))
    sys.exit(asyncio.run(serve(settings, options, log, out)))


@main.command(epilog=ENVIRONMENT_HELP)
@store_options
@click.option("-c", "--container", metavar="NAME|ID", help="Served or sent by this container (name, or id prefix).")
@click.option("--status", metavar="CODE|Nxx", help="Only this status (404) or class (5xx).")
@click.option("--method", metavar="METHOD", help="Only this request method (any case).")
@click.option("--path-contains", metavar="TEXT", help="Only request-targets containing TEXT.")
@click.option("--since", metavar="AGE|TIME", help="Only newer than an age (90s, 10m, 2h, 1d) or an ISO-8601 time.")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="The newest N matching exchanges.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines with the exchange keys instead of the table.")
def requests(as_json: bool, limit: int, since: str | None, status: str | None, **flags: Any) -> None:
    """Show the exchanges `eyes-devine run` stored, oldest of the selection first.

    Opens the database read-only, so it works while `run` is writing.
    """
    import time

    from eyes_devine.adapters.store.sqlite import Query, parse_since, parse_status

    db_path = flags.pop("db_path")
    settings = build_settings(db_path=db_path, is_root=os.geteuid() == 0 if hasattr(os, "geteuid") else False)
    try:
        query = Query(
            container=flags["container"], method=flags["method"], path_contains=flags["path_contains"], limit=limit,
            status=parse_status(status) if status else None,
            since=parse_since(since, time.time()) if since else None,
        )
    except ValueError as error:
        fail(str(error))

    from eyes_devine.views.requests_table import requests_table

    _show_stored(settings, query, as_json, requests_table, "no stored exchanges match")


@main.command(epilog=ENVIRONMENT_HELP)
@store_options
@click.option("-c", "--container", metavar="NAME|ID", help="Served or sent by this container (name, or id prefix).")
@click.option("--rule", type=click.Choice(RULE_IDS), metavar="ID", help="Only exchanges that matched this rule.")
@click.option("--since", metavar="AGE|TIME", help="Only newer than an age (90s, 10m, 2h, 1d) or an ISO-8601 time.")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="The newest N matching exchanges.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines with the exchange keys instead of the table.")
def alerts(as_json: bool, limit: int, since: str | None, rule: str | None, container: str | None,
           db_path: str | None) -> None:
    """Show the stored exchanges that matched a suspicious-request rule, oldest of the selection first.

    \b
    Rules: path-traversal, sql-injection, xss (in the percent-decoded target),
    sensitive-path (/.env, /.git/, /wp-admin, /phpmyadmin, ...),
    scanner-user-agent (sqlmap, nikto, masscan, zgrab, ...),
    burst-4xx (20 or more 4xx answers to one client within 10 s).
    """
    import time

    from eyes_devine.adapters.store.sqlite import Query, parse_since
    from eyes_devine.views.alerts_table import alerts_table

    settings = build_settings(db_path=db_path, is_root=os.geteuid() == 0 if hasattr(os, "geteuid") else False)
    try:
        query = Query(container=container, alerted=True, rule=rule, limit=limit,
                      since=parse_since(since, time.time()) if since else None)
    except ValueError as error:
        fail(str(error))
    _show_stored(settings, query, as_json, alerts_table, "no stored exchanges matched a rule")


def _stored(settings: Settings, ask: Callable[[Any], Awaitable[list[Any]]]) -> list[Any]:
    """Open the database read-only, ``ask`` it, close it; oldest first.  A missing or damaged one: exit 1."""
    import asyncio

    from eyes_devine.adapters.store.sqlite import StoreError, open_store

    async def fetch() -> list[Any]:
        store = await open_store(settings.db_path, settings.keep, readonly=True)
        try:
            return await ask(store)
        finally:
            await store.close()

    try:
        found = asyncio.run(fetch())
    except StoreError as error:
        fail(str(error), EXIT_FAILURE)
    found.reverse()
    return found


def _show_stored(settings: Settings, query: Any, as_json: bool, table: Callable[[list[Any], float], Any],
                 nothing: str) -> None:
    """Print what ``query`` finds in the database read-only, oldest first: JSON Lines, or ``table``."""
    import time

    found = _stored(settings, lambda store: store.query(query))
    if as_json:
        from eyes_devine.views.jsonl import json_line

        out = open(sys.stdout.fileno(), "w", buffering=1 << 16, encoding="utf-8", closefd=False)
        try:
            for exchange in found:
                out.write(json_line(exchange) + "\n")
            out.flush()
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    from eyes_devine.views.console import make_console

    if not found:
        click.echo(nothing, err=True)
        return
    make_console().print(table(found, time.time()))


@main.command(epilog=ENVIRONMENT_HELP)
@store_options
@click.option("-c", "--container", metavar="NAME|ID", help="Served or started by this container (name, or id prefix).")
@click.option("--protocol", metavar="NAME",
              help="Only this protocol: dns, tls, ssh, ftp, http, tcp, udp, icmp or icmpv6.")
@click.option("--since", metavar="AGE|TIME", help="Only active after an age (90s, 10m, 2h, 1d) or an ISO-8601 time.")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="The N flows that ended last.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines with the flow keys instead of the table.")
def flows(as_json: bool, limit: int, since: str | None, protocol: str | None, container: str | None,
          db_path: str | None) -> None:
    """Show the flows `eyes-devine run --all-traffic` stored, oldest of the selection first.

    A flow is one TCP, UDP or ICMP conversation: its ends, what it carried (by
    payload signature, else by port), the TLS server name, packets and bytes
    each way. Opens the database read-only, so it works while `run` writes.
    """
    import time

    from eyes_devine.adapters.store.sqlite import FlowQuery, parse_since
    from eyes_devine.core.flows import PROTOCOLS

    settings = build_settings(db_path=db_path, is_root=os.geteuid() == 0 if hasattr(os, "geteuid") else False)
    if protocol is not None and protocol.lower() not in PROTOCOLS:
        fail(f"--protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    try:
        query = FlowQuery(container=container, protocol=protocol, limit=limit,
                          since=parse_since(since, time.time()) if since else None)
    except ValueError as error:
        fail(str(error))

    found = _stored(settings, lambda store: store.query_flows(query))
    if not found and not as_json:
        click.echo("no stored flows match (flows are stored by `eyes-devine run --all-traffic`)", err=True)
        return
    _print_flows(found, as_json, open(sys.stdout.fileno(), "w", buffering=1 << 16, encoding="utf-8", closefd=False))


def _print_flows(found: list[Any], as_json: bool, out: Any) -> None:
    """Flows as JSON Lines, or as a table on the terminal; a reader that went away ends it quietly."""
    import time

    try:
        if as_json:
            from eyes_devine.views.jsonl import flow_json_line

            for flow in found:
                out.write(flow_json_line(flow) + "\n")
            out.flush()
        else:
            from eyes_devine.views.console import make_console
            from eyes_devine.views.flows_table import flows_table

            out.flush()
            make_console().print(flows_table(found, time.time()))
            sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@main.command(epilog=ENVIRONMENT_HELP)
@capture_options
@docker_options
@store_options
@click.option("--keep", type=int, metavar="N", help="Exchanges kept per container [EYES_DEVINE_KEEP; default 1000].")
@click.option("--attach", is_flag=True,
              help="Show what a running `eyes-devine run` stores in --db; needs no capture privileges.")
@click.option("-c", "--container", metavar="NAME|ID", help="Only exchanges served or sent by this container.")
@click.option("--flows", "flows_view", is_flag=True,
              help="Show recent flows (DNS, TLS, SSH, ICMP, ...) instead of the latest exchanges; implies "
                   "--all-traffic when capturing.")
@all_traffic_option
@user_option
@security_options
def watch(attach: bool, container: str | None, user: str | None, flows_view: bool, **flags: Any) -> None:
    """The live per-container table: requests, rates, status classes, latency, the latest exchanges.

    Standalone it captures like `run` (same interfaces, filter and database, so
    `requests` sees what it saw); with --attach it follows a running `run`'s
    database instead. -i and --ports narrow what is shown in either mode.
    --flows shows recent flows in the lower table. Ctrl-C leaves it.
    """
    import asyncio
    import time

    from eyes_devine.app.watch import WatchFilter, watch_attached, watch_capturing
    from eyes_devine.views.console import make_console
    from eyes_devine.views.live import LiveScreen
    from eyes_devine.views.screen import screen

    explicit_ports = flags.get("ports") is not None or bool(os.environ.get("EYES_DEVINE_PORTS", "").strip())
    if flows_view and not attach:
        flags["all_traffic"] = True
    settings = build_settings(is_root=os.geteuid() == 0 if hasattr(os, "geteuid") else False, **flags)
    view_filter = WatchFilter(container, settings.ports if explicit_ports else (), settings.interfaces or ())
    account = account_for(user)
    if not attach:
        interfaces, _hint = _capture_interfaces(settings)
    console = make_console()
    current: list[Any] = []

    def draw(width: int, height: int) -> Any:
        if not current:
            return ""
        view = current[0]
        return screen(view.status, view.board.snapshot(time.time()), width, height, flows=view.recent_flows())

    with LiveScreen(console, draw) as live:
        def show(view: Any) -> None:
            current[:] = [view]
            live.tick()

        try:
            if attach:
                code, error = asyncio.run(watch_attached(settings, view_filter, show, flows_view))
            else:
                code, error = asyncio.run(watch_capturing(settings, interfaces, view_filter, show, account,
                                                          annotator_for(settings), flows_view))
        except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
            code, error = EXIT_OK, None
    if error:
        fail(error, code or EXIT_FAILURE)
    sys.exit(code)


def _capture_interfaces(settings: Settings) -> tuple[tuple[str, ...], str | None]:
    """The interfaces `run` and `watch` capture, as `interfaces` reports them, with the fallback's hint.

    Bad input or nothing to capture: one line and an exit.
    """
    from eyes_devine.app.diagnostics import gather

    try:
        report = gather(settings)
    except (ProfileError, UnknownInterfaceError) as error:
        fail(str(error))
    capture = report.diagnostics["capture"]
    if not capture["filter_ok"]:  # type: ignore[index]
        fail(str(capture["detail"]))  # type: ignore[index]
    if not report.discovery.selected:
        fail(report.discovery.hint or "no interface to capture; set NETWORK_INTERFACES", EXIT_FAILURE)
    return report.discovery.selected, report.discovery.hint
