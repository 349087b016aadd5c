"""The commands that look at traffic: `interfaces`, `read`, `run`, `watch`."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from eyes_devine.app.discovery import UnknownInterfaceError
from eyes_devine.app.profiles import ProfileError
from eyes_devine.cli.group import main
from eyes_devine.cli.options import (
    ENVIRONMENT_HELP,
    EXIT_FAILURE,
    EXIT_OK,
    account_for,
    all_traffic_option,
    annotator_for,
    build_settings,
    capture_options,
    check_docker_host,
    check_exports,
    check_key_log,
    docker_options,
    export_options,
    fail,
    observer_name,
    observer_option,
    parsing_options,
    retention_options,
    seconds,
    security_options,
    store_options,
    user_option,
    workers_option,
)
from eyes_devine.config import Settings

MAX_READ_WORKERS = 64


@main.command(epilog=ENVIRONMENT_HELP)
@capture_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of the table.")
def interfaces(as_json: bool, **flags: Any) -> None:
    """List interfaces, what would be captured and why, and whether capture can work here.

    Checks privileges, libpcap, the BPF filter and the Docker Engine, and says
    how to fix what is missing. Exits 0 even when something is missing; bad
    input (a flag, or a variable such as a malformed DOCKER_HOST) exits 2.
    """
    from eyes_devine.app.diagnostics import gather
    from eyes_devine.views.console import make_console
    from eyes_devine.views.interfaces import render_report

    settings = build_settings(**flags)
    check_docker_host(settings)
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
@click.option("-q", "--quiet", is_flag=True,
              help="No summary on stderr (nor the line saying containers are named as they are now).")
@click.option("--flows", "flows_only", is_flag=True,
              help="Print the file's flows (every TCP, UDP and ICMP conversation, classified) instead of its "
                   "exchanges.")
@click.option("--db", "db_path", metavar="FILE|URL",
              help="Name the containers at both ends as they were at each packet's time, from the container "
                   "inventory a `run` keeps in this database (SQLite file or postgresql:// URL; EYES_DEVINE_DB is "
                   "not read here).")
@click.option("--observer", metavar="NAME",
              help="With --db: the host that captured FILE, whose inventory names the containers (needed when "
                   "the database holds several).")
@click.option("--no-docker", is_flag=True,
              help="Without --db: no container names, even when a Docker Engine answers (by default its running "
                   "containers name the ends, and stderr says so).")
@click.option("--workers", type=click.IntRange(1, MAX_READ_WORKERS), default=1, show_default=True, metavar="N",
              help=f"Processes sharing the file's connections (1 to {MAX_READ_WORKERS}; Linux and macOS): each "
                   "connection's exchanges keep their order, the order across connections may change.")
@security_options
@parsing_options
def read(capture_file: str, ports: str | None, as_json: bool, quiet: bool, flows_only: bool, db_path: str | None,
         observer: str | None, no_docker: bool, workers: int, **flags: Any) -> None:
    """Read a pcap or pcapng FILE and print its HTTP exchanges.

    The same engine as live capture: TCP reassembly (reordering, retransmission,
    loss), HTTP/1.x pairing (keep-alive, pipelining, chunked, 1xx, HEAD),
    HTTP/2 and gRPC over cleartext, and HTTPS with --tls-keylog.
    Credentials in headers and query strings are never printed. A summary of
    counters goes to stderr. A damaged or truncated file prints what was
    readable, then the error, and exits 1.

    Containers are named as `run` does: with --db, as the database's inventory
    says they were at each packet's time (a database that cannot be read, or
    holds no inventory of that host, exits 1); else, when a Docker Engine
    answers, as they are now, which stderr says (not with -q); else not at all.
    """
    from eyes_devine.adapters.pcapfile import CaptureFileError
    from eyes_devine.adapters.store.errors import StoreError
    from eyes_devine.app.naming import Names, NamingError, from_database, from_docker
    from eyes_devine.app.pipeline import http_limits
    from eyes_devine.app.read_workers import WorkerLost, can_fork
    from eyes_devine.app.reader import read_file
    from eyes_devine.core.decode import UnsupportedLinkType
    from eyes_devine.views.safe import safe
    from eyes_devine.views.stdout import ReaderGone
    from eyes_devine.views.summary import summary_line

    database = {"db_path": db_path} if db_path is not None else {}  # EYES_DEVINE_DB, meant for `run`, is not asked
    settings = build_settings(ports=ports, **database, **flags)
    check_key_log(settings, must_exist=True)
    if db_path is not None:
        try:
            names = from_database(settings.db_path, observer_name(observer))
        except (StoreError, NamingError) as error:
            fail(str(error), EXIT_FAILURE)
    elif observer is not None:
        fail("--observer chooses whose container inventory names the file's containers: give --db too")
    elif no_docker:
        names = Names(None)
    else:
        check_docker_host(settings)
        names = from_docker(settings.docker_environment)
    if workers > 1 and not can_fork():
        fail("--workers: more than one needs fork (Linux, macOS); read with one here")
    annotator = annotator_for(settings)  # an unusable --geoip or --blocklist is said before anything is read
    if workers > 1:
        annotator.close()  # each worker makes its own: a reputation thread does not survive a fork

    def make_annotator() -> Any:
        return annotator if workers == 1 else annotator_for(settings)

    if names.note and not quiet:
        click.echo(f"eyes-devine: {safe(names.note)}", err=True)
    try:
        result = read_file(capture_file, settings.ports, make_annotator, as_json, flows_only,
                           progress=not quiet, colour=sys.stdout.isatty(),
                           http_limits=http_limits(settings), containers=names.containers, workers=workers)
    except CaptureFileError as error:
        fail(str(error), EXIT_FAILURE)
    except UnsupportedLinkType as error:
        fail(f"{capture_file}: {error}", EXIT_FAILURE)
    except WorkerLost as error:
        fail(str(error), EXIT_FAILURE)
    except ReaderGone:
        sys.exit(EXIT_OK)  # the reader went away (| head): stop quietly, as tcpdump does
    if not quiet:
        click.echo(summary_line(capture_file, result.frames, result.counters, result.flow_summaries,
                                result.seconds), err=True)
    if result.error is not None:
        fail(str(result.error), EXIT_FAILURE)


@main.command(epilog=ENVIRONMENT_HELP + "\n\n\b\nExit codes:\n  0  stopped by SIGTERM or SIGINT, "
              "nothing lost\n  1  capture, the database or the metrics address failed (refused, in use, or the\n"
              "     database written by another run)\n"
              "  2  bad flag, variable or interface\n"
              "  3  stopped, but records were lost (not stored, not printed with --json, or not\n"
              "     exported over OTLP); the last\n"
              "     line says how many and why")
@capture_options
@docker_options
@store_options
@observer_option
@retention_options
@click.option("--batch-size", type=int, metavar="N",
              help="Most exchanges per SQLite transaction [EYES_DEVINE_BATCH_SIZE; default 500].")
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Log lines on stderr [EYES_DEVINE_LOG_FORMAT].")
@click.option("--stats-interval", default="30", show_default=True, metavar="SECONDS",
              help="Seconds between counter lines in the log (0.1 to 86400).")
@click.option("--json", "as_json", is_flag=True, help="Also print every exchange on stdout as JSON Lines.")
@all_traffic_option
@user_option
@workers_option
@security_options
@parsing_options
@export_options
def run(stats_interval: str, as_json: bool, user: str | None, **flags: Any) -> None:
    """Capture, attribute and store HTTP exchanges until SIGTERM or SIGINT (the headless service).

    Captures on the discovered Docker interfaces (or -i / NETWORK_INTERFACES),
    names the containers at both ends through the Docker API, and keeps the
    last --keep exchanges per container in SQLite for `eyes-devine requests`.
    Logs to stderr: what is captured and with which filter, Docker status,
    a line per batch stored and counters every --stats-interval seconds. The
    last line says how many exchanges were stored and what was lost, and why.
    """
    import asyncio

    from eyes_devine.app.logs import ServiceLog
    from eyes_devine.app.service import ServiceOptions, serve

    settings = build_settings(**flags)
    check_docker_host(settings)
    check_exports(settings)
    account = account_for(user)
    selected, hint = _capture_interfaces(settings)
    log = ServiceLog(sys.stderr, settings.log_format)
    if hint:
        log.warning(hint)
    if settings.tls_keylog is not None and not settings.tls_keylog.exists():
        log.warning(f"--tls-keylog {settings.tls_keylog}: no such file yet; it is read once a client writes it")
    options = ServiceOptions(interfaces=selected, stats_interval=seconds(stats_interval, "--stats-interval"),
                             account=account,
                             annotator=annotator_for(settings, log.warning),
                             json_fd=sys.stdout.fileno() if as_json else None)
    sys.exit(asyncio.run(serve(settings, options, log)))


@main.command(epilog=ENVIRONMENT_HELP)
@capture_options
@docker_options
@store_options
@click.option("--observer", metavar="NAME",
              help="Capturing: this host's name in what it stores [EYES_DEVINE_OBSERVER; default the hostname]. "
                   "--attach: only what this host captured.")
@retention_options
@click.option("--attach", is_flag=True,
              help="Show what a running `eyes-devine run` stores in --db; needs no capture privileges.")
@click.option("-c", "--container", metavar="NAME|ID", help="Only exchanges served or sent by this container.")
@click.option("--flows", "flows_view", is_flag=True,
              help="Show recent flows (DNS, TLS, SSH, ICMP, ...) instead of the latest exchanges; implies "
                   "--all-traffic when capturing.")
@all_traffic_option
@user_option
@workers_option
@security_options
@parsing_options
@export_options
def watch(attach: bool, container: str | None, user: str | None, flows_view: bool, **flags: Any) -> None:
    """The live per-container table: requests, rates, status classes, latency, the latest exchanges.

    Standalone it captures like `run` (same interfaces, filter and database, so
    `requests` sees what it saw); with --attach it follows a running `run`'s
    database instead. -i and --ports narrow what is shown in either mode.
    --flows shows recent flows in the lower table. Ctrl-C leaves it; when
    capturing, a last line says what was stored and what was lost (exit 3 if
    anything was, as for `run`).
    """
    import asyncio

    from eyes_devine.app.watch import WatchFilter, watch_attached, watch_capturing
    from eyes_devine.views.console import make_console
    from eyes_devine.views.live import LiveScreen
    from eyes_devine.views.screen import frame_screen

    if flows_view and not attach:
        flags["all_traffic"] = True
    shown_observer = None
    if attach:  # nothing captured, nothing exported: OTEL_* variables set for the whole host are not read either
        shown_observer = observer_name(flags.pop("observer"))
        if flags.pop("retain") is not None:
            fail("--retain bounds what eyes-devine stores; `watch --attach` stores nothing (give it to the `run` "
                 "you attach to)")
        if flags.pop("workers") is not None:
            fail("--workers shares capture between processes; `watch --attach` captures nothing (give it to the "
                 "`run` you attach to)")
        asked = [flag for flag in ("metrics", "max_routes", "metrics_grace", "otlp", "otlp_sample")
                 if flags.pop(flag) is not None]
        if asked:
            fail(f"--{asked[0].replace('_', '-')} exports what eyes-devine captures; `watch --attach` captures "
                 "nothing (give it to the `run` you attach to)")
    settings = build_settings(**flags)
    check_docker_host(settings)
    check_exports(settings)
    explicit_ports = settings.ports_source != "default"
    view_filter = WatchFilter(container, settings.ports if explicit_ports else (), settings.interfaces or (),
                              shown_observer)
    account = account_for(user)
    if not attach:
        interfaces, _hint = _capture_interfaces(settings)
    console = make_console()
    current: list[Any] = []

    def draw(width: int, height: int) -> Any:
        return frame_screen(current[0], width, height) if current else ""

    with LiveScreen(console, draw) as live:
        def show(frame: Any) -> None:
            current[:] = [frame]
            live.tick()

        try:
            if attach:
                code, message = asyncio.run(watch_attached(settings, view_filter, show, flows_view))
            else:
                code, message = asyncio.run(watch_capturing(settings, interfaces, view_filter, show, account,
                                                            annotator_for(settings), flows_view))
        except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
            code, message = EXIT_OK, None
    if message and code == EXIT_FAILURE:
        fail(message, code)
    if message:  # capturing: the final line, what was stored and what was lost, now that the screen is gone
        click.echo(message, err=True)
    sys.exit(code)


def _capture_interfaces(settings: Settings) -> tuple[tuple[str, ...], str | None]:
    """The interfaces `run` and `watch` capture, as `interfaces` would select them, with the fallback's hint.

    Bad input or nothing to capture: one line and an exit.
    """
    from eyes_devine.app.diagnostics import FilterError, capture_selection

    try:
        found = capture_selection(settings)
    except (ProfileError, UnknownInterfaceError, FilterError) as error:
        fail(str(error))
    if not found.selected:
        fail(found.hint or "no interface to capture; set NETWORK_INTERFACES", EXIT_FAILURE)
    return found.selected, found.hint
