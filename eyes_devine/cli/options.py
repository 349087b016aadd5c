"""What every command shares: one-line failures, Settings from flags and environment, the common flags."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from eyes_devine.config import ENVIRONMENT_VARIABLES, ConfigError, Settings, parse_seconds
from eyes_devine.views.safe import safe

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

ENVIRONMENT_HELP = "\b\nEnvironment:\n" + "\n".join(
    f"  {name:<23} {text}" for name, text in ENVIRONMENT_VARIABLES.items()
)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """One clear line on stderr and a non-zero exit: the only way commands report bad input.

    The message may quote outside text (a file name, Docker's answer): escaped, it stays one inert line.
    """
    click.echo(f"eyes-devine: {safe(message)}", err=True)
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
        help="Interface to capture; repeat for more; `any`: every interface (Linux). Overrides discovery "
             "[NETWORK_INTERFACES=a,b, or NETWORK_INTERFACE].",
    )(command)
    return command


def build_settings(**flags: Any) -> Settings:
    """Settings from the flags given and the environment; a bad value is one line and exit 2."""
    uses_database = "db_path" in flags
    exports = "metrics" in flags  # a command with the export flags: the OTEL_* variables count too
    flags = {name: value for name, value in flags.items() if value is not None}
    is_root = os.geteuid() == 0 if hasattr(os, "geteuid") else False
    try:
        settings = Settings.build(os.environ, is_root=is_root, exports=exports, **flags)
    except ConfigError as error:
        fail(str(error))
    if uses_database:
        from eyes_devine.adapters.store.postgres import check_url, is_postgres_url

        if is_postgres_url(settings.db_path):
            from eyes_devine.adapters.store.errors import StoreError

            try:
                check_url(settings.db_path)
            except StoreError as error:
                fail(f"--db: {error}")
        elif os.path.isdir(settings.db_path):  # a wrong argument, not a database failing
            from eyes_devine.adapters.store.files import a_directory

            fail(f"--db: {a_directory(Path(settings.db_path))}")
    check_key_log(settings, must_exist=False)
    if settings.spool is not None:
        from eyes_devine.adapters.store.spool import spool_problem

        problem = spool_problem(settings.spool, os.geteuid() if hasattr(os, "geteuid") else 0)
        if problem:
            fail(f"--spool {settings.spool}: {problem}")
    return settings


def check_docker_host(settings: Settings) -> None:
    """For the commands that ask Docker: a DOCKER_HOST that cannot be an address is bad input, one line and exit 2.

    An Engine that does not answer is not: that is reported, and capture goes on without container names.
    """
    from eyes_devine.adapters.docker import DockerHostError
    from eyes_devine.adapters.docker import check_docker_host as check

    try:
        check(settings.docker_environment)
    except DockerHostError as error:
        fail(str(error))


def docker_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Flags of the commands that attribute exchanges to containers."""
    return click.option(
        "--no-follow-docker-ports", "follow_docker_ports", is_flag=True, default=True, flag_value=False,
        help="Capture only --ports; by default ports containers expose or publish join the filter as they start.",
    )(command)


def workers_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--workers", type=int, metavar="N",
        help="Capture worker processes sharing each interface by flow (Linux PACKET_FANOUT), 1 to 64; the records "
             "come together in one process [EYES_DEVINE_WORKERS; default half the cores, at most 8].",
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
    """Rules, GeoIP and IP reputation: what attacks look like, where public peers are, whether they are hostile."""
    command = click.option(
        "--rules", "rules_path", metavar="FILE",
        help="TOML file of suspicious-request rules added to the built-in ones (format: the README's \"Your own "
             "rules\") [EYES_DEVINE_RULES].",
    )(command)
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


def parsing_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Bounds of HTTP parsing, and TLS secrets, for the commands that parse traffic."""
    command = click.option(
        "--tls-keylog", metavar="FILE",
        help="Decrypt TLS with this NSS key log (the file SSLKEYLOGFILE names for curl, browsers, Node, Python, Go; "
             "re-read as it grows): TLS 1.2 (ECDHE) and 1.3 with AES-GCM or ChaCha20-Poly1305. Adds 443 and 8443 "
             "to the default ports. The file is as secret as the keys [EYES_DEVINE_TLS_KEYLOG].",
    )(command)
    return click.option(
        "--max-header-bytes", type=int, metavar="N",
        help="Most bytes of one HTTP message head; a longer one is flagged oversized and skipped "
             "[EYES_DEVINE_MAX_HEADER_BYTES; default 65536].",
    )(command)


def check_key_log(settings: Settings, must_exist: bool) -> None:
    """A --tls-keylog that cannot be read is one line and exit 2 (`read` needs it to exist; capture may wait for
    it: a client creates it with its first connection)."""
    if settings.tls_keylog is None:
        return
    from eyes_devine.adapters.keylog_file import KeyLogFileError
    from eyes_devine.adapters.keylog_file import check_key_log as check

    try:
        check(settings.tls_keylog, must_exist)
    except KeyLogFileError as error:
        fail(f"--tls-keylog {error}")


def seconds(value: str, what: str) -> float:
    """A number of seconds from a flag; anything else is one line and exit 2."""
    try:
        return parse_seconds(value, what)
    except ConfigError as error:
        fail(str(error))


def store_options(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db", "db_path", metavar="FILE|URL",
        help="SQLite database file, not a link (writers also refuse a directory others can write), or a "
             "postgresql://USER:PASSWORD@HOST:PORT/DB URL many hosts share [EYES_DEVINE_DB; "
             "default ~/.local/share/eyes-devine/exchanges.db, as root /var/lib/eyes-devine/exchanges.db].",
    )(command)


def observer_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`run`: the name stored with what this host captures, and where batches wait while the database is away."""
    command = click.option(
        "--spool", metavar="FILE",
        help="While the database cannot be reached, batches wait in memory, then in this file, and are sent when "
             "it answers; a later run sends what is left in it [EYES_DEVINE_SPOOL; default: memory only].")(command)
    return click.option(
        "--observer", metavar="NAME",
        help="This host's name in every record it stores, so many hosts can share one database "
             "[EYES_DEVINE_OBSERVER; default the hostname].")(command)


def observer_filter(command: Callable[..., Any]) -> Callable[..., Any]:
    """The readers: only what one host captured."""
    return click.option("--observer", metavar="NAME", help="Only what this host captured (its --observer name).")(
        command)


def observer_name(flag: str | None) -> str | None:
    """A reader's --observer, checked as `run` checks its own; bad input is one line and exit 2."""
    if flag is None:
        return None
    from eyes_devine.config import parse_observer

    try:
        return parse_observer(flag, "--observer")
    except ConfigError as error:
        fail(str(error))


def retention_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """How much of the record the database keeps (`run`, capturing `watch`): per container, and for how long."""
    command = click.option(
        "--retain", metavar="DURATION",
        help="Also delete stored exchanges and flows older than this, and the container inventory's tenures that "
             "ended before then (90m, 12h, 7d) [EYES_DEVINE_RETAIN; default: "
             "no time bound].")(command)
    return click.option("--keep", type=int, metavar="N",
                        help="Exchanges kept per container, and per observer in a database many hosts share "
                             "[EYES_DEVINE_KEEP; default 1000].")(command)


def export_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Where the record goes besides the database: Prometheus /metrics, OTLP spans (`run`, capturing `watch`)."""
    command = click.option(
        "--otlp-sample", metavar="RATIO",
        help="Share of exchanges exported as spans, 0 to 1; errors and alerts always are "
             "[EYES_DEVINE_OTLP_SAMPLE; default 1].",
    )(command)
    command = click.option(
        "--otlp", metavar="URL",
        help="Export every exchange as OpenTelemetry spans to this OTLP collector, e.g. http://collector:4318 "
             "[OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* variables].",
    )(command)
    command = click.option(
        "--metrics-grace", metavar="SECONDS",
        help="Seconds a removed container's series stay in /metrics [default 300].",
    )(command)
    command = click.option(
        "--max-routes", type=int, metavar="N",
        help="Routes per container in metric labels; the rest count as /{other} [EYES_DEVINE_MAX_ROUTES; "
             "default 100].",
    )(command)
    return click.option(
        "--metrics", metavar="[ADDR:]PORT",
        help="Serve Prometheus metrics at http://ADDR:PORT/metrics; a bare PORT listens on 127.0.0.1 only, "
             "0.0.0.0:PORT on every address [EYES_DEVINE_METRICS].",
    )(command)


def check_exports(settings: Settings) -> None:
    """An OTLP protocol whose exporter is not installed is bad input: one line and exit 2, before capture."""
    if settings.otlp is None:
        return
    from eyes_devine.adapters.otlp import OtlpError, check_protocol

    try:
        check_protocol(settings.otlp.protocol)
    except OtlpError as error:
        fail(str(error))
