"""The `eyes-devine` command: parses flags, builds Settings, hands off. Nothing else lives here.

Exit codes: 0 success, 1 a runtime failure (capture, file, daemon), 2 bad input
(a flag, a variable, an interface name, a profile).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from eyes_devine import __version__
from eyes_devine.config import ENVIRONMENT_VARIABLES, ConfigError, Settings
from eyes_devine.discovery import UnknownInterfaceError
from eyes_devine.profiles import ProfileError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

ENVIRONMENT_HELP = "\b\nEnvironment:\n" + "\n".join(
    f"  {name:<20} {text}" for name, text in ENVIRONMENT_VARIABLES.items()
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
    try:
        return Settings.build(os.environ, **flags)
    except ConfigError as error:
        fail(str(error))


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
    from eyes_devine.diagnostics import gather
    from eyes_devine.ui.console import make_console
    from eyes_devine.ui.interfaces import render_report

    settings = build_settings(**flags)
    try:
        report = gather(settings)
    except (ProfileError, UnknownInterfaceError) as error:
        fail(str(error))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        render_report(make_console(), report)


@main.command(epilog=ENVIRONMENT_HELP)
@click.argument("capture_file", metavar="FILE")
@click.option("--ports", metavar="LIST",
              help="TCP ports carrying HTTP; other TCP is skipped and counted [EYES_DEVINE_PORTS].")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one exchange per line, instead of the table.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
def read(capture_file: str, ports: str | None, as_json: bool, quiet: bool) -> None:
    """Read a pcap or pcapng FILE and print its HTTP exchanges.

    The same engine as live capture: TCP reassembly (reordering, retransmission,
    loss) and HTTP/1.x pairing (keep-alive, pipelining, chunked, 1xx, HEAD).
    Credentials in headers and query strings are never printed. A summary of
    counters goes to stderr. A damaged or truncated file prints what was
    readable, then the error, and exits 1.
    """
    from eyes_devine.decode import UnsupportedLinkType
    from eyes_devine.output import exchange_writer, summary_line
    from eyes_devine.pcapfile import CaptureFileError
    from eyes_devine.pipeline import read_capture
    from eyes_devine.ui.console import make_console
    from eyes_devine.ui.progress import file_progress

    settings = build_settings(ports=ports)
    # Our own buffer: one write per line would dominate a large read (and PYTHONUNBUFFERED may be set).
    out = open(sys.stdout.fileno(), "w", buffering=1 << 16, encoding="utf-8", errors="replace", closefd=False)
    emit = exchange_writer(out, as_json, colour=sys.stdout.isatty())
    stderr = make_console(stderr=True)
    try:
        if stderr.is_terminal and not quiet:
            with file_progress(stderr, os.path.basename(capture_file)) as progress:
                result = read_capture(capture_file, settings.ports, emit, progress)
        else:
            result = read_capture(capture_file, settings.ports, emit)
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
        click.echo(summary_line(capture_file, result), err=True)
    if result.error is not None:
        fail(str(result.error), EXIT_FAILURE)
