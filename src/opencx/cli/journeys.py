"""`opencx journeys ...` and `opencx touchpoints ...`: journey analytics in the terminal."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from pydantic import TypeAdapter, ValidationError
from rich.markup import escape
from rich.table import Table

from opencx.cli._common import (
    DbOption,
    console,
    handles_errors,
    open_analytics,
    open_store,
    read_text_file,
    settings_for,
)
from opencx.durations import describe_seconds
from opencx.errors import InvalidInput
from opencx.journeys import (
    FunnelQuery,
    FunnelResult,
    PathQuery,
    compare_design,
    diagnose,
    infer_touchpoints,
    journey_design,
    journey_designs,
    parse_step,
    reset_touchpoint_model,
    retention_cohorts,
    run_funnel,
    save_journey_design,
    save_touchpoint_model,
    top_paths,
    transitions,
)
from opencx.warehouse import open_warehouse

journeys_app = typer.Typer(
    help="Funnels, paths, cohorts and what is broken, from the log.", no_args_is_help=True
)
design_app = typer.Typer(help="Designed journeys against what customers did.", no_args_is_help=True)
touchpoints_app = typer.Typer(
    help="The touchpoint model: events → touchpoints, channels and stages.", no_args_is_help=True
)
journeys_app.add_typer(design_app, name="design")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
FromOption = Annotated[
    datetime | None, typer.Option("--from", help="From this time (UTC), inclusive.")
]
ToOption = Annotated[datetime | None, typer.Option("--to", help="Up to this time, exclusive.")]
BAR = 30


def _emit_json(value: Any) -> None:
    print(orjson.dumps(TypeAdapter(type(value)).dump_python(value, mode="json")).decode())


def _bar(share: float) -> str:
    full = round(max(0.0, min(1.0, share)) * BAR)
    return "█" * full + "·" * (BAR - full)


def _seconds(value: float | None) -> str:
    return describe_seconds(value, short=True)


def _print_funnel(result: FunnelResult) -> None:
    groups: list[str | None] = [None, *result.groups()]
    for group in groups:
        rows = [r for r in result.rows if r.group == group]
        title = "funnel" if group is None else f"{result.query.by} = {group}"
        window = _seconds(result.query.window.total_seconds())
        console.print(f"\n[bold]{escape(title)}[/] (window {window})")
        width = max(len(r.label) for r in rows) + 4
        for r in rows:
            share = r.conversion_from_start or 0.0
            label = f"{r.step}. {r.label}"
            bar = _bar(share)[:24]
            console.print(
                f"{escape(label):<{width}} [blue]{bar}[/] {r.entered:>8,} {share:6.1%}",
                highlight=False,
            )
        table = Table("step", "from previous", "dropped", "median", "p90", box=None)
        for r in rows[1:]:
            table.add_row(
                f"{r.step - 1} → {r.step}",
                "" if r.conversion_from_previous is None else f"{r.conversion_from_previous:.1%}",
                f"{r.dropped:,}",
                _seconds(r.median_s),
                _seconds(r.p90_s),
            )
        console.print(table)


@journeys_app.command("funnel")
@handles_errors
def funnel(
    step: Annotated[
        list[str],
        typer.Option(
            "--step", help="A step: 'Event', 'tp:TOUCHPOINT' or 'stage:STAGE', '|channel=app'."
        ),
    ],
    window: Annotated[str, typer.Option(help="Conversion window, e.g. 7d or 48h.")] = "7d",
    start: Annotated[
        str, typer.Option(help="first: first step-1 event starts it; any: any one does.")
    ] = "first",
    by: Annotated[
        str | None, typer.Option(help="Breakdown: channel, property:NAME or trait:NAME.")
    ] = None,
    exclude: Annotated[str | None, typer.Option(help="Disqualifying step.")] = None,
    start_at: FromOption = None,
    end_at: ToOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """An ordered funnel with a conversion window: customers per step, drop-off, times."""
    if start not in ("first", "any"):
        raise InvalidInput(f"--start must be first or any, got {start!r}")
    try:
        query = FunnelQuery(
            steps=tuple(parse_step(s) for s in step),
            window=window,  # type: ignore[arg-type]
            start=start,  # type: ignore[arg-type]
            by=by,
            exclude=parse_step(exclude) if exclude else None,
            start_at=start_at,
            end_at=end_at,
        )
    except ValidationError as exc:
        raise InvalidInput(f"funnel: {exc.errors()[0]['msg']}") from None
    with open_analytics(db) as (_, warehouse, model):
        result = run_funnel(query, warehouse, model)
    if as_json:
        _emit_json(result)
    else:
        _print_funnel(result)


@journeys_app.command("diagnostics")
@handles_errors
def diagnostics(
    start_at: FromOption = None,
    end_at: ToOption = None,
    within: Annotated[str, typer.Option(help="Contact window after a touchpoint.")] = "48h",
    limit: Annotated[int, typer.Option(help="Most items to show.")] = 10,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """What is broken, and where: touchpoints ranked by the customers they hurt."""
    with open_analytics(db) as (_, warehouse, model):
        findings = diagnose(
            warehouse, model, start_at=start_at, end_at=end_at, within=within, limit=limit
        )
    if as_json:
        _emit_json(findings)
        return
    if not findings:
        console.print("Nothing stands out: no touchpoint hurts customers beyond expectation.")
        return
    top = max(f.harm for f in findings) or 1
    console.print("[bold]What is broken, and where[/] (harm = customers hurt beyond expectation)")
    for i, f in enumerate(findings, 1):
        console.print(
            f"\n[bold]{i}. {escape(f.name)}[/] [dim]{f.stage}[/]  "
            f"[red]{_bar(f.harm / top)[:20]}[/] harm {f.harm:,.0f} · "
            f"{f.customers_affected:,} affected · confidence {f.confidence_label}"
        )
        for signal in f.signals:
            console.print(f"   {escape(signal.evidence)}", highlight=False)
    if findings[0].examples:
        console.print(
            f"\nExample customers for #1: {', '.join(findings[0].examples)} "
            "(`opencx profile ID` shows one)"
        )


@journeys_app.command("paths")
@handles_errors
def paths(
    touchpoint: Annotated[str | None, typer.Option(help="Anchor touchpoint id.")] = None,
    before: Annotated[bool, typer.Option("--before", help="Paths leading to it.")] = False,
    depth: Annotated[int, typer.Option(help="Touchpoints after (or before) it.")] = 3,
    limit: Annotated[int, typer.Option(help="Most paths to show.")] = 15,
    start_at: FromOption = None,
    end_at: ToOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """The most common paths from (or to) a touchpoint."""
    query = PathQuery(
        touchpoint=touchpoint, direction="before" if before else "after", depth=depth,
        limit=limit, start_at=start_at, end_at=end_at,
    )  # fmt: skip
    with open_analytics(db) as (_, warehouse, model):
        found = top_paths(query, warehouse, model)
    if as_json:
        _emit_json(found)
        return
    top = max((p.people for p in found), default=1)
    table = Table("customers", "", "path")
    for p in found:
        table.add_row(f"{p.people:,}", f"[blue]{_bar(p.people / top)[:15]}[/]", " → ".join(p.steps))
    console.print(table)


@journeys_app.command("transitions")
@handles_errors
def transitions_(
    limit: Annotated[int, typer.Option(help="Most transitions to show.")] = 20,
    start_at: FromOption = None,
    end_at: ToOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Touchpoint → next touchpoint, the heaviest first (the data of a Sankey diagram)."""
    with open_analytics(db) as (_, warehouse, model):
        flows = transitions(PathQuery(start_at=start_at, end_at=end_at), warehouse, model)[:limit]
    if as_json:
        _emit_json(flows)
        return
    top = max((t.people for t in flows), default=1)
    table = Table("from", "to", "customers", "", "transitions")
    for t in flows:
        table.add_row(
            t.source, t.target, f"{t.people:,}", f"[blue]{_bar(t.people / top)[:15]}[/]",
            f"{t.transitions:,}",
        )  # fmt: skip
    console.print(table)


@journeys_app.command("cohorts")
@handles_errors
def cohorts(
    grain: Annotated[str, typer.Option(help="week or month.")] = "week",
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Retention by first-seen week or month."""
    if grain not in ("week", "month"):
        raise InvalidInput(f"--grain must be week or month, got {grain!r}")
    settings = settings_for(db)
    with open_store(settings) as store:
        found = retention_cohorts(open_warehouse(settings, store.con), grain)  # type: ignore[arg-type]
    if as_json:
        _emit_json(found)
        return
    width = max((len(c.active) for c in found), default=1)
    table = Table("cohort", "people", *(f"+{k}" for k in range(1, min(width, 13))))
    for c in found:
        cells = [f"{share:.0%}" for share in c.retention[1:13]]
        table.add_row(f"{c.start:%Y-%m-%d}", f"{c.size:,}", *cells)
    console.print(table)


@design_app.command("list")
@handles_errors
def design_list(db: DbOption = None) -> None:
    """Saved designed journeys."""
    with open_store(settings_for(db)) as store:
        designs = journey_designs(store.con)
    for d in designs:
        console.print(f"{escape(d.name)}: {' → '.join(s.name for s in d.stages)}")
    if not designs:
        console.print("No designed journey yet: `opencx journeys design set FILE.yaml`.")


@design_app.command("set")
@handles_errors
def design_set(file: Path, db: DbOption = None) -> None:
    """Save a designed journey from a YAML file (replaces one of the same name)."""
    text = read_text_file(file)
    with open_analytics(db) as (store, _, model):
        design = save_journey_design(store.con, text, model)
    console.print(f"Saved {escape(design.name)!r} ({len(design.stages)} stages).")


@design_app.command("compare")
@handles_errors
def design_compare(
    name: str,
    start_at: FromOption = None,
    end_at: ToOption = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """A designed journey against what customers did, stage by stage."""
    with open_analytics(db) as (store, warehouse, model):
        design = journey_design(store.con, name)
        stages = compare_design(design, warehouse, model, start_at=start_at, end_at=end_at)
    if as_json:
        _emit_json(stages)
        return
    table = Table("stage", "customers", "to next", "median time", "effort", "flags")
    for s in stages:
        table.add_row(
            escape(s.stage.name),
            f"{s.entered:,}",
            "" if s.conversion is None else f"{s.conversion:.0%}",
            _seconds(s.median_to_next_s),
            "" if s.effort is None else f"{s.effort:.0%}",
            "\n".join(f"[red]⚑[/] {escape(f)}" for f in s.flags) or "[green]as designed[/]",
        )
    console.print(table)


@touchpoints_app.command("show")
@handles_errors
def touchpoints_show(db: DbOption = None) -> None:
    """Print the touchpoint model as YAML (inferred from the log until one is saved)."""
    with open_analytics(db) as (_, _, model):
        print(model.to_yaml(), end="")


@touchpoints_app.command("infer")
@handles_errors
def touchpoints_infer(
    min_events: Annotated[int, typer.Option(help="Skip events seen fewer times.")] = 1,
    db: DbOption = None,
) -> None:
    """Print the model OpenCX would infer from the log now (nothing is saved)."""
    settings = settings_for(db)
    with open_store(settings) as store:
        model = infer_touchpoints(open_warehouse(settings, store.con), min_events=min_events)
    print(model.to_yaml(), end="")


@touchpoints_app.command("set")
@handles_errors
def touchpoints_set(file: Path, db: DbOption = None) -> None:
    """Save the touchpoint model from a YAML file."""
    text = read_text_file(file)
    with open_store(settings_for(db)) as store:
        model = save_touchpoint_model(store.con, text, by="cli")
    console.print(f"Saved {len(model.touchpoints)} touchpoints.")


@touchpoints_app.command("reset")
@handles_errors
def touchpoints_reset(db: DbOption = None) -> None:
    """Forget the saved model; it is inferred from the log again."""
    with open_store(settings_for(db)) as store:
        removed = reset_touchpoint_model(store.con)
    console.print("Saved model removed." if removed else "No saved model: already inferred.")
