"""Experience KPIs with honest statistics: intervals, tests of change, alerts, profitability,
effort read from behaviour and the key drivers of an outcome."""

from __future__ import annotations

from opencx.metrics._answers import NO_GROUP, Segments
from opencx.metrics.alerting import Alert, alerts
from opencx.metrics.compare import Change, compare_groups, compare_periods
from opencx.metrics.drivers import (
    OUTCOMES,
    Driver,
    DriverResult,
    OutcomeKind,
    Themes,
    key_drivers,
    outcome_rows,
)
from opencx.metrics.effort import (
    SIGNALS,
    EffortRules,
    assisted_contacts,
    effort_by_segment,
    effort_by_touchpoint,
    effort_signals,
)
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
    "OUTCOMES",
    "OVERALL",
    "SIGNALS",
    "Alert",
    "AnswerStats",
    "Change",
    "Difference",
    "Driver",
    "DriverResult",
    "EffortRules",
    "Estimate",
    "KpiKind",
    "KpiQuery",
    "KpiResult",
    "KpiRow",
    "OutcomeKind",
    "SegmentProfit",
    "SegmentValue",
    "Segments",
    "Themes",
    "alerts",
    "assisted_contacts",
    "ces_difference",
    "ces_estimate",
    "clv_by_person",
    "compare_groups",
    "compare_periods",
    "csat_difference",
    "csat_estimate",
    "difference",
    "effort_by_segment",
    "effort_by_touchpoint",
    "effort_signals",
    "estimate",
    "key_drivers",
    "kpi",
    "kpi_expression",
    "nps_difference",
    "nps_estimate",
    "outcome_rows",
    "profitability",
    "run_kpi",
    "value_by_segment",
]
