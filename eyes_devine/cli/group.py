"""The `eyes-devine` command group; the commands join it from their modules."""

from __future__ import annotations

import click

from eyes_devine import __version__
from eyes_devine.cli.options import ENVIRONMENT_HELP


@click.group(epilog=ENVIRONMENT_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="eyes-devine")
def main() -> None:
    """See the HTTP every Docker container serves and sends, live, without touching the apps."""
