"""`opencx privacy ...`: erase, anonymise, export a person; purge a time range; suppressions.

These open the database directly, so the server must be stopped; on a running server
use the API (`/api/v1/privacy/...`), which does the same through the server's writer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from opencx.cli._common import DbOption, console, handles_errors, open_store, settings_for
from opencx.errors import InvalidInput
from opencx.ingest import Ingestor
from opencx.privacy import (
    ErasureReport,
    anonymise_person,
    erase_person,
    export_person,
    list_suppressions,
    purge_events,
)

privacy_app = typer.Typer(
    help="Customers' rights: erase, anonymise, export; purge leaked data.", no_args_is_help=True
)
_BY = "cli"

Identifier = Annotated[
    str, typer.Argument(help="KIND:VALUE (e.g. email:jane@example.com) or a profile id.")
]
Reason = Annotated[str, typer.Option(help="Why (kept with the suppression and the report).")]


@privacy_app.command("erase")
@handles_errors
def privacy_erase(
    identifier: Identifier, reason: Reason = "data subject request", db: DbOption = None
) -> None:
    """Delete everything about a person in every table; drop their future events."""
    _on_person(erase_person, identifier, reason, db)


@privacy_app.command("anonymise")
@handles_errors
def privacy_anonymise(
    identifier: Identifier, reason: Reason = "data subject request", db: DbOption = None
) -> None:
    """Keep a person's events for aggregates, without anything that identifies them."""
    _on_person(anonymise_person, identifier, reason, db)


def _on_person(action: Callable[..., Any], identifier: str, reason: str, db: Path | None) -> None:
    """Erase or anonymise one person through the writer, and print the report."""
    settings = settings_for(db)
    with open_store(settings) as store:
        report = action(Ingestor(store, settings), identifier, by=_BY, reason=reason)
    _print_report(report)


@privacy_app.command("export")
@handles_errors
def privacy_export(
    identifier: Identifier,
    to: Annotated[Path, typer.Option("--to", help="Zip file to write.")],
    db: DbOption = None,
) -> None:
    """Everything about a person, as JSON and CSV files in one zip."""
    settings = settings_for(db)
    with open_store(settings) as store:
        data = export_person(store.con, identifier, settings)
    try:
        to.write_bytes(data)
    except OSError as exc:
        raise InvalidInput(f"--to {to}: cannot write the file: {exc.strerror}") from None
    console.print(f"Exported to {escape(str(to))} ({len(data):,} bytes).", highlight=False)


def _when(value: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{option} {value!r} is not an ISO 8601 time (e.g. 2026-11-24T10:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{option} {value!r} must carry a time zone (e.g. Z or +01:00)")
    return parsed


@privacy_app.command("purge")
@handles_errors
def privacy_purge(
    from_: Annotated[str, typer.Option("--from", help="Start (received), e.g. 2026-11-24T10:00Z.")],
    to: Annotated[str, typer.Option("--to", help="End (received, exclusive).")],
    source: Annotated[str | None, typer.Option(help="Only events of this source.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, delete nothing.")] = False,
    db: DbOption = None,
) -> None:
    """Delete the events received in a time range, then rebuild identity and profiles."""
    settings = settings_for(db)
    start, end = _when(from_, "--from"), _when(to, "--to")
    with open_store(settings) as store:
        report = purge_events(
            Ingestor(store, settings), start=start, end=end, source=source, by=_BY,
            dry_run=dry_run,
        )  # fmt: skip
    verb = "Would purge" if dry_run else "Purged"
    console.print(
        f"{verb} {report.events:,} events and {report.failed_events:,} failed events "
        f"({report.profiles_touched:,} profiles touched); identities "
        f"{report.identities_before:,} -> {report.identities_after:,}.",
        highlight=False,
    )


@privacy_app.command("suppressions")
@handles_errors
def privacy_suppressions(
    limit: Annotated[int, typer.Option(help="Most rows to show.")] = 100, db: DbOption = None
) -> None:
    """Erased identifiers (salted hashes) and the late events each has dropped."""
    with open_store(settings_for(db)) as store:
        rows = list_suppressions(store.con, limit=limit)
    table = Table("hash", "kind", "erasure", "created (UTC)", "by", "dropped", "last dropped")
    for s in rows:
        last = f"{s.last_dropped_at:%Y-%m-%d %H:%M}" if s.last_dropped_at else ""
        table.add_row(
            s.identifier_hash[:16], s.kind, s.erasure_id or "", f"{s.created_at:%Y-%m-%d %H:%M}",
            escape(s.created_by), f"{s.dropped:,}", last,
        )  # fmt: skip
    console.print(table)


def _print_report(report: ErasureReport) -> None:
    body: dict[str, Any] = report.to_dict()
    state = "verified: nothing left" if report.verified else f"{report.remaining} rows LEFT"
    console.print(
        f"{report.kind} {report.id}: {len(report.profiles)} profiles, "
        f"{len(report.identifiers)} identifiers ({report.suppressed} newly suppressed); {state}.",
        highlight=False,
    )
    table = Table("table", "removed", "rewritten")
    for name in sorted({*body["removed"], *body["rewritten"]}):
        removed, rewritten = body["removed"].get(name, 0), body["rewritten"].get(name, 0)
        if removed or rewritten:
            table.add_row(name, f"{removed:,}", f"{rewritten:,}")
    console.print(table)
    if not report.verified:
        for ident, per_table in report.verification.items():
            left = {t: n for t, n in per_table.items() if n}
            if left:
                console.print(f"  {ident[:16]}: {left}", highlight=False)
