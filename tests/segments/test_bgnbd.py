"""BG/NBD: the published CDNOW fit, the paper's worked numbers, and input checks."""

from __future__ import annotations

import csv
import doctest

import numpy as np
import pytest

from opencx.errors import InvalidInput
from opencx.segments import bgnbd, fit_bgnbd
from opencx.segments.bgnbd import BgNbd
from tests.segments.conftest import cdnow_file

# Fader, Hardie & Lee (2005), section 5: the CDNOW sample, 39-week calibration.
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PAPER = BgNbd(**PUBLISHED, log_likelihood=-9582.4, customers=2357)


def cdnow_summary() -> dict[str, np.ndarray]:
    with cdnow_file("cdnow_customers_summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in ("frequency", "recency", "T")}


def test_the_cdnow_fit_gives_the_published_parameters() -> None:
    s = cdnow_summary()
    model = fit_bgnbd(s["frequency"], s["recency"], s["T"])
    assert model.customers == 2357
    for name, value in PUBLISHED.items():
        assert getattr(model, name) == pytest.approx(value, rel=0.02), name
    assert model.log_likelihood == pytest.approx(-9582.4, abs=0.1)


def test_the_papers_worked_numbers() -> None:
    # A customer with 2 repeat purchases, the last at week 30.43, observed for 38.86 weeks,
    # is expected to buy 1.226 times in the next 39 weeks (paper, section 5).
    assert PAPER.expected_purchases(39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=1e-3)
    # Expected purchases of a new customer grow with time and stay below a Poisson's.
    curve = PAPER.expected_purchases_new([1, 39, 78])
    assert np.all(np.diff(curve) > 0) and curve[1] == pytest.approx(1.197, abs=1e-3)


def test_probability_alive_falls_with_a_long_silence() -> None:
    alive = PAPER.probability_alive([0, 5, 5, 5], [0, 38, 20, 2], [38.86] * 4)
    assert alive[0] == 1.0  # never bought again: no evidence of dropping out
    assert alive[1] > alive[2] > alive[3]


def test_a_thousand_repeat_purchases_do_not_overflow() -> None:
    alive = PAPER.probability_alive([1000], [10.0], [38.86])
    assert np.isfinite(alive).all() and alive[0] < 1e-100


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "says"),
    [
        ([1, 2], [1], [2, 3], "same length"),
        ([-1, 2, 1, 1], [0, 1, 1, 1], [2, 2, 2, 2], "whole numbers"),
        ([1.5, 2, 1, 1], [1, 1, 1, 1], [2, 2, 2, 2], "whole numbers"),
        ([1, 2, 1, 1], [3, 1, 1, 1], [2, 2, 2, 2], "between 0 and T"),
        ([0, 0, 0, 0], [0, 0, 0, 0], [2, 2, 2, 2], "bought again"),
        ([1], [1], [2], "needs some customers"),
    ],
)
def test_bad_summaries_are_refused(
    frequency: list[float], recency: list[float], T: list[float], says: str
) -> None:
    with pytest.raises(InvalidInput, match=says):
        fit_bgnbd(frequency, recency, T)


def test_docstring_examples() -> None:
    assert doctest.testmod(bgnbd).failed == 0
