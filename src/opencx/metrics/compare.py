"""Did a KPI really change? Two periods, or two groups, tested against the noise.

NPS changes use a two-sample z-test on the multinomial variances, CSAT the
two-proportion z-test, CES Welch's t-test (`opencx.metrics.stats`). Both periods are
summed in one query, grouped by KPI, period and group.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import ibis

from opencx.errors import InvalidInput
from opencx.metrics._answers import (
    Segments,
    check_grouping,
    check_period,
    collect_stats,
    partitions,
    scored_answers,
    utc,
    with_group,
)
from opencx.metrics.kpis import OVERALL, KpiResult
from opencx.metrics.stats import AnswerStats, Difference, KpiKind, check_kind, difference
from opencx.warehouse import Warehouse

Period = tuple[datetime, datetime]
"""[start, end) in UTC (naive datetimes are taken as UTC)."""

BEFORE, AFTER = "before", "after"
# Each side needs this many answers for its variance to exist (CES: n - 1 > 0).
_MIN_ANSWERS = 2


@dataclass(frozen=True)
class Change:
    """A group's change from the first period to the second."""

    kind: KpiKind
    by: str | None  # None for the overall
    group: str
    change: Difference


PeriodStats = dict[tuple[str, str, str], AnswerStats]
"""(kind, "before" | "after", group) → summed answers; group OVERALL is the whole."""


def _period(name: str, period: Period) -> tuple[datetime, datetime]:
    start, end = utc(period[0]), utc(period[1])
    if start is None or end is None:
        raise InvalidInput(f"{name} needs a start and an end")
    check_period(start, end)
    return start, end


def period_stats(
    warehouse: Warehouse,
    kinds: Collection[str],
    *,
    before: Period,
    after: Period,
    by: str | None = None,
    segments: Segments | None = None,
) -> PeriodStats:
    """The answers of both periods summed per KPI, period and group, in one query (two for
    segments, which overlap, so the whole is counted apart)."""
    b0, b1 = _period(BEFORE, before)
    a0, a1 = _period(AFTER, after)
    if b0 < a1 and a0 < b1:
        raise InvalidInput(
            f"the periods overlap: before is {b0.isoformat()} to {b1.isoformat()}, "
            f"after {a0.isoformat()} to {a1.isoformat()}"
        )
    check_grouping(by)
    t = scored_answers(warehouse, [check_kind(k) for k in kinds])
    t = t.filter((t.at >= min(a0, b0)) & (t.at < max(a1, b1)))
    t = t.mutate(
        period=ibis.cases(((t.at >= a0) & (t.at < a1), AFTER), ((t.at >= b0) & (t.at < b1), BEFORE))
    )
    t = t.filter(t.period.notnull())
    out: PeriodStats = {}
    grouped = collect_stats(with_group(t, by, warehouse, segments), ["kind", "period", "group"])
    if by is not None:
        out.update({(k, p, str(g)): s for (k, p, g), s in grouped.items()})
    if partitions(by):
        wholes: dict[tuple[str, str], AnswerStats] = {}
        for (k, p, _), s in grouped.items():
            wholes[k, p] = wholes.get((k, p), AnswerStats()) + s
    else:
        wholes = {(k, p): s for (k, p), s in collect_stats(t, ["kind", "period"]).items()}
    out.update({(k, p, OVERALL): s for (k, p), s in wholes.items()})
    return out


def changes(
    stats: PeriodStats, kind: str, by: str | None, *, min_n: int = _MIN_ANSWERS, confidence: float
) -> list[Change]:
    """Every group of `kind` with at least `min_n` answers in both periods, tested."""
    found = []
    groups = sorted({g for (k, _, g) in stats if k == kind}, key=lambda g: (g != OVERALL, g))
    for group in groups:
        first, second = stats.get((kind, BEFORE, group)), stats.get((kind, AFTER, group))
        if first is None or second is None or min(first.n, second.n) < max(min_n, 2):
            continue
        change = difference(kind, first, second, confidence)
        found.append(Change(change.kind, None if group == OVERALL else by, group, change))
    return found


def compare_periods(
    warehouse: Warehouse,
    kind: str,
    *,
    before: Period,
    after: Period,
    by: str | None = None,
    segments: Segments | None = None,
    confidence: float = 0.95,
) -> list[Change]:
    """The change of a KPI from `before` to `after`: overall first, then each group with at
    least two answers in both periods.

    For example `compare_periods(wh, "csat", before=(jan, feb), after=(feb, mar))[0]` is
    the overall change: `.change.difference` in points, `.change.low`/`.high` its 95%
    interval, `.change.p_value` the chance of a change this large from noise alone.
    """
    stats = period_stats(warehouse, [kind], before=before, after=after, by=by, segments=segments)
    return changes(stats, kind, by, confidence=confidence)


def compare_groups(result: KpiResult, first: str, second: str) -> Difference:
    """The difference `second` − `first` between two groups of one KPI result, e.g.
    `compare_groups(kpi(wh, "ces", start_at=None, end_at=None, by="channel"), "web", "app")`.
    """
    a, b = result.group(first), result.group(second)
    return difference(result.query.kind, a.stats, b.stats, result.query.confidence)


def significant(found: Sequence[Change], alpha: float) -> list[Change]:
    """The changes with p < alpha, most certain first."""
    return sorted((c for c in found if c.change.p_value < alpha), key=lambda c: c.change.p_value)
