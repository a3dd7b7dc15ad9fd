"""`opencx metrics ...`, `opencx alerts`, `opencx drivers`, `opencx consistency`: KPIs and noise."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from opencx.cli._common import (
    DbOption,
    console,
    handles_errors,
    open_analytics,
    open_store,
    settings_for,
)
from opencx.errors import InvalidInput
from opencx.metrics import alerts as find_alerts
from opencx.metrics import channel_consistency, key_drivers, kpi
from opencx.warehouse import open_warehouse

metrics_app = typer.Typer(help="NPS, CSAT and CES with 95% intervals.", no_args_is_help=True)


def _show(name: str, by: str | None, db: object) -> None:
    settings = settings_for(db)  # type: ignore[arg-type]
    with open_store(settings) as store:
        result = kpi(open_warehouse(settings, store.con), name, start_at=None, end_at=None, by=by)
    table = Table(by or "", name.upper(), "95% interval", "answers", "")
    rows = [result.overall, *result.groups] if result.overall else list(result.groups)
    top = max((abs(r.value) for r in rows), default=1) or 1
    for row in rows:
        interval = "" if row.low is None else f"{row.low:.1f} to {row.high:.1f}"
        bar = "█" * round(20 * abs(row.value) / top)
        colour = "red" if row.value < 0 else "blue"
        table.add_row(
            escape(row.group), f"{row.value:.1f}", interval, f"{row.n:,}", f"[{colour}]{bar}[/]"
        )
    console.print(table)


def _command(name: str) -> None:
    @metrics_app.command(name)
    @handles_errors
    def show(
        by: Annotated[
            str | None, typer.Option(help="channel, touchpoint, survey_id or trait:NAME.")
        ] = None,
        db: DbOption = None,
    ) -> None:
        _show(name, by, db)

    show.__doc__ = f"{name.upper()} overall and by group, with 95% intervals."


for _name in ("nps", "csat", "ces"):
    _command(_name)


def alerts_command(
    current: Annotated[str, typer.Option(help="The recent period.")] = "7d",
    baseline: Annotated[str, typer.Option(help="The period before it.")] = "8w",
    db: DbOption = None,
) -> None:
    """KPIs that moved beyond their noise (latest period against the one before)."""
    if not current or not baseline:
        raise InvalidInput("--current and --baseline must be durations such as 7d and 8w")
    settings = settings_for(db)
    with open_store(settings) as store:
        found = find_alerts(
            open_warehouse(settings, store.con), now=datetime.now(UTC), current=current,
            baseline=baseline,
        )  # fmt: skip
    if not found:
        console.print("No KPI moved beyond its noise.")
    for alert in found:
        mark = "[red]▼[/]" if alert.worse else "[green]▲[/]"
        console.print(f"{mark} {escape(alert.message)}", highlight=False)


def drivers_command(
    outcome: Annotated[str, typer.Option(help="nps, low_nps or csat.")] = "low_nps",
    limit: Annotated[int, typer.Option(help="Most drivers to show.")] = 10,
    db: DbOption = None,
) -> None:
    """What drives an outcome: touchpoints met, effort signals, traits (importance, p, R²)."""
    if outcome not in ("nps", "low_nps", "csat"):
        raise InvalidInput(f"--outcome must be nps, low_nps or csat, got {outcome!r}")
    with open_analytics(db) as (_, warehouse, model):
        result = key_drivers(warehouse, model, outcome=outcome)
    console.print(
        f"[bold]Drivers of {outcome}[/]: {result.n:,} answers, R² {result.r2:.3f} "
        f"(adjusted {result.adjusted_r2:.3f}), {result.candidates} candidates"
    )
    table = Table("driver", "importance", "", "people", "p (Holm)", "")
    top = max((abs(d.importance) for d in result.drivers), default=1) or 1
    for d in result.drivers[:limit]:
        bar = "█" * round(15 * abs(d.importance) / top)
        mark = "[bold]significant[/]" if d.significant else "[dim]not significant[/]"
        table.add_row(
            escape(d.label), f"{d.importance:+.3f}", bar, f"{d.people:,}",
            f"{d.p_adjusted:.3f}", mark,
        )  # fmt: skip
    console.print(table)


def consistency_command(
    kind: Annotated[str, typer.Option(help="nps, csat or ces.")] = "csat",
    min_n: Annotated[int, typer.Option(help="Answers a channel needs to be compared.")] = 30,
    db: DbOption = None,
) -> None:
    """One KPI per journey stage and channel; channels lagging the rest flagged beyond noise."""
    if kind not in ("nps", "csat", "ces"):
        raise InvalidInput(f"--kind must be nps, csat or ces, got {kind!r}")
    with open_analytics(db) as (_, warehouse, model):
        result = channel_consistency(warehouse, model, kinds=[kind], min_n=min_n)
    if not result.stages:
        console.print(f"No {kind.upper()} answers about a touchpoint of the model yet.")
        return
    unit = "%" if kind == "csat" else ""
    for stage in result.stages:
        spread = "" if stage.spread is None else f", spread {stage.spread:.1f}{unit}"
        table = Table(
            "channel", kind.upper(), "95% interval", "answers", "", "",
            title=f"{escape(stage.stage)}{spread}", title_justify="left",
        )  # fmt: skip
        top = max((abs(c.value) for c in stage.channels), default=1) or 1
        lagging = {g.channel for g in stage.flags}
        for c in stage.channels:
            interval = "" if c.low is None else f"{c.low:.1f} to {c.high:.1f}"
            colour = "red" if c.channel in lagging else "blue"
            bar = f"[{colour}]{'█' * round(20 * abs(c.value) / top)}[/]"
            mark = "[bold red]lags[/]" if c.channel in lagging else ""
            table.add_row(escape(c.channel), f"{c.value:.1f}", interval, f"{c.n:,}", bar, mark)
        console.print(table)
    for flag in result.flags:
        console.print(f"[red]▼[/] {escape(flag.message)}", highlight=False, soft_wrap=True)
    if not result.flags:
        console.print("No channel lags the others of its stage beyond noise.")
