"""What segments are worth: expected customer lifetime value and profit, side by side,
and each saved segment's summary (size, NPS, value, profit) for the pages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import numpy as np

from opencx.errors import InvalidInput
from opencx.metrics.kpis import KpiRow, kpi
from opencx.metrics.profitability import SegmentProfit, profitability
from opencx.segments import (
    SegmentDefinition,
    calibration_summary,
    clv,
    saved_segments,
    segment_size_history,
)
from opencx.warehouse import Warehouse


@dataclass(frozen=True)
class SegmentValue:
    segment: str
    customers: int
    mean_clv: float | None


def clv_by_person(
    warehouse: Warehouse, *, now: datetime, horizon_weeks: float = 52.0
) -> dict[str, float]:
    """Each buyer's expected revenue over the next `horizon_weeks` (BG/NBD + Gamma-Gamma
    fitted on everyone's orders up to `now`); empty when there are too few buyers."""
    summary = calibration_summary(warehouse, end_at=now)
    repeaters = int(np.count_nonzero((summary.frequency > 0) & (summary.monetary > 0)))
    if len(summary.person_id) < 50 or repeaters < 20:
        return {}
    try:
        values = clv(summary.frequency, summary.recency, summary.T, summary.monetary, horizon_weeks)
    except InvalidInput:
        return {}
    return dict(zip(summary.person_id, (float(v) for v in values), strict=True))


def value_by_segment(members: dict[str, list[str]], clv_of: dict[str, float]) -> list[SegmentValue]:
    """Mean expected lifetime value of each segment's buyers (None where none bought)."""
    out = []
    for name, people in members.items():
        values = [clv_of[p] for p in people if p in clv_of]
        out.append(SegmentValue(name, len(values), float(np.mean(values)) if values else None))
    return out


@dataclass(frozen=True)
class SegmentSummary:
    """One saved segment as last refreshed: size, NPS, expected value, profit."""

    segment: SegmentDefinition
    size: int
    refreshed_at: datetime | None  # None: never refreshed (no members yet)
    nps: KpiRow | None
    value: SegmentValue | None
    profit: SegmentProfit | None


def segment_summaries(
    con: duckdb.DuckDBPyConnection,
    warehouse: Warehouse,
    *,
    now: datetime,
    contact_costs: Mapping[str, float],
) -> list[SegmentSummary]:
    """Every saved segment with its members as last refreshed (`segment_members`): size,
    NPS with its interval over all answers, mean expected lifetime value of its buyers
    (next 52 weeks) and profit over the last 12 months."""
    segments = saved_segments(con)
    if not segments:
        return []
    members: dict[str, list[str]] = {}
    refreshed: dict[str, datetime] = {}
    for name, person, at in con.execute(
        "SELECT segment, person_id, refreshed_at FROM segment_members"
    ).fetchall():
        members.setdefault(name, []).append(person)
        refreshed[name] = max(refreshed.get(name, at), at)
    for s in segments:
        history = segment_size_history(con, s.name)
        if s.name not in refreshed and history:
            refreshed[s.name] = history[-1].at  # refreshed, and empty
    nps = {r.group: r for r in kpi(warehouse, "nps", start_at=None, end_at=None, by="segment",
                                    segments=members).groups}  # fmt: skip
    worth = {v.segment: v for v in value_by_segment(members, clv_by_person(warehouse, now=now))}
    profit = {
        p.segment: p
        for p in profitability(
            warehouse, members, start_at=now - timedelta(days=365), end_at=None,
            contact_costs=contact_costs,
        )
    }  # fmt: skip
    return [
        SegmentSummary(
            s,
            len(members.get(s.name, ())),
            refreshed.get(s.name),
            nps.get(s.name),
            worth.get(s.name),
            profit.get(s.name),
        )
        for s in segments
    ]
