"""NPS, CSAT and CES with their uncertainty, and tests of a change, from summed answers.

Everything here works on `AnswerStats`: six sums that an engine computes in one pass
(`kpis.answer_stats`) and that add up across groups. The formulas are the textbook ones:

- NPS = 100 × (p₊ − p₋), promoters 9–10 and detractors 0–6. One answer is +1, 0 or −1,
  so its variance is p₊ + p₋ − (p₊ − p₋)² (multinomial) and the interval is normal
  (Wald); the difference of two NPS is a two-sample z-test on those variances.
- CSAT = % of answers 4–5, with a Wilson score interval; a change is tested with the
  pooled two-proportion z-test, and its interval is Newcombe's hybrid score interval
  (it keeps its coverage near 0 % and 100 %, where the Wald interval does not).
- CES = mean agreement (1–7) that "the company made it easy", so LOW is bad; a Student
  t interval, and Welch's t-test for a change (unequal variances).

Values are on the scale people read: NPS in points (−100…100), CSAT in % (0…100), CES on
its 1–7 scale; differences in the same units.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from scipy import stats as _dist

from opencx.errors import InvalidInput

KpiKind = Literal["nps", "csat", "ces"]
KINDS: tuple[KpiKind, ...] = ("nps", "csat", "ces")


@dataclass(frozen=True, slots=True)
class AnswerStats:
    """What every KPI needs from a set of answers; sums, so groups add up.

    >>> AnswerStats.of([10, 9, 7, 3]).promoters
    2
    """

    n: int = 0
    promoters: int = 0  # score >= 9 (NPS)
    detractors: int = 0  # score <= 6 (NPS)
    satisfied: int = 0  # score >= 4 (CSAT)
    total: float = 0.0  # sum of scores (CES)
    total_sq: float = 0.0  # sum of squared scores (CES)

    @classmethod
    def of(cls, scores: Iterable[float]) -> AnswerStats:
        values = [float(s) for s in scores]
        return cls(
            n=len(values),
            promoters=sum(s >= 9 for s in values),
            detractors=sum(s <= 6 for s in values),
            satisfied=sum(s >= 4 for s in values),
            total=sum(values),
            total_sq=sum(s * s for s in values),
        )

    def __add__(self, other: AnswerStats) -> AnswerStats:
        return AnswerStats(
            self.n + other.n,
            self.promoters + other.promoters,
            self.detractors + other.detractors,
            self.satisfied + other.satisfied,
            self.total + other.total,
            self.total_sq + other.total_sq,
        )

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """The sample variance of the scores (n − 1 in the denominator)."""
        if self.n < 2:
            return math.nan
        return max(0.0, (self.total_sq - self.n * self.mean**2) / (self.n - 1))


@dataclass(frozen=True, slots=True)
class Estimate:
    """A KPI value with its standard error and interval (None when n is too small)."""

    kind: KpiKind
    value: float
    n: int
    se: float | None
    low: float | None
    high: float | None
    confidence: float


@dataclass(frozen=True, slots=True)
class Difference:
    """`after` − `before`, its interval, and the two-sided p-value of no change."""

    kind: KpiKind
    before: Estimate
    after: Estimate
    difference: float
    low: float
    high: float
    p_value: float
    statistic: float


def check_kind(kind: str) -> KpiKind:
    if kind not in KINDS:
        raise InvalidInput(f"KPI must be one of nps, csat or ces, got {kind!r}")
    return kind


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise InvalidInput(f"confidence must be between 0 and 1, got {confidence}")
    return float(_dist.norm.ppf(0.5 + confidence / 2))


def _need(stats: AnswerStats, at_least: int, kind: str) -> None:
    if stats.n < at_least:
        raise InvalidInput(f"{kind} needs at least {at_least} answers, got {stats.n}")


def nps_estimate(stats: AnswerStats, confidence: float = 0.95) -> Estimate:
    """NPS with its multinomial standard error and normal interval.

    >>> e = nps_estimate(AnswerStats(n=200, promoters=90, detractors=40))
    >>> round(e.value), round(e.se, 2), round(e.low, 1), round(e.high, 1)
    (25, 5.42, 14.4, 35.6)
    """
    _need(stats, 1, "NPS")
    z = _z(confidence)
    plus, minus = stats.promoters / stats.n, stats.detractors / stats.n
    value = plus - minus
    if stats.n < 2:  # one answer says nothing about the spread
        return Estimate("nps", 100 * value, stats.n, None, None, None, confidence)
    se = math.sqrt(max(0.0, plus + minus - value**2) / stats.n)
    low, high = max(-1.0, value - z * se), min(1.0, value + z * se)
    return Estimate("nps", 100 * value, stats.n, 100 * se, 100 * low, 100 * high, confidence)


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def csat_estimate(stats: AnswerStats, confidence: float = 0.95) -> Estimate:
    """CSAT (% of 4–5) with a Wilson score interval.

    >>> e = csat_estimate(AnswerStats(n=50, satisfied=40))
    >>> e.value, round(e.low, 1), round(e.high, 1)
    (80.0, 67.0, 88.8)
    """
    _need(stats, 1, "CSAT")
    p = stats.satisfied / stats.n
    low, high = _wilson(stats.satisfied, stats.n, _z(confidence))
    se = math.sqrt(p * (1 - p) / stats.n)
    return Estimate("csat", 100 * p, stats.n, 100 * se, 100 * low, 100 * high, confidence)


def ces_estimate(stats: AnswerStats, confidence: float = 0.95) -> Estimate:
    """CES (mean, 1–7) with a Student t interval.

    >>> e = ces_estimate(AnswerStats.of([7, 6, 6, 5, 2]))
    >>> e.value, round(e.low, 2), round(e.high, 2)
    (5.2, 2.81, 7.59)
    """
    _need(stats, 1, "CES")
    _z(confidence)
    if stats.n < 2:
        return Estimate("ces", stats.mean, stats.n, None, None, None, confidence)
    se = math.sqrt(stats.variance / stats.n)
    t = float(_dist.t.ppf(0.5 + confidence / 2, stats.n - 1))
    return Estimate(
        "ces", stats.mean, stats.n, se, stats.mean - t * se, stats.mean + t * se, confidence
    )


_ESTIMATORS = {"nps": nps_estimate, "csat": csat_estimate, "ces": ces_estimate}


def estimate(kind: str, stats: AnswerStats, confidence: float = 0.95) -> Estimate:
    """The estimate of `kind` (nps, csat or ces) from summed answers."""
    return _ESTIMATORS[check_kind(kind)](stats, confidence)


def _two_sided_p(statistic: float) -> float:
    return float(2 * _dist.norm.sf(abs(statistic)))


def _degenerate(difference: float) -> tuple[float, float]:
    """(statistic, p) when both sides have no spread: any difference is certain."""
    return (0.0, 1.0) if difference == 0 else (math.copysign(math.inf, difference), 0.0)


def nps_difference(before: AnswerStats, after: AnswerStats, confidence: float = 0.95) -> Difference:
    """Two-sample z-test of a change in NPS, with the multinomial variance of each side.

    >>> d = nps_difference(AnswerStats(n=400, promoters=180, detractors=80),
    ...                    AnswerStats(n=400, promoters=130, detractors=120))
    >>> round(d.difference), round(d.low, 1), round(d.high, 1), d.p_value < 0.001
    (-22, -33.3, -11.7, True)
    """
    _need(before, 2, "NPS")
    _need(after, 2, "NPS")
    a, b = nps_estimate(before, confidence), nps_estimate(after, confidence)
    diff = b.value - a.value
    se = math.hypot(a.se or 0.0, b.se or 0.0)
    z = _z(confidence)
    if se == 0:
        statistic, p = _degenerate(diff)
    else:
        statistic = diff / se
        p = _two_sided_p(statistic)
    return Difference("nps", a, b, diff, diff - z * se, diff + z * se, p, statistic)


def csat_difference(
    before: AnswerStats, after: AnswerStats, confidence: float = 0.95
) -> Difference:
    """Two-proportion z-test (pooled) of a change in CSAT; Newcombe's score interval.

    >>> d = csat_difference(AnswerStats(n=300, satisfied=240), AnswerStats(n=300, satisfied=210))
    >>> round(d.difference), round(d.low, 1), round(d.high, 1), round(d.p_value, 4)
    (-10, -16.8, -3.1, 0.0047)
    """
    _need(before, 1, "CSAT")
    _need(after, 1, "CSAT")
    a, b = csat_estimate(before, confidence), csat_estimate(after, confidence)
    z = _z(confidence)
    p1, p2 = before.satisfied / before.n, after.satisfied / after.n
    l1, u1 = _wilson(before.satisfied, before.n, z)
    l2, u2 = _wilson(after.satisfied, after.n, z)
    diff = p2 - p1
    low = diff - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = diff + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    pooled = (before.satisfied + after.satisfied) / (before.n + after.n)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / before.n + 1 / after.n))
    if se0 == 0:
        statistic, p = _degenerate(diff)
    else:
        statistic = diff / se0
        p = _two_sided_p(statistic)
    return Difference("csat", a, b, 100 * diff, 100 * low, 100 * high, p, statistic)


def ces_difference(before: AnswerStats, after: AnswerStats, confidence: float = 0.95) -> Difference:
    """Welch's t-test of a change in CES (unequal variances, Welch–Satterthwaite df).

    >>> d = ces_difference(AnswerStats.of([6, 7, 5, 6, 6, 7]), AnswerStats.of([4, 5, 3, 4, 5, 4]))
    >>> round(d.difference, 2), round(d.low, 2), round(d.high, 2), d.p_value < 0.001
    (-2.0, -2.97, -1.03, True)
    """
    _need(before, 2, "CES")
    _need(after, 2, "CES")
    a, b = ces_estimate(before, confidence), ces_estimate(after, confidence)
    diff = b.value - a.value
    va, vb = before.variance / before.n, after.variance / after.n
    se = math.sqrt(va + vb)
    if se == 0:
        statistic, p = _degenerate(diff)
        return Difference("ces", a, b, diff, diff, diff, p, statistic)
    df = (va + vb) ** 2 / (va**2 / (before.n - 1) + vb**2 / (after.n - 1))
    statistic = diff / se
    p = float(2 * _dist.t.sf(abs(statistic), df))
    t = float(_dist.t.ppf(0.5 + confidence / 2, df))
    return Difference("ces", a, b, diff, diff - t * se, diff + t * se, p, statistic)


_DIFFERENCES = {"nps": nps_difference, "csat": csat_difference, "ces": ces_difference}


def difference(
    kind: str, before: AnswerStats, after: AnswerStats, confidence: float = 0.95
) -> Difference:
    """The change `after` − `before` in `kind`, with its interval and p-value."""
    return _DIFFERENCES[check_kind(kind)](before, after, confidence)
