"""What segments are worth: expected customer lifetime value and profit, side by side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from opencx.errors import InvalidInput
from opencx.segments import calibration_summary, clv
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
