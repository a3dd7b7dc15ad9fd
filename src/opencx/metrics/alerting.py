"""KPI alerts: the latest days against the weeks before, flagged only beyond the noise.

Every KPI (NPS, CSAT, CES), overall and per channel and touchpoint, is compared between
the current window (default the last 7 days) and the baseline just before it (default
the 8 weeks before). A move is an alert when it is significant at `alpha` (default
0.01: with some 50 groups checked each week, 0.05 would cry wolf every week) and both
windows have at least `min_n` answers (small groups swing by chance).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from opencx.durations import parse_duration
from opencx.errors import InvalidInput
from opencx.metrics._answers import check_grouping, utc
from opencx.metrics.compare import changes, period_stats, significant
from opencx.metrics.kpis import OVERALL
from opencx.metrics.stats import KINDS, Difference, KpiKind, check_kind
from opencx.warehouse import Warehouse

LABELS = {"nps": "NPS", "csat": "CSAT", "ces": "CES"}


@dataclass(frozen=True)
class Alert:
    """One significant move of a KPI, with the sentence that explains it."""

    kind: KpiKind
    by: str | None  # None: overall
    group: str
    change: Difference
    message: str

    @property
    def worse(self) -> bool:
        """Every KPI here is better higher (CES: 7 = "very easy"), so a fall is worse."""
        return self.change.difference < 0


def alerts(
    warehouse: Warehouse,
    *,
    now: datetime,
    current: timedelta | str = "7d",
    baseline: timedelta | str = "8w",
    kinds: Sequence[str] = KINDS,
    by: Sequence[str] = ("channel", "touchpoint"),
    min_n: int = 30,
    alpha: float = 0.01,
    confidence: float = 0.95,
) -> list[Alert]:
    """The KPI moves of the last `current` against the `baseline` before it, most certain
    first, e.g. "NPS for touchpoint reset@app fell from 31 to 12 (−19, 95% interval −27
    to −11) in the last 7 days (212 answers; 1,804 in the 8 weeks before)".
    """
    moment = utc(now)
    window = parse_duration(current, field="current")
    history = parse_duration(baseline, field="baseline")
    if min_n < 2:
        raise InvalidInput(f"min_n must be at least 2, got {min_n}")
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha must be between 0 and 1, got {alpha}")
    wanted = [check_kind(k) for k in kinds]
    split = moment - window
    before, after = (split - history, split), (split, moment)
    found = []
    # Breakdowns partition the answers, so the first one's groups add up to the overall.
    for i, dimension in enumerate(list(by) or [None]):
        check_grouping(dimension)
        stats = period_stats(warehouse, wanted, before=before, after=after, by=dimension)
        for kind in wanted:
            found += [
                c
                for c in changes(stats, kind, dimension, min_n=min_n, confidence=confidence)
                if c.group != OVERALL or i == 0
            ]
    flagged = significant(found, alpha)
    return [
        Alert(
            c.kind,
            c.by,
            c.group,
            c.change,
            describe(c.kind, c.by, c.group, c.change, window, history),
        )
        for c in flagged
    ]


def describe(
    kind: str,
    by: str | None,
    group: str,
    change: Difference,
    current: timedelta,
    baseline: timedelta,
) -> str:
    """The sentence of an alert.

    >>> from opencx.metrics.stats import AnswerStats, nps_difference
    >>> d = nps_difference(AnswerStats(n=400, promoters=180, detractors=56),
    ...                    AnswerStats(n=200, promoters=70, detractors=46))
    >>> describe("nps", "touchpoint", "reset@app", d, timedelta(days=7), timedelta(weeks=8))
    'NPS for touchpoint reset@app fell from 31 to 12 (−19, 95% interval −31 to −7) in the last 7 days (200 answers; 400 in the 8 weeks before)'
    """  # noqa: E501
    where = "overall" if by is None else f"for {by.replace(':', ' ')} {group}"
    verb = "rose" if change.difference > 0 else "fell"
    decimals = 1 if kind == "ces" else 0
    change_text = _number(change.difference, decimals, signed=True)
    points = ""
    if kind == "csat":  # percentage points, so "−5 points", never "−5%"
        points = " point" if change_text.lstrip("+−") == "1" else " points"
    unit = "%" if kind == "csat" else ""
    level = f"{change.before.confidence * 100:g}"
    return (
        f"{LABELS[kind]} {where} {verb} from {_number(change.before.value, decimals)}{unit} "
        f"to {_number(change.after.value, decimals)}{unit} "
        f"({change_text}{points}, {level}% interval "
        f"{_number(change.low, decimals)} to {_number(change.high, decimals)}) "
        f"in the last {_span(current)} ({change.after.n:,} answers; "
        f"{change.before.n:,} in the {_span(baseline)} before)"
    )


def _number(value: float, decimals: int, *, signed: bool = False) -> str:
    text = f"{abs(value):,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        return text
    if value < 0:
        return "−" + text  # the minus sign, as in print
    return "+" + text if signed else text


def _span(delta: timedelta) -> str:
    """'7 days', '8 weeks', '24 hours', '1 day'."""
    seconds = int(delta.total_seconds())
    for name, size in (("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0 and (name != "week" or seconds >= 2 * size):
            count = seconds // size
            return f"{count} {name}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
