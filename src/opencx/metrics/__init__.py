"""Experience KPIs with honest statistics: intervals, tests of change, alerts, profitability."""

from __future__ import annotations

from opencx.metrics._answers import NO_GROUP, Segments
from opencx.metrics.alerting import Alert, alerts
from opencx.metrics.compare import Change, compare_groups, compare_periods
from opencx.metrics.kpis import OVERALL, KpiQuery, KpiResult, KpiRow, kpi, kpi_expression, run_kpi
from opencx.metrics.profitability import SegmentProfit, profitability
from opencx.metrics.stats import (
    KINDS,
    AnswerStats,
    Difference,
    Estimate,
    KpiKind,
    ces_difference,
    ces_estimate,
    csat_difference,
    csat_estimate,
    difference,
    estimate,
    nps_difference,
    nps_estimate,
)
from opencx.metrics.value import SegmentValue, clv_by_person, value_by_segment

__all__ = [
    "KINDS",
    "NO_GROUP",
    "OVERALL",
    "Alert",
    "AnswerStats",
    "Change",
    "Difference",
    "Estimate",
    "KpiKind",
    "KpiQuery",
    "KpiResult",
    "KpiRow",
    "SegmentProfit",
    "SegmentValue",
    "Segments",
    "alerts",
    "ces_difference",
    "ces_estimate",
    "clv_by_person",
    "compare_groups",
    "compare_periods",
    "csat_difference",
    "csat_estimate",
    "difference",
    "estimate",
    "kpi",
    "kpi_expression",
    "nps_difference",
    "nps_estimate",
    "profitability",
    "run_kpi",
    "value_by_segment",
]
