"""`opencx audit`: who viewed, exported, erased or changed what (the server: GET /api/v1/audit)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from opencx.access import audit_entries
from opencx.cli._common import DbOption, console, open_store, resolve_person, settings_for
from opencx.errors import InvalidInput, NotFound
from opencx.profiles import canonical_id


def audit_command(
    person: Annotated[
        str | None,
        typer.Option(help="A customer: profile id (p_…) or KIND:VALUE, e.g. email:ann@x.com."),
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Who: token:NAME, user:EMAIL, or cli.")] = None,
    action: Annotated[
        str | None, typer.Option(help="An action (profile.view), or a prefix ending in '.'.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="From this time on (ISO 8601 with zone, e.g. 2026-11-01T00:00Z)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    db: DbOption = None,
) -> None:
    """Show the audit log: who looked at, exported or erased which customer, and changes."""
    start = None
    if since is not None:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            raise InvalidInput(f"--since must be an ISO 8601 time, got {since!r}") from None
    settings = settings_for(db)
    with open_store(settings) as store:
        target = None
        if person is not None:
            try:
                target = canonical_id(store.con, resolve_person(store, settings, person))
            except NotFound:
                if not person.startswith("p_"):
                    raise
                target = person  # an erased customer's entries stay in the log
        entries = audit_entries(
            store.con, target=target, actor=actor, action=action, since=start, limit=limit
        )
    if as_json:
        for e in entries:
            print(orjson.dumps(e.__dict__).decode())
        return
    table = Table("when (UTC)", "who", "did", "to", "from", "details")
    for e in entries:
        target_text = f"{e.target_kind}:{e.target}" if e.target_kind else (e.target or "")
        details = ", ".join(f"{k}={v}" for k, v in e.details.items())
        table.add_row(
            f"{e.logged_at:%Y-%m-%d %H:%M:%S}", escape(e.actor), escape(e.action),
            escape(target_text), escape(e.client or ""), escape(details),
        )  # fmt: skip
    console.print(table)
