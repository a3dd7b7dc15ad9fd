"""`opencx export parquet`: the event log as day-partitioned Parquet for another engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opencx.cli._common import DbOption, console, handles_errors, settings_for
from opencx.errors import InvalidInput
from opencx.store import Store
from opencx.warehouse import sync_parquet

export_app = typer.Typer(
    help="Copies of the data for other engines (Spark, Trino, ...).", no_args_is_help=True
)


@export_app.command("parquet")
@handles_errors
def parquet_command(
    to: Annotated[Path, typer.Option("--to", help="Folder of the export (created if missing).")],
    db: DbOption = None,
) -> None:
    """Write the event log (by day), profiles and computed traits as Parquet, incrementally.

    Only day partitions that changed since the last run are rewritten (new or late
    events, merges, erasures); a run with nothing new writes nothing. While the server
    runs, it refreshes the export itself when OPENCX_WAREHOUSE names a Spark engine.
    """
    if not str(to).strip():
        raise InvalidInput("--to must name a folder for the export")
    settings = settings_for(db)
    with Store(settings.db, read_only=True) as store:
        report = sync_parquet(store.con, to)
    if not report.wrote_anything:
        console.print(
            f"{to} is up to date: {report.events:,} events in {report.unchanged_days:,} days.",
            highlight=False,
            soft_wrap=True,
        )
        return
    tables = ", ".join(report.written_tables) or "no other tables"
    console.print(
        f"Exported {report.events:,} events to {to}: {len(report.written_days):,} day "
        f"partitions written, {len(report.removed_days):,} removed, "
        f"{report.unchanged_days:,} unchanged; rewrote {tables}.",
        highlight=False,
        soft_wrap=True,
    )
