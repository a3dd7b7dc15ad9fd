"""`opencx backup` and `opencx restore`: a consistent snapshot in one file, restored verified."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opencx.cli._common import DbOption, console, settings_for
from opencx.store import Store
from opencx.store.backup import create_backup, restore_backup


def backup_command(
    to: Annotated[Path, typer.Option("--to", help="Backup file to write (a zip).")],
    db: DbOption = None,
) -> None:
    """Back up the database to one file (while the server runs, use POST /api/v1/admin/backup)."""
    settings = settings_for(db)
    with Store(settings.db, read_only=True) as store:
        manifest = create_backup(store.con, to)
    console.print(
        f"Backed up {settings.db} to {to}: schema version {manifest.schema_version}, "
        f"{manifest.events:,} events, {sum(manifest.tables.values()):,} rows in "
        f"{len(manifest.tables)} tables.",
        highlight=False,
        soft_wrap=True,
    )


def restore_command(
    file: Annotated[Path, typer.Argument(help="Backup file (from `opencx backup`).")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database that already holds data.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Restore a backup into the database file, verified and migrated forward."""
    settings = settings_for(db)
    report = restore_backup(file, settings.db, force=force)
    rows = sum(report.tables.values())
    console.print(
        f"Restored {file} into {report.path}: {report.tables.get('events', 0):,} events, "
        f"{rows:,} rows checked against the manifest; schema version "
        f"{report.backup_schema_version} → {report.schema_version}.",
        highlight=False,
        soft_wrap=True,
    )
