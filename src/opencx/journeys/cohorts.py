"""Retention cohorts: people grouped by the week or month they were first seen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import ibis.expr.types as ir

from opencx.journeys._time import check_period, utc
from opencx.warehouse import Warehouse

Grain = Literal["week", "month"]


@dataclass(frozen=True)
class Cohort:
    """People first seen in `start`, and how many were active `k` periods later."""

    start: date
    size: int
    active: tuple[int, ...]
    retention: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        shares = tuple(a / self.size if self.size else 0.0 for a in self.active)
        object.__setattr__(self, "retention", shares)


def cohorts_expression(
    warehouse: Warehouse,
    grain: Grain = "week",
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    channels: list[str] | None = None,
) -> ir.Table:
    """(cohort, offset, people): active people per cohort and periods since first seen."""
    check_period(utc(start_at), utc(end_at))
    events = warehouse.events()
    if channels:
        events = events.filter(events.channel.isin(channels))
    unit = "W" if grain == "week" else "M"
    active = events.select("person_id", period=events.timestamp.truncate(unit)).distinct()
    firsts = active.group_by("person_id").aggregate(cohort=active.period.min())
    joined = active.join(firsts, "person_id")
    if grain == "week":
        offset = (
            ((joined.period.epoch_seconds() - joined.cohort.epoch_seconds()) / (7 * 86400))
            .round()
            .cast("int32")
        )
    else:
        offset = (
            (joined.period.year() - joined.cohort.year()) * 12
            + joined.period.month()
            - joined.cohort.month()
        ).cast("int32")
    rows = joined.mutate(offset=offset)
    if start_at is not None:
        rows = rows.filter(rows.cohort >= utc(start_at))
    if end_at is not None:
        rows = rows.filter(rows.cohort < utc(end_at))
    return (
        rows.group_by(["cohort", "offset"])
        .aggregate(people=rows.person_id.nunique())
        .order_by(["cohort", "offset"])
    )


def retention_cohorts(
    warehouse: Warehouse,
    grain: Grain = "week",
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    channels: list[str] | None = None,
) -> list[Cohort]:
    """Cohorts oldest first; `active[0]` is the cohort's size."""
    table = cohorts_expression(
        warehouse, grain, start_at=start_at, end_at=end_at, channels=channels
    )
    grid: dict[date, dict[int, int]] = {}
    for r in table.to_pyarrow().to_pylist():
        start = r["cohort"].date() if isinstance(r["cohort"], datetime) else r["cohort"]
        grid.setdefault(start, {})[int(r["offset"])] = int(r["people"])
    out = []
    for start in sorted(grid):
        cells = grid[start]
        width = max(cells) + 1
        out.append(Cohort(start, cells.get(0, 0), tuple(cells.get(k, 0) for k in range(width))))
    return out
