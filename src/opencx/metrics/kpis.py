"""NPS, CSAT and CES over a period, overall and per group, each with its interval.

One Ibis expression sums the answers per group on the engine (`kpi_expression`); the
estimates and intervals are computed from those sums in Python (`opencx.metrics.stats`),
so a million answers cost one aggregate query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opencx.errors import NotFound
from opencx.metrics._answers import (
    Segments,
    between,
    check_grouping,
    check_period,
    collect_stats,
    partitions,
    scored_answers,
    stats_by,
    stats_from_row,
    total,
    utc,
    with_group,
)
from opencx.metrics.stats import AnswerStats, Estimate, KpiKind, check_kind, estimate
from opencx.warehouse import Warehouse

OVERALL = "(all)"


class KpiQuery(BaseModel):
    """Which KPI, over which answers [start_at, end_at), broken down by what."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: KpiKind
    start_at: datetime | None = None
    end_at: datetime | None = None
    by: str | None = Field(
        default=None, description="channel, touchpoint, survey_id, segment or trait:NAME."
    )
    confidence: float = Field(default=0.95, gt=0, lt=1)

    @field_validator("start_at", "end_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return utc(value)

    @model_validator(mode="after")
    def _check(self) -> KpiQuery:
        check_period(self.start_at, self.end_at)
        check_grouping(self.by)
        return self


@dataclass(frozen=True)
class KpiRow:
    """One group's KPI: value, number of answers, interval (None below 2 answers)."""

    group: str
    value: float
    n: int
    low: float | None
    high: float | None
    se: float | None
    stats: AnswerStats

    @classmethod
    def of(cls, group: str, e: Estimate, stats: AnswerStats) -> KpiRow:
        return cls(group, e.value, e.n, e.low, e.high, e.se, stats)


@dataclass(frozen=True)
class KpiResult:
    query: KpiQuery
    overall: KpiRow | None  # None: no answers at all
    groups: tuple[KpiRow, ...]

    def group(self, name: str) -> KpiRow:
        for row in self.groups:
            if row.group == name:
                return row
        known = ", ".join(r.group for r in self.groups) or "none"
        raise NotFound(f"no {self.query.kind} answers for group {name!r} (groups: {known})")


def _answers(query: KpiQuery, warehouse: Warehouse) -> ir.Table:
    return between(scored_answers(warehouse, [query.kind]), query.start_at, query.end_at)


def kpi_expression(
    query: KpiQuery, warehouse: Warehouse, segments: Segments | None = None
) -> ir.Table:
    """The sums behind the KPI per group: group, n, promoters, detractors, satisfied, total
    and total_sq (`group` is "(none)" when there is no breakdown)."""
    return stats_by(
        with_group(_answers(query, warehouse), query.by, warehouse, segments), ["group"]
    )


def run_kpi(query: KpiQuery, warehouse: Warehouse, segments: Segments | None = None) -> KpiResult:
    """Execute the KPI: the overall value and one row per group, largest groups first."""
    rows = kpi_expression(query, warehouse, segments).to_pyarrow().to_pylist()
    by_group = {str(r["group"]): stats_from_row(r) for r in rows}
    if partitions(query.by):
        whole = total(by_group.values())
    else:  # a person can be in several segments, or in none: count each answer once
        whole = total(collect_stats(_answers(query, warehouse), []).values())
    overall = None
    if whole.n:
        overall = KpiRow.of(OVERALL, estimate(query.kind, whole, query.confidence), whole)
    ranked = sorted(by_group.items(), key=lambda item: (-item[1].n, item[0]))
    groups = tuple(KpiRow.of(g, estimate(query.kind, s, query.confidence), s) for g, s in ranked)
    return KpiResult(query, overall, groups if query.by is not None else ())


def kpi(
    warehouse: Warehouse,
    kind: str,
    *,
    start_at: datetime | None,
    end_at: datetime | None,
    by: str | None = None,
    segments: Segments | None = None,
    confidence: float = 0.95,
) -> KpiResult:
    """NPS, CSAT or CES of the answers in [start_at, end_at), overall and per group.

    For example `kpi(wh, "nps", start_at=monday, end_at=None, by="channel").group("app")`
    is the app's NPS since Monday with its 95% interval and number of answers;
    `by="segment"` takes `segments={"vip": ["p1", "p7"], ...}` or an Ibis table
    (person_id, segment), and then `overall` still counts every answer once.
    """
    query = KpiQuery(
        kind=check_kind(kind), start_at=start_at, end_at=end_at, by=by, confidence=confidence
    )
    return run_kpi(query, warehouse, segments)
