"""`opencx segments ...`: saved segments, refreshed on demand (the server: on a schedule)."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.markup import escape
from rich.table import Table

from opencx.cli._common import (
    DbOption,
    console,
    handles_errors,
    open_store,
    progress_bar,
    settings_for,
)
from opencx.metrics import write_effort_traits
from opencx.segments import refresh_segments, saved_segments
from opencx.warehouse import embedded

segments_app = typer.Typer(help="Saved segments and their members.", no_args_is_help=True)


@segments_app.command("refresh")
@handles_errors
def refresh(db: DbOption = None) -> None:
    """Write every profile's effort traits, then every saved segment's members and size."""
    with open_store(settings_for(db)) as store:
        warehouse = embedded(store.con)
        with progress_bar("refreshing segments") as update:
            result = refresh_segments(
                store.con, warehouse, datetime.now(UTC), traits=[write_effort_traits],
                progress=update,
            )  # fmt: skip
        descriptions = {s.name: s.rule for s in saved_segments(store.con)}
    table = Table("segment", "members", "rule")
    for name, size in result.sizes.items():
        table.add_row(escape(name), f"{size:,}", escape(descriptions.get(name, "")))
    for name, reason in result.failed.items():
        table.add_row(escape(name), "[red]kept old[/]", f"[red]{escape(reason)}[/]")
    console.print(table)
    console.print(
        f"{len(result.sizes)} segments refreshed, {result.trait_rows:,} computed traits written "
        f"in {result.seconds:.2f} s."
    )
    if result.failed:
        raise typer.Exit(1)
