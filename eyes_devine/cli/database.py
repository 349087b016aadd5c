"""`eyes-devine db migrate`: bring a database's schema to this version, once, as its owner."""

from __future__ import annotations

import click

from eyes_devine.cli.group import main
from eyes_devine.cli.options import ENVIRONMENT_HELP, EXIT_FAILURE, build_settings, fail, store_options


@main.group()
def db() -> None:
    """Look after the database `run` writes."""


@db.command(epilog=ENVIRONMENT_HELP + "\n\n\b\nExit codes:\n  0  the schema is current\n  1  the database "
            "could not be reached or changed (a newer schema, too few privileges)\n  2  bad flag")
@store_options
def migrate(db_path: str | None) -> None:
    """Create or upgrade the tables to this version's schema.

    \b
    For a PostgreSQL database many hosts share, run it once as the owner of
    the database (or of the schema in the URL's search_path); the hosts'
    `run` can then use a writer role that creates nothing (see the README).
    `run` migrates by itself when its role may. A database from a newer
    eyes-devine is refused, never downgraded.
    """
    import asyncio

    from eyes_devine.adapters.store.errors import StoreError
    from eyes_devine.adapters.store.opener import display, migrate_database

    settings = build_settings(db_path=db_path)
    try:
        before, after = asyncio.run(migrate_database(settings.db_path))
    except StoreError as error:
        fail(str(error), EXIT_FAILURE)
    where = display(settings.db_path)
    click.echo(f"{where}: schema {after}, already current" if before == after else
               f"{where}: schema {before} -> {after}")
