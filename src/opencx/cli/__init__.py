"""The `opencx` command line: thin commands over the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from opencx import __version__, access
from opencx.access import (
    add_source,
    create_token,
    list_sources,
    list_tokens,
    revoke_source,
    revoke_token,
    rotate_write_key,
)
from opencx.cli._common import (
    DbOption,
    console,
    handles_errors,
    open_store,
    progress_bar,
    resolve_person,
    settings_for,
)
from opencx.cli.audit import audit_command
from opencx.cli.backup import backup_command, restore_command
from opencx.cli.export import export_app
from opencx.cli.journeys import journeys_app, touchpoints_app
from opencx.cli.metrics import alerts_command, consistency_command, drivers_command, metrics_app
from opencx.cli.orchestrate import (
    actions_app,
    decisions_command,
    nba_command,
    policy_app,
    tasks_command,
    triggers_app,
)
from opencx.cli.outbox import outbox_app
from opencx.cli.privacy import privacy_app
from opencx.cli.segments import segments_app
from opencx.cli.voc import cases_app, surveys_app
from opencx.errors import InvalidInput
from opencx.identity import parse_identifier, rebuild, split
from opencx.ingest import Ingestor, SourceContext, import_file, parse_mapping, replay_failed
from opencx.profiles import get_profile, refresh_profiles, timeline
from opencx.store import Store
from opencx.types import CHANNELS, ROLES
from opencx.voc import open_cases_from_answers

app = typer.Typer(
    help="OpenCX: customer-experience management on one interaction log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sources_app = typer.Typer(
    help="Systems that send events, and their write keys.", no_args_is_help=True
)
tokens_app = typer.Typer(help="API tokens for the read API.", no_args_is_help=True)
identity_app = typer.Typer(help="Identity resolution: rebuild and split.", no_args_is_help=True)
users_app = typer.Typer(help="People who sign in to the web app.", no_args_is_help=True)
failed_app = typer.Typer(help="Events that failed validation.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")
app.add_typer(tokens_app, name="tokens")
app.add_typer(identity_app, name="identity")
app.add_typer(failed_app, name="failed-events")
app.add_typer(users_app, name="users")
app.add_typer(journeys_app, name="journeys")
app.add_typer(touchpoints_app, name="touchpoints")
app.add_typer(surveys_app, name="surveys")
app.add_typer(cases_app, name="cases")
app.add_typer(metrics_app, name="metrics")
app.add_typer(outbox_app, name="outbox")
app.add_typer(privacy_app, name="privacy")
app.command("alerts")(handles_errors(alerts_command))
app.command("drivers")(handles_errors(drivers_command))
app.command("consistency")(handles_errors(consistency_command))
app.add_typer(segments_app, name="segments")
app.add_typer(triggers_app, name="triggers")
app.add_typer(policy_app, name="policy")
app.add_typer(actions_app, name="actions")
app.command("nba")(handles_errors(nba_command))
app.command("decisions")(handles_errors(decisions_command))
app.command("tasks")(handles_errors(tasks_command))
app.command("audit")(handles_errors(audit_command))
app.command("backup")(handles_errors(backup_command))
app.command("restore")(handles_errors(restore_command))
app.add_typer(export_app, name="export")


@app.command()
def version() -> None:
    """Print the OpenCX version."""
    console.print(__version__)


@app.command()
@handles_errors
def serve(
    db: DbOption = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on [default 127.0.0.1].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port [default 8000].")] = None,
) -> None:
    """Serve the ingestion API, the read API and the web app."""
    import uvicorn

    from opencx.api import create_app

    settings = settings_for(db, host=host, port=port)
    store = Store(settings.db)  # opened here so a locked database fails before binding
    console.print(
        f"OpenCX {__version__} on http://{settings.host}:{settings.port}  (database {settings.db})"
    )
    uvicorn.run(
        create_app(settings, store),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
    )
    store.close()


# -- sources -----------------------------------------------------------------------
@sources_app.command("add")
@handles_errors
def sources_add(
    name: str,
    channel: Annotated[str, typer.Option(help=f"Default channel: {', '.join(CHANNELS)}.")],
    db: DbOption = None,
) -> None:
    """Create a source; its write key is printed on the last line (shown only once)."""
    with open_store(settings_for(db)) as store:
        source, key = add_source(store.con, name, channel)
    console.print(f"Source [bold]{source.name}[/] (channel {source.channel}). Write key:")
    print(key)


@sources_app.command("list")
@handles_errors
def sources_list(db: DbOption = None) -> None:
    """List sources with their channel and write-key hint."""
    with open_store(settings_for(db)) as store:
        rows = list_sources(store.con)
    table = Table("name", "channel", "write key", "created", "status")
    for s in rows:
        status = "active" if s.active else f"revoked {s.revoked_at:%Y-%m-%d}"
        table.add_row(s.name, s.channel, s.write_key_hint, f"{s.created_at:%Y-%m-%d %H:%M}", status)
    console.print(table)


@sources_app.command("rotate")
@handles_errors
def sources_rotate(name: str, db: DbOption = None) -> None:
    """Give a source a new write key (printed on the last line); the old one stops working."""
    with open_store(settings_for(db)) as store:
        key = rotate_write_key(store.con, name)
    console.print(f"New write key for [bold]{name}[/]:")
    print(key)


@sources_app.command("revoke")
@handles_errors
def sources_revoke(name: str, db: DbOption = None) -> None:
    """Stop accepting events from a source."""
    with open_store(settings_for(db)) as store:
        revoke_source(store.con, name)
    console.print(f"Source {name} revoked.")


# -- tokens ------------------------------------------------------------------------
@tokens_app.command("create")
@handles_errors
def tokens_create(
    name: str,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "agent",
    db: DbOption = None,
) -> None:
    """Create an API token; the token is printed on the last line (shown only once)."""
    with open_store(settings_for(db)) as store:
        token, secret = create_token(store.con, name, role)
    console.print(f"Token [bold]{escape(token.name)}[/] ({token.id}, role {token.role}):")
    print(secret)


@tokens_app.command("list")
@handles_errors
def tokens_list(db: DbOption = None) -> None:
    """List API tokens (never their secrets)."""
    with open_store(settings_for(db)) as store:
        rows = list_tokens(store.con)
    table = Table("id", "name", "role", "created", "status")
    for t in rows:
        status = "active" if t.revoked_at is None else f"revoked {t.revoked_at:%Y-%m-%d}"
        table.add_row(t.id, escape(t.name), t.role, f"{t.created_at:%Y-%m-%d %H:%M}", status)
    console.print(table)


@tokens_app.command("revoke")
@handles_errors
def tokens_revoke(token_id: str, db: DbOption = None) -> None:
    """Revoke an API token by id."""
    with open_store(settings_for(db)) as store:
        revoke_token(store.con, token_id)
    console.print(f"Token {token_id} revoked.")


# -- users -------------------------------------------------------------------------
@users_app.command("add")
@handles_errors
def users_add(
    email: str,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "agent",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Add a person who signs in to the web app (asks for the password)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with open_store(settings_for(db)) as store:
        user = access.add_user(store.con, email, role, password)
    console.print(f"User {user.email} added with role {user.role}.")


@users_app.command("list")
@handles_errors
def users_list(db: DbOption = None) -> None:
    """List the people who can sign in."""
    with open_store(settings_for(db)) as store:
        rows = access.list_users(store.con)
    table = Table("email", "role", "created", "status")
    for u in rows:
        status = "active" if u.disabled_at is None else f"disabled {u.disabled_at:%Y-%m-%d}"
        table.add_row(u.email, u.role, f"{u.created_at:%Y-%m-%d %H:%M}", status)
    console.print(table)


@users_app.command("disable")
@handles_errors
def users_disable(email: str, db: DbOption = None) -> None:
    """Stop someone from signing in and end their sessions."""
    with open_store(settings_for(db)) as store:
        access.disable_user(store.con, email)
    console.print(f"User {email} disabled.")


# -- import ------------------------------------------------------------------------
@app.command("import")
@handles_errors
def import_(
    file: Annotated[Path, typer.Argument(help="JSONL (Segment spec), CSV, TSV or Parquet file.")],
    source: Annotated[str, typer.Option(help="Source the rows come from (`opencx sources add`).")],
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="TARGET=COLUMN for CSV/Parquet, e.g. --map event=interaction_type "
            "--map email=customer_email --map timestamp=called_at --map properties.topic=topic",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="TARGET=VALUE on every row, e.g. a survey export: --set 'event=Survey "
            "Responded' --set properties.survey_type=nps --set properties.survey_id=nps-q3",
        ),
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl, csv, tsv or parquet.")] = None,
    db: DbOption = None,
) -> None:
    """Import a file of interactions (call-center logs, store visits, CRM exports, survey
    exports); unhappy survey answers open closed-loop cases."""
    settings = settings_for(db)
    mapping = parse_mapping(map_ or [])
    constants = parse_mapping(set_ or [])
    with open_store(settings) as store:
        from opencx.access import get_source

        src = get_source(store.con, source)
        ingestor = Ingestor(store, settings)
        with progress_bar(f"importing {escape(file.name)}") as update:
            report = import_file(
                ingestor, file, SourceContext(src.name, src.channel), mapping=mapping,
                constants=constants, fmt=fmt, progress=update,
            )  # fmt: skip
        refresh_profiles(store.con)
        cases = open_cases_from_answers(
            ingestor, queue=settings.case_queue, sla_hours=settings.case_sla_hours
        )
    console.print(
        f"{report.rows} rows: {report.accepted} stored, {report.duplicates} already stored, "
        f"{report.rejected} rejected (see `opencx failed-events list`)"
        + (f"; {cases} closed-loop cases opened" if cases else "")
    )


# -- identity ----------------------------------------------------------------------
@identity_app.command("rebuild")
@handles_errors
def identity_rebuild(db: DbOption = None) -> None:
    """Recompute identity resolution from the event log (same rules, same result)."""
    settings = settings_for(db)
    with open_store(settings) as store, progress_bar("replaying events") as update:
        report = rebuild(store.con, settings.identity, update)
        refresh_profiles(store.con)
    console.print(
        f"{report.events} events, {report.identifiers} identifiers, {report.profiles} profiles, "
        f"{report.merges} merges, {report.conflicts} refused links, "
        f"{report.events_moved} events changed profile"
    )


@identity_app.command("split")
@handles_errors
def identity_split(
    profile: Annotated[str, typer.Argument(help="Profile id (p_...).")],
    identifier: Annotated[str, typer.Argument(help="KIND:VALUE to move off the profile.")],
    db: DbOption = None,
) -> None:
    """Undo a wrong merge: move IDENTIFIER and its events to a new profile, for good."""
    settings = settings_for(db)
    with open_store(settings) as store:
        key = parse_identifier(identifier, Ingestor(store, settings).extractor)
        with progress_bar("rebuilding identity") as update:
            new_pid, report = split(store.con, settings.identity, profile, key, update)
        refresh_profiles(store.con)
    where = (
        f"now lives on profile {new_pid}"
        if new_pid
        else "is unattached (every event carrying it also carried a more trusted identifier)"
    )
    console.print(
        f"{escape(key)} {where}; {report.events_moved} events moved. "
        "The link is blocked from coming back."
    )


# -- profile -----------------------------------------------------------------------
@app.command()
@handles_errors
def profile(
    identifier: Annotated[str, typer.Argument(help="KIND:VALUE (email:..., phone:...) or p_ id.")],
    limit: Annotated[int, typer.Option(help="Timeline entries to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Print a customer's profile and recent cross-channel timeline."""
    settings = settings_for(db)
    with open_store(settings) as store:
        con = store.con
        pid = resolve_person(store, settings, identifier)
        person = get_profile(con, pid)
        entries = timeline(con, pid, limit=limit)
    if as_json:
        print(orjson.dumps({"profile": person.__dict__, "timeline": [e.__dict__ for e in entries]},
                           option=orjson.OPT_INDENT_2).decode())  # fmt: skip
        return
    card = Table.grid(padding=(0, 2))
    card.add_row("[bold]profile[/]", person.id)
    for kind, values in person.identifiers.items():
        card.add_row(escape(kind), escape(", ".join(values)))
    card.add_row("channels", ", ".join(person.channels))
    card.add_row("seen", f"{person.first_seen:%Y-%m-%d %H:%M} → {person.last_seen:%Y-%m-%d %H:%M}")
    card.add_row("events", str(person.event_count))
    for name, value in sorted(person.traits.items()):
        card.add_row(f"[dim]{escape(name)}[/]", escape(str(value)))
    console.print(card)
    table = Table("when (UTC)", "channel", "type", "event", "details", title="recent interactions")
    for e in entries:
        details = ", ".join(f"{k}={v}" for k, v in list((e.properties or {}).items())[:4])
        table.add_row(
            f"{e.timestamp:%Y-%m-%d %H:%M}", e.channel, e.type, escape(e.event or ""),
            escape(details),
        )  # fmt: skip
    console.print(table)


# -- failed events -----------------------------------------------------------------
@failed_app.command("list")
@handles_errors
def failed_list(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    status: Annotated[str, typer.Option(help="failed, replayed or all.")] = "failed",
    db: DbOption = None,
) -> None:
    """List failed events with their errors."""
    if status not in ("failed", "replayed", "all"):
        raise InvalidInput(f"--status must be failed, replayed or all, got {status!r}")
    if limit < 1:
        raise InvalidInput(f"--limit must be at least 1, got {limit}")
    with open_store(settings_for(db)) as store:
        where = "" if status == "all" else "WHERE status = ?"
        params: list[Any] = [] if status == "all" else [status]
        rows = store.con.execute(
            "SELECT id, received_at, source, origin, row_number, errors, status FROM failed_events "
            f"{where} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
    table = Table("id", "received", "source", "origin", "row", "errors", "status")
    for fid, received, source, origin, row, errors, st in rows:
        messages = "; ".join(e["message"] for e in orjson.loads(errors))
        table.add_row(str(fid), f"{received:%Y-%m-%d %H:%M:%S}", source or "", escape(origin),
                      "" if row is None else str(row), escape(messages), st)  # fmt: skip
    console.print(table)


@failed_app.command("replay")
@handles_errors
def failed_replay(
    ids: Annotated[list[int] | None, typer.Option("--id", help="Replay only these ids.")] = None,
    db: DbOption = None,
) -> None:
    """Re-validate failed events after a fix; those that pass are stored (once)."""
    settings = settings_for(db)
    with open_store(settings) as store:
        report = replay_failed(Ingestor(store, settings), ids)
    console.print(
        f"{report.examined} examined: {report.stored} stored, {report.duplicates} already stored, "
        f"{report.still_failing} still failing"
    )


# -- demo --------------------------------------------------------------------------
@app.command()
@handles_errors
def demo(
    customers: Annotated[int, typer.Option(help="Known customers in the sample brand.")] = 5000,
    serve_after: Annotated[bool, typer.Option("--serve", help="Serve it afterwards.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same brand).")] = 7,
    db: DbOption = None,
    host: Annotated[str | None, typer.Option(help="With --serve: address.")] = None,
    port: Annotated[int | None, typer.Option(help="With --serve: port.")] = None,
) -> None:
    """Generate the sample brand (Northwind Mobile) through the normal ingestion path."""
    from opencx.demo import load_demo

    settings = settings_for(db, host=host, port=port)
    with open_store(settings) as store, progress_bar("generating Northwind Mobile") as update:
        report = load_demo(store, settings, customers=customers, seed=seed, progress=update)
    console.print(report.describe())
    if serve_after:
        serve(db=settings.db, host=settings.host, port=settings.port)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
