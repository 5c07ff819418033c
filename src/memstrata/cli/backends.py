"""Commands for production backends: ``memstrata migrate --store postgresql://…``."""

from __future__ import annotations

import click

from memstrata.cli.base import settings
from memstrata.errors import ConfigurationError
from memstrata.maintenance import migrate_store


@click.command(name="migrate")
@click.option("--store", "store_url", default=None,
              help="PostgreSQL URL, e.g. postgresql://user:pw@host:5432/db (default: the global --store)")
@click.option("--dim", type=int, default=None,
              help="also fix the vector size (otherwise the first open with an embedder does)")
@click.option("--connect-timeout", type=float, default=5.0, show_default=True, help="seconds")
@click.pass_context
def migrate_cmd(ctx: click.Context, store_url: str | None, dim: int | None, connect_timeout: float) -> None:
    """Create or upgrade the schema of a PostgreSQL store. Safe to run again: applied steps are skipped."""
    url = store_url or settings(ctx).store
    if not url:
        raise ConfigurationError("migrate: give --store postgresql://… (or set MEMSTRATA_STORE)")
    before, version = migrate_store(url, dim=dim, connect_timeout=connect_timeout)
    applied = version - before
    note = f"applied {applied} migration(s)" if applied else "already up to date"
    click.echo(f"schema version {version}: {note}")


COMMANDS = (migrate_cmd,)


def register(group: click.Group) -> None:
    """Add these commands to ``group`` (the ``memstrata`` group, or a test's own)."""
    for command in COMMANDS:
        group.add_command(command)
