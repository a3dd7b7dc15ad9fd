"""Gamma-Gamma: the published CDNOW fit and the shrinkage of each customer's spend."""

from __future__ import annotations

import csv
import doctest

import numpy as np
import pytest

from opencx.errors import InvalidInput
from opencx.segments import fit_gamma_gamma, gamma_gamma
from opencx.segments.gamma_gamma import GammaGamma
from tests.segments.conftest import cdnow_file

# Fader, Hardie & Lee (2005) and Fader & Hardie (2013): p, q, γ on the CDNOW sample.
PUBLISHED = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def test_the_cdnow_fit_gives_the_published_parameters() -> None:
    with cdnow_file("cdnow_customers_summary_with_transactions.csv").open() as f:
        rows = list(csv.DictReader(f))
    x = np.array([float(r["x"]) for r in rows])
    m = np.array([float(r["zbar"]) for r in rows])
    model = fit_gamma_gamma(x, m)
    assert model.customers == 946  # those with a repeat purchase
    for name, value in PUBLISHED.items():
        assert getattr(model, name) == pytest.approx(value, rel=0.02), name


def test_expected_spend_moves_from_the_population_mean_to_the_customers_own() -> None:
    model = GammaGamma(**PUBLISHED, log_likelihood=0.0, customers=0)
    spend = model.expected_spend([0, 1, 10, 1000], [0, 100, 100, 100])
    assert spend[0] == pytest.approx(6.25 * 15.44 / 2.74)  # pγ / (q - 1)
    assert spend[0] < spend[1] < spend[2] < spend[3] < 100
    assert spend[3] == pytest.approx(100, rel=0.01)


def test_customers_without_repeat_spend_are_left_out_of_the_fit() -> None:
    with pytest.raises(InvalidInput, match="bought again"):
        fit_gamma_gamma([0, 0, 1, 0], [0, 0, 10, 0])
    with pytest.raises(InvalidInput, match="differ in length"):
        fit_gamma_gamma([1, 2], [10])


def test_docstring_examples() -> None:
    assert doctest.testmod(gamma_gamma).failed == 0
