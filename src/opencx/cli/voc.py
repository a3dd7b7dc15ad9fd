"""`opencx surveys ...` and `opencx cases ...`: the voice of the customer in the terminal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from opencx.cli._common import (
    DbOption,
    console,
    handles_errors,
    open_store,
    read_text_file,
    settings_for,
)
from opencx.ingest import Ingestor
from opencx.orchestrate.engine import survey_admission
from opencx.voc import get_survey, list_cases, list_surveys, run_schedule, run_trigger, save_survey

surveys_app = typer.Typer(help="Survey definitions and their invitations.", no_args_is_help=True)
cases_app = typer.Typer(help="Closed-loop cases.", no_args_is_help=True)


@surveys_app.command("set")
@handles_errors
def surveys_set(file: Path, db: DbOption = None) -> None:
    """Create or replace a survey from a YAML file."""
    text = read_text_file(file)
    with open_store(settings_for(db)) as store:
        survey = save_survey(store.con, text, by="cli")
    console.print(f"Saved survey {survey.id} ({len(survey.questions)} questions).")


@surveys_app.command("list")
@handles_errors
def surveys_list(db: DbOption = None) -> None:
    """Defined surveys."""
    with open_store(settings_for(db)) as store:
        surveys = list_surveys(store.con)
    table = Table("id", "name", "kind", "measures", "asked")
    for s in surveys:
        when = (
            f"after {s.trigger.after} +{s.trigger.delay} by {s.trigger.channel}"
            if s.trigger
            else (s.schedule or "on demand")
        )
        table.add_row(s.id, escape(s.name), s.kind, s.touchpoint or "", when)
    console.print(table)


@surveys_app.command("run")
@handles_errors
def surveys_run(survey_id: str, db: DbOption = None) -> None:
    """Send the invitations due now: after the survey's trigger, or its schedule's wave."""
    settings = settings_for(db)
    with open_store(settings) as store:
        survey = get_survey(store.con, survey_id)
        ingestor = Ingestor(store, settings)
        wait = timedelta(days=settings.survey_wait_days)
        admit = survey_admission(store)  # the contact policy decides each invitation
        run = (
            run_schedule(ingestor, survey, global_wait=wait, admit=admit)
            if survey.schedule
            else run_trigger(ingestor, survey, global_wait=wait, admit=admit)
        )
    console.print(f"{survey_id}: {run.considered} considered, {len(run.invited)} invited")
    for reason, n in run.refused.most_common():
        console.print(f"  not invited ({n}): {reason}")


@cases_app.command("list")
@handles_errors
def cases_list(
    status: Annotated[str, typer.Option(help="A status, 'unresolved' or 'all'.")] = "unresolved",
    limit: Annotated[int, typer.Option(help="Most cases to show.")] = 50,
    db: DbOption = None,
) -> None:
    """Cases, most urgent first."""
    with open_store(settings_for(db)) as store:
        found = list_cases(store.con, status=None if status == "all" else status, limit=limit)
    now = datetime.now(UTC)
    table = Table("case", "customer", "why", "priority", "due", "status")
    for c in found:
        due = f"{c.due_at:%Y-%m-%d %H:%M}" + (" [red]overdue[/]" if c.overdue(now) else "")
        table.add_row(c.id, c.person_id, escape(c.reason), c.priority, due, c.status)
    console.print(table)
