"""`opencx triggers|policy|decisions|nba|tasks`: acting on what OpenCX knows, from a terminal."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from opencx.cli._common import (
    DbOption,
    bar_chart,
    console,
    handles_errors,
    open_store,
    progress_bar,
    read_text_file,
    resolve_person,
    settings_for,
)
from opencx.ingest import Ingestor
from opencx.orchestrate.actions import load_actions, save_actions
from opencx.orchestrate.decisions import decisions_of, list_decisions
from opencx.orchestrate.engine import recommend, trigger_round
from opencx.orchestrate.policy import load_policy, parse_policy, save_policy
from opencx.orchestrate.simulate import OUTCOMES, simulate
from opencx.orchestrate.triggers import (
    delete_trigger,
    get_trigger,
    list_triggers,
    save_trigger,
)
from opencx.profiles import canonical_id

triggers_app = typer.Typer(help="When to act: event and schedule triggers.", no_args_is_help=True)
actions_app = typer.Typer(help="The next-best-action catalogue.", no_args_is_help=True)
policy_app = typer.Typer(
    help="The contact policy every outbound action passes.", no_args_is_help=True
)


@triggers_app.command("set")
@handles_errors
def triggers_set(file: Path, db: DbOption = None) -> None:
    """Create or replace a trigger from a YAML file (it acts on events from now on)."""
    text = read_text_file(file)
    with open_store(settings_for(db)) as store:
        trigger = save_trigger(store.con, text, by="cli")
    console.print(f"Saved trigger {trigger.id} ({trigger.action.type}).")


@triggers_app.command("list")
@handles_errors
def triggers_list(db: DbOption = None) -> None:
    """Defined triggers."""
    with open_store(settings_for(db)) as store:
        triggers = list_triggers(store.con)
    table = Table("id", "when", "audience", "action", "channel", "purpose", "on")
    for t in triggers:
        if t.when is not None:
            when = t.when.event + (f" on {', '.join(t.when.channel)}" if t.when.channel else "")
            when += f" +{t.when.delay}" if t.when.delay else ""
        else:
            assert t.schedule is not None
            days = ", ".join(t.schedule.days) if t.schedule.days else "every day"
            when = f"{days} at {t.schedule.at:%H:%M} local"
        table.add_row(
            t.id, escape(when), t.audience or "everyone", t.action.type, t.action.channel,
            t.action.purpose, "yes" if t.enabled else "no",
        )  # fmt: skip
    console.print(table)


@triggers_app.command("show")
@handles_errors
def triggers_show(trigger_id: str, db: DbOption = None) -> None:
    """A trigger's YAML."""
    with open_store(settings_for(db)) as store:
        console.print(get_trigger(store.con, trigger_id).to_yaml(), markup=False, end="")


@triggers_app.command("delete")
@handles_errors
def triggers_delete(trigger_id: str, db: DbOption = None) -> None:
    """Delete a trigger (its past decisions stay in the log)."""
    with open_store(settings_for(db)) as store:
        delete_trigger(store.con, trigger_id)
    console.print(f"Deleted trigger {trigger_id}.")


@triggers_app.command("run")
@handles_errors
def triggers_run(db: DbOption = None) -> None:
    """One round now: every enabled trigger, through the contact policy, into the outbox."""
    settings = settings_for(db)
    with open_store(settings) as store:
        run = trigger_round(Ingestor(store, settings), settings)
    for trigger, n in sorted(run.matched.items()):
        console.print(f"{trigger}: {n} to act on")
    outcomes = ", ".join(f"{n} {o}" for o, n in sorted(run.outcomes.items())) or "none"
    console.print(f"Contacts: {outcomes}.")
    done = ", ".join(f"{n} {kind}" for kind, n in sorted(run.done.items()))
    if done:
        console.print(f"Done at once: {done}.")
    for error in run.errors:
        console.print(f"[red]error[/red] {escape(error)}")


@policy_app.command("show")
@handles_errors
def policy_show(db: DbOption = None) -> None:
    """The contact policy in force (the saved one, or the defaults), as YAML."""
    with open_store(settings_for(db)) as store:
        console.print(load_policy(store.con).to_yaml(), markup=False, end="")


@policy_app.command("set")
@handles_errors
def policy_set(file: Path, db: DbOption = None) -> None:
    """Replace the contact policy with a YAML file (checked before it is saved)."""
    text = read_text_file(file)
    with open_store(settings_for(db)) as store:
        save_policy(store.con, text, by="cli")
    console.print("Saved the contact policy.")


@policy_app.command("simulate")
@handles_errors
def policy_simulate(
    days: Annotated[int, typer.Option(help="Replay this many days, up to now.")] = 30,
    policy: Annotated[
        Path | None, typer.Option(help="A policy YAML to try (default: the one in force).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Dry run: replay the last days' contacts under a policy and count what it would do."""
    with open_store(settings_for(db)) as store:
        tried = parse_policy(read_text_file(policy)) if policy else load_policy(store.con)
        with progress_bar("Replaying contacts") as advance:
            report = simulate(store.con, tried, days=days, progress=advance)
    console.print(
        f"{report.proposals:,} contacts to {report.people:,} people from "
        f"{report.start:%Y-%m-%d} to {report.end:%Y-%m-%d} "
        f"({report.actual_sent:,} actually sent), replayed in {report.seconds:.1f} s."
    )
    console.print(bar_chart([(o, float(report.outcomes[o])) for o in OUTCOMES]))
    for title, groups in (
        ("By trigger or campaign", report.by_source),
        ("By segment", report.by_segment),
        ("By the rule that held or dropped it", report.by_rule),
    ):
        table = Table(title, *OUTCOMES, title_justify="left")
        for name, counts in sorted(groups.items(), key=lambda kv: -sum(kv[1].values()))[:20]:
            table.add_row(escape(name), *(f"{counts[o]:,}" for o in OUTCOMES))
        console.print(table)
    for rule, words in sorted(report.examples.items()):
        console.print(f"  {rule}: {escape(words)}")


@actions_app.command("show")
@handles_errors
def actions_show(db: DbOption = None) -> None:
    """The catalogue in force (saved, or the default), one line per action."""
    with open_store(settings_for(db)) as store:
        catalogue = load_actions(store.con)
    table = Table("id", "title", "kind", "channels", "purpose", "value")
    for a in catalogue.actions:
        table.add_row(
            a.id, escape(a.title), a.kind, ", ".join(a.channels), a.purpose, f"{a.value:g}"
        )
    console.print(table)


@actions_app.command("set")
@handles_errors
def actions_set(file: Path, db: DbOption = None) -> None:
    """Replace the catalogue with a YAML file (checked before it is saved)."""
    text = read_text_file(file)
    with open_store(settings_for(db)) as store:
        catalogue = save_actions(store.con, text, by="cli")
    console.print(f"Saved {len(catalogue.actions)} actions.")


def nba_command(
    identifier: Annotated[str, typer.Argument(help="A profile id or KIND:VALUE.")],
    channel: Annotated[str | None, typer.Option(help="Where the customer is now.")] = None,
    limit: Annotated[int, typer.Option(help="Most actions to show.")] = 5,
    db: DbOption = None,
) -> None:
    """Next best action for one customer now, each with its reasons."""
    settings = settings_for(db)
    with open_store(settings) as store:
        person = resolve_person(store, settings, identifier)
        found = recommend(store.con, person, channel=channel, limit=limit)
    if not found:
        console.print("Nothing to suggest right now.")
    for n, r in enumerate(found, 1):
        mark = "" if r.allowed else "[red]do not[/red] "
        console.print(f"{n}. {mark}[bold]{escape(r.title)}[/bold] ({r.channel}, {r.purpose})")
        if r.script:
            console.print(f"   “{escape(r.script)}”")
        for reason in (*r.reasons, *r.blocked_by):
            console.print(f"   [dim]{escape(reason)}[/dim]")


def decisions_command(
    person: Annotated[str | None, typer.Option(help="Only this profile's decisions.")] = None,
    outcome: Annotated[str | None, typer.Option(help="send, hold or drop.")] = None,
    limit: Annotated[int, typer.Option(help="Most decisions to show.")] = 50,
    db: DbOption = None,
) -> None:
    """The decisions log: every contact sent, held or dropped, with its reasons."""
    with open_store(settings_for(db)) as store:
        if person:
            found = decisions_of(store.con, canonical_id(store.con, person), limit=limit)
            found = [d for d in found if outcome is None or d.outcome == outcome]
        else:
            found = list_decisions(store.con, outcome=outcome, limit=limit)
    table = Table("decided", "person", "action", "channel", "outcome", "why")
    colour = {"send": "green", "hold": "yellow", "drop": "red"}
    for d in found:
        table.add_row(
            f"{d.decided_at.astimezone(UTC):%Y-%m-%d %H:%M}", d.proposal.person_id,
            d.proposal.action, d.proposal.channel,
            f"[{colour.get(d.outcome, 'white')}]{d.outcome}[/]", escape("; ".join(d.reasons)),
        )  # fmt: skip
    console.print(table)


def tasks_command(
    status: Annotated[str, typer.Option(help="open, done or all.")] = "open",
    limit: Annotated[int, typer.Option(help="Most tasks to show.")] = 50,
    db: DbOption = None,
) -> None:
    """Agent tasks created by triggers (call backs, checks)."""
    with open_store(settings_for(db)) as store:
        where = "" if status == "all" else "WHERE status = ?"
        rows = store.con.execute(
            f"SELECT created_at, person_id, title, status, trigger FROM agent_tasks {where} "
            "ORDER BY created_at DESC LIMIT ?",
            [status, limit] if where else [limit],
        ).fetchall()
    table = Table("created", "person", "task", "status", "trigger")
    for created, who, title, state, trigger in rows:
        table.add_row(
            f"{created.astimezone(UTC):%Y-%m-%d %H:%M}", who, escape(title), state, trigger or ""
        )
    console.print(table)
