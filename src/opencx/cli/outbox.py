"""`opencx outbox ...`: the messages OpenCX sends, delivered now, listed, or retried."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.box import SIMPLE_HEAD
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
from opencx.ingest import Ingestor
from opencx.orchestrate.adapters import adapters_from_settings
from opencx.orchestrate.outbox import (
    OUTBOX_STATUSES,
    deliver_due,
    list_outbox,
    outbox_counts,
    release_leases,
    retry,
)

outbox_app = typer.Typer(
    help="Outgoing messages: delivery, retries and the dead-letter state.", no_args_is_help=True
)


@outbox_app.command("list")
@handles_errors
def outbox_list(
    status: Annotated[
        str | None, typer.Option(help=f"Only messages in one state: {', '.join(OUTBOX_STATUSES)}.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Most messages to show.")] = 50,
    db: DbOption = None,
) -> None:
    """Messages in the outbox, newest first, with the counts per state."""
    with open_store(settings_for(db)) as store:
        items = list_outbox(store.con, status=status, limit=limit)
        counts = outbox_counts(store.con)
    console.print(", ".join(f"{n:,} {state}" for state, n in counts.items()), highlight=False)
    table = Table(box=SIMPLE_HEAD)
    table.add_column("id", no_wrap=True)  # whole, to copy into `opencx outbox retry`
    for name in ("state", "tries", "action", "via"):
        table.add_column(name)
    table.add_column("when (UTC)", no_wrap=True)  # next attempt, or delivery
    for item in items:
        when = item.delivered_at or item.next_attempt_at
        table.add_row(
            item.id, item.status, str(item.attempts), escape(item.action),
            f"{item.adapter} ({item.channel})", f"{when:%m-%d %H:%M}",
        )  # fmt: skip
    console.print(table)
    for item in items:
        if item.last_error:
            console.print(f"  {item.id}: {escape(item.last_error)}", highlight=False)


@outbox_app.command("deliver")
@handles_errors
def outbox_deliver(
    limit: Annotated[int, typer.Option(help="Most messages to send in this round.")] = 1000,
    db: DbOption = None,
) -> None:
    """Send the messages that are due now (one round, as the server does)."""
    settings = settings_for(db)
    now = datetime.now(UTC)
    with open_store(settings) as store:
        # This process has the database to itself: a message still `sending` was being
        # sent by a process that died, so it is due again (the receiver drops the copy).
        released = release_leases(store.con, now)
        adapters = adapters_from_settings(settings)
        with progress_bar("Delivering") as update:
            report = deliver_due(
                Ingestor(store, settings), adapters, now,
                limit=limit, max_attempts=settings.delivery_max_attempts,
                backoff_s=settings.delivery_backoff_s, progress=update,
            )  # fmt: skip
    if released:
        console.print(f"{released} interrupted deliveries were due again.")
    console.print(
        f"{report.delivered} delivered, {report.retried} to retry, {report.dead} dead",
        highlight=False,
    )
    for adapter, n in report.waiting_for.items():
        hint = " (set smtp.host)" if adapter == "email" else ""
        console.print(
            f"{n} wait for adapter {escape(adapter)}, which is not configured{hint}",
            highlight=False,
        )
    for item in report.items:
        if item.status == "dead":
            console.print(f"  dead {item.id}: {escape(item.last_error or '')}", highlight=False)


@outbox_app.command("retry")
@handles_errors
def outbox_retry(item_id: str, db: DbOption = None) -> None:
    """Give a dead message a new set of attempts, due now."""
    with open_store(settings_for(db)) as store:
        item = retry(store.con, item_id, datetime.now(UTC))
    console.print(f"{item.id} is pending again (last error: {escape(item.last_error or '-')}).")
