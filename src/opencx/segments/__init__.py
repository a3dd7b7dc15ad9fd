"""Segments: a safe rule language over traits and behaviour, RFM, lifetime value."""

from __future__ import annotations

from opencx.segments._orders import ORDER_EVENT, day_number, order_revenue, orders
from opencx.segments.bgnbd import BgNbd, fit_bgnbd
from opencx.segments.compile import ALIASES, field_types, rule_expression
from opencx.segments.evaluate import (
    evaluate_segment,
    membership_expression,
    segment_expression,
    segment_sizes_now,
)
from opencx.segments.features import (
    COMPUTED_TRAITS,
    FEATURES,
    computed_traits_table,
    features_expression,
)
from opencx.segments.gamma_gamma import GammaGamma, fit_gamma_gamma
from opencx.segments.rules import MAX_DEPTH, MAX_LENGTH, Field, Rule, parse_rule
from opencx.segments.saved import (
    SegmentDefinition,
    SegmentRefresh,
    SegmentSize,
    TraitWriter,
    delete_segment,
    parse_segment,
    record_segment_sizes,
    refresh_segments,
    save_segment,
    saved_memberships,
    saved_segment,
    saved_segments,
    segment_size_history,
)
from opencx.segments.value import (
    CalibrationSummary,
    calibration_expression,
    calibration_summary,
    clv,
)

__all__ = [
    "ALIASES",
    "COMPUTED_TRAITS",
    "FEATURES",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "ORDER_EVENT",
    "BgNbd",
    "CalibrationSummary",
    "Field",
    "GammaGamma",
    "Rule",
    "SegmentDefinition",
    "SegmentRefresh",
    "SegmentSize",
    "TraitWriter",
    "calibration_expression",
    "calibration_summary",
    "clv",
    "computed_traits_table",
    "day_number",
    "delete_segment",
    "evaluate_segment",
    "features_expression",
    "field_types",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "membership_expression",
    "order_revenue",
    "orders",
    "parse_rule",
    "parse_segment",
    "record_segment_sizes",
    "refresh_segments",
    "rule_expression",
    "save_segment",
    "saved_memberships",
    "saved_segment",
    "saved_segments",
    "segment_expression",
    "segment_size_history",
    "segment_sizes_now",
]
