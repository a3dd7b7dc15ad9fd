"""Lifetime value: the calibration summary from the log, and CLV, checked on CDNOW."""

from __future__ import annotations

import csv
import doctest
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from opencx.errors import InvalidInput
from opencx.segments import calibration_summary, clv, fit_bgnbd, value
from opencx.segments.bgnbd import BgNbd
from opencx.segments.gamma_gamma import GammaGamma
from opencx.warehouse import Warehouse
from tests.segments.conftest import Log, at, cdnow_file

DAY0 = datetime(2026, 1, 5, tzinfo=UTC)
CALIBRATION_END = datetime(1997, 10, 1, tzinfo=UTC)  # 39 weeks from 1 January 1997


def order(person: str, day: float, **props: object) -> tuple[str, float, str, str, dict]:
    return (person, at(DAY0 + timedelta(days=day)), "Order Completed", "web", props)


def test_the_summary_counts_repeat_days_and_repeat_spend(log: Log) -> None:
    warehouse = log([
        order("c1", 0, revenue=10), order("c1", 0.5, revenue=5),  # one day, one transaction
        order("c1", 7, revenue=20), order("c1", 21, total=40),
        order("c2", 14, revenue=12),
        order("c3", 28, revenue=99),  # on the end day: after the period
    ])  # fmt: skip
    s = calibration_summary(warehouse, end_at=DAY0 + timedelta(days=28))
    assert s.person_id == ["c1", "c2"]
    assert s.frequency.tolist() == [2, 0]
    assert s.recency.tolist() == pytest.approx([3, 0])  # weeks from the first purchase
    assert s.T.tolist() == pytest.approx([27 / 7, 13 / 7])  # to the period's last day
    assert s.monetary.tolist() == pytest.approx([30, 0])  # the first day is left out
    days = calibration_summary(warehouse, end_at=DAY0 + timedelta(days=28), unit_days=1)
    assert days.T.tolist() == [27, 13]


def test_the_cdnow_log_gives_the_published_summary_and_fit(cdnow: Warehouse) -> None:
    s = calibration_summary(cdnow, end_at=CALIBRATION_END)
    with cdnow_file("cdnow_customers_summary_with_transactions.csv").open() as f:
        published = list(csv.DictReader(f))
    assert len(s.person_id) == len(published) == 2357
    for column, name in (("x", "frequency"), ("t_x", "recency"), ("T", "T"), ("zbar", "monetary")):
        expected = np.array([float(r[column]) for r in published])
        assert np.abs(getattr(s, name) - expected).max() <= 0.0051, name  # 2 decimals
    model = fit_bgnbd(s.frequency, s.recency, s.T)
    published_fit = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, expected_value in published_fit.items():
        assert getattr(model, name) == pytest.approx(expected_value, rel=0.02), name


def test_clv_is_expected_purchases_times_expected_spend() -> None:
    purchases = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=0, customers=0)
    spend = GammaGamma(p=6.25, q=3.74, gamma=15.44, log_likelihood=0, customers=0)
    x, t_x, T, m = [2, 0], [30.43, 0], [38.86, 38.86], [22.35, 0]
    plain = clv(x, t_x, T, m, 39, bgnbd=purchases, gamma_gamma=spend)
    expected = purchases.expected_purchases(39, x, t_x, T) * spend.expected_spend(x, m)
    assert plain == pytest.approx(expected)
    # Discounting monthly (4.345 weeks) at 1% a month, as `lifetimes` does, lowers it.
    monthly = clv(x, t_x, T, m, 12 * 4.345, step=4.345, discount_rate=0.01,
                  bgnbd=purchases, gamma_gamma=spend)  # fmt: skip
    undiscounted = clv(x, t_x, T, m, 12 * 4.345, bgnbd=purchases, gamma_gamma=spend)
    assert np.all(monthly < undiscounted)


def test_clv_fits_the_models_when_not_given_and_agrees_with_lifetimes() -> None:
    with cdnow_file("cdnow_customers_summary_with_transactions.csv").open() as f:
        rows = list(csv.DictReader(f))
    x, t_x, T, m = (np.array([float(r[k]) for r in rows]) for k in ("x", "t_x", "T", "zbar"))
    values = clv(x, t_x, T, m, 12 * 4.345, step=4.345, discount_rate=0.01)
    # lifetimes 0.11.3 (same data, time=12 months, freq="W", discount_rate=0.01) gives these.
    assert values[:3] == pytest.approx([36.278, 4.637, 8.344], abs=0.01)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"horizon": 0}, "horizon"),
        ({"horizon": 10, "discount_rate": -0.1}, "discount_rate"),
        ({"horizon": 10, "step": 0}, "step"),
    ],
)
def test_bad_clv_options_are_refused(options: dict, says: str) -> None:
    model = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=0, customers=0)
    spend = GammaGamma(p=6.25, q=3.74, gamma=15.44, log_likelihood=0, customers=0)
    with pytest.raises(InvalidInput, match=says):
        clv([1], [1], [2], [10], bgnbd=model, gamma_gamma=spend, **options)


def test_docstring_examples() -> None:
    assert doctest.testmod(value).failed == 0
