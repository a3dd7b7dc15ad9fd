"""Journeys and touchpoints: funnels, paths, cohorts and diagnostics over the interaction log."""

from __future__ import annotations

from opencx.journeys._time import parse_duration
from opencx.journeys.funnel import (
    FunnelComparison,
    FunnelQuery,
    FunnelResult,
    FunnelRow,
    FunnelStep,
    compare_funnels,
    funnel_expression,
    run_funnel,
    two_proportion_p,
)
from opencx.journeys.touchpoints import (
    ASSISTED_CHANNELS,
    DIGITAL_CHANNELS,
    STAGES,
    Touchpoint,
    TouchpointModel,
    guess_stage,
    infer_touchpoints,
    model_from_counts,
    parse_touchpoints,
    touchpoint_id,
)

__all__ = [
    "ASSISTED_CHANNELS",
    "DIGITAL_CHANNELS",
    "STAGES",
    "FunnelComparison",
    "FunnelQuery",
    "FunnelResult",
    "FunnelRow",
    "FunnelStep",
    "Touchpoint",
    "TouchpointModel",
    "compare_funnels",
    "funnel_expression",
    "guess_stage",
    "infer_touchpoints",
    "model_from_counts",
    "parse_duration",
    "parse_touchpoints",
    "run_funnel",
    "touchpoint_id",
    "two_proportion_p",
]
