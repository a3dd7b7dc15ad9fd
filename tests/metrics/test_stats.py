"""The statistics: hand-computed values, interval coverage by simulation, tests that behave."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from opencx.errors import InvalidInput
from opencx.metrics import stats
from opencx.metrics.stats import (
    AnswerStats,
    ces_difference,
    ces_estimate,
    csat_difference,
    csat_estimate,
    difference,
    estimate,
    nps_difference,
    nps_estimate,
)

SIMULATIONS = 400  # samples per check: coverage then has a standard error of ~1.1 points
NPS_P = np.array([0.20, 0.35, 0.45])  # detractor, passive, promoter: NPS = 25
CSAT_P = 0.8
CES_SCALE = np.arange(1, 8)
CES_P = np.array([0.04, 0.06, 0.10, 0.15, 0.25, 0.25, 0.15])  # skewed towards "easy"


def nps_sample(rng: np.random.Generator, n: int, p: np.ndarray = NPS_P) -> AnswerStats:
    detractors, _, promoters = rng.multinomial(n, p)
    return AnswerStats(n=n, promoters=int(promoters), detractors=int(detractors))


def csat_sample(rng: np.random.Generator, n: int, p: float = CSAT_P) -> AnswerStats:
    return AnswerStats(n=n, satisfied=int(rng.binomial(n, p)))


def ces_sample(rng: np.random.Generator, n: int, p: np.ndarray = CES_P) -> AnswerStats:
    return AnswerStats.of(rng.choice(CES_SCALE, size=n, p=p).tolist())


# -- hand-computed values --------------------------------------------------------------
def test_nps_and_its_multinomial_standard_error() -> None:
    scores = [10] * 45 + [9] * 45 + [8] * 40 + [7] * 30 + [6] * 20 + [0] * 20  # n = 200
    e = nps_estimate(AnswerStats.of(scores))
    plus, minus = 90 / 200, 40 / 200
    se = math.sqrt((plus + minus - (plus - minus) ** 2) / 200)
    assert e.value == pytest.approx(25.0)
    assert e.se == pytest.approx(100 * se)
    assert (e.low, e.high) == pytest.approx((25 - 196 * se, 25 + 196 * se), rel=1e-3)


def test_csat_and_its_wilson_interval() -> None:
    e = csat_estimate(AnswerStats.of([5] * 30 + [4] * 10 + [3] * 6 + [1] * 4))  # 40 of 50
    z, n, p = 1.959964, 50, 0.8
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert e.value == pytest.approx(80.0)
    assert (e.low, e.high) == pytest.approx((100 * (centre - half), 100 * (centre + half)))


def test_ces_mean_and_its_t_interval() -> None:
    scores = [7, 6, 6, 5, 2, 4, 7, 1]
    e = ces_estimate(AnswerStats.of(scores))
    se = np.std(scores, ddof=1) / math.sqrt(len(scores))
    t = scipy_stats.t.ppf(0.975, len(scores) - 1)
    assert e.value == pytest.approx(np.mean(scores))
    assert (e.low, e.high) == pytest.approx((np.mean(scores) - t * se, np.mean(scores) + t * se))


def test_one_answer_has_a_value_but_no_interval() -> None:
    for kind in ("nps", "ces"):
        e = estimate(kind, AnswerStats.of([9]))
        assert e.n == 1 and e.low is None and e.high is None
    assert csat_estimate(AnswerStats.of([5])).low is not None  # Wilson copes with n = 1


def test_nps_intervals_stay_on_the_scale() -> None:
    e = nps_estimate(AnswerStats.of([10] * 9 + [8]))
    assert e.high == 100.0 and e.low is not None and e.low < 90


def test_sums_add_up_across_groups() -> None:
    a, b = AnswerStats.of([1, 9, 4]), AnswerStats.of([10, 6])
    assert a + b == AnswerStats.of([1, 9, 4, 10, 6])


def test_unknown_kinds_and_empty_groups_are_refused() -> None:
    with pytest.raises(InvalidInput, match="nps, csat or ces"):
        estimate("effort", AnswerStats.of([1]))
    with pytest.raises(InvalidInput, match="at least 1 answers"):
        csat_estimate(AnswerStats())
    with pytest.raises(InvalidInput, match="at least 2 answers"):
        ces_difference(AnswerStats.of([1]), AnswerStats.of([2, 3]))
    with pytest.raises(InvalidInput, match="confidence"):
        nps_estimate(AnswerStats.of([1, 2]), confidence=1.5)


# -- coverage ----------------------------------------------------------------------------
def coverage(sample: object, truth: float, kind: str, n: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(SIMULATIONS):
        e = estimate(kind, sample(rng, n))  # type: ignore[operator]
        assert e.low is not None and e.high is not None
        hits += e.low <= truth <= e.high
    return hits / SIMULATIONS


def test_nps_intervals_cover_the_true_value_95_percent_of_the_time() -> None:
    assert 0.92 <= coverage(nps_sample, 25.0, "nps", 200, seed=0) <= 0.98


def test_csat_intervals_cover_the_true_value_95_percent_of_the_time() -> None:
    assert 0.92 <= coverage(csat_sample, 80.0, "csat", 120, seed=0) <= 0.98


def test_ces_intervals_cover_the_true_value_95_percent_of_the_time() -> None:
    truth = float(np.dot(CES_SCALE, CES_P))
    assert 0.92 <= coverage(ces_sample, truth, "ces", 60, seed=0) <= 0.98


# -- tests of change ---------------------------------------------------------------------
def null_p_values(sample: object, kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array(
        [
            difference(kind, sample(rng, n), sample(rng, n)).p_value  # type: ignore[operator]
            for _ in range(SIMULATIONS)
        ]
    )


@pytest.mark.parametrize(
    ("kind", "sample", "n"),
    [("nps", nps_sample, 200), ("csat", csat_sample, 150), ("ces", ces_sample, 60)],
)
def test_without_a_change_p_values_are_about_uniform(kind: str, sample: object, n: int) -> None:
    p = null_p_values(sample, kind, n, seed=11)
    assert 0.02 <= np.mean(p < 0.05) <= 0.085  # false alarms near the nominal 5%
    assert np.mean(p < 0.01) <= 0.03
    assert 0.4 <= np.mean(p < 0.5) <= 0.6
    assert scipy_stats.kstest(p, "uniform").pvalue > 0.001  # CSAT's is lumpy, not skewed


def test_a_clear_change_has_a_tiny_p_value() -> None:
    rng = np.random.default_rng(5)
    worse_nps = np.array([0.40, 0.35, 0.25])  # NPS 25 -> -15
    d = nps_difference(nps_sample(rng, 400), nps_sample(rng, 400, worse_nps))
    assert d.p_value < 1e-6 and d.high < 0 and d.low < d.difference < d.high
    d = csat_difference(csat_sample(rng, 400), csat_sample(rng, 400, 0.6))
    assert d.p_value < 1e-6 and d.high < 0
    easier = np.array([0.01, 0.02, 0.04, 0.08, 0.20, 0.35, 0.30])
    d = ces_difference(ces_sample(rng, 300), ces_sample(rng, 300, easier))
    assert d.p_value < 1e-6 and d.low > 0


def test_difference_intervals_cover_the_true_change() -> None:
    rng = np.random.default_rng(8)
    worse = np.array([0.25, 0.35, 0.40])  # NPS 15: a true change of -10
    hits = 0
    for _ in range(SIMULATIONS):
        d = nps_difference(nps_sample(rng, 300), nps_sample(rng, 300, worse))
        hits += d.low <= -10 <= d.high
    assert 0.92 <= hits / SIMULATIONS <= 0.98


def test_groups_with_no_spread_differ_for_certain_or_not_at_all() -> None:
    all_promoters = AnswerStats.of([10] * 20)
    assert nps_difference(all_promoters, all_promoters).p_value == 1.0
    assert nps_difference(all_promoters, AnswerStats.of([0] * 20)).p_value == 0.0
    assert csat_difference(AnswerStats.of([5] * 9), AnswerStats.of([4] * 9)).p_value == 1.0
    assert ces_difference(AnswerStats.of([7, 7]), AnswerStats.of([7, 7])).p_value == 1.0


def test_docstring_examples() -> None:
    assert doctest.testmod(stats).failed == 0
