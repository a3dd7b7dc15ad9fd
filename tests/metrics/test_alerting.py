"""Alerts: a real fall is flagged with its sentence; noise and small groups are not."""

from __future__ import annotations

import doctest
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest

from opencx.errors import InvalidInput
from opencx.metrics import alerting, alerts
from opencx.warehouse import Warehouse
from tests.journeys.conftest import Row
from tests.metrics.conftest import NOW, answers
from tests.segments.conftest import warehouse_over


def spread(n: int, first_day: float, last_day: float) -> list[float]:
    return list(np.linspace(first_day, last_day, n))


def baseline_and_current(
    kind: str, before: list[int], after: list[int], channel: str, touchpoint: str | None = None
) -> list[Row]:
    """`before` spread over the 8 weeks before the last 7 days, `after` over those days."""
    people = [f"{channel}-{touchpoint}-{i}" for i in range(len(before) + len(after))]
    return answers(
        kind,
        before + after,
        days_ago=spread(len(before), 62, 8) + spread(len(after), 6.5, 0.5),
        people=people,
        channel=channel,
        touchpoint=touchpoint,
    )


RESET_BEFORE = ([10] * 4 + [9] * 3 + [8] * 2 + [6] * 1) * 20  # 200 answers, NPS 60
RESET_AFTER = ([10] * 2 + [9] * 1 + [8] * 3 + [5] * 4) * 10  # 100 answers, NPS -10
STEADY = [10, 9, 9, 8, 7, 6, 3, 10, 9, 8] * 12


@pytest.fixture(scope="module")
def warehouse() -> Iterator[Warehouse]:
    yield from warehouse_over(
        baseline_and_current("nps", RESET_BEFORE, RESET_AFTER, channel="app", touchpoint="reset")
        + baseline_and_current("nps", STEADY, STEADY[:60], channel="email", touchpoint="order")
        # A small group that moves a lot: too few answers to say anything.
        + baseline_and_current("nps", [10] * 20, [0] * 10, channel="sms", touchpoint="tiny")
        + baseline_and_current("ces", [6, 7, 5, 6] * 30, [6, 7, 5, 6] * 10, channel="phone")
    )


def test_the_fall_is_flagged_with_its_sentence(warehouse: Warehouse) -> None:
    found = alerts(warehouse, now=NOW)
    reset = [a for a in found if a.by == "touchpoint" and a.group == "reset"]
    assert len(reset) == 1
    alert = reset[0]
    assert alert.kind == "nps" and alert.worse
    assert (alert.change.before.value, alert.change.after.value) == pytest.approx((60, -10))
    assert alert.message.startswith(
        "NPS for touchpoint reset fell from 60 to −10 (−70, 95% interval −"
    )
    assert alert.message.endswith("in the last 7 days (100 answers; 200 in the 8 weeks before)")


def test_steady_groups_small_groups_and_other_kpis_raise_nothing(warehouse: Warehouse) -> None:
    found = alerts(warehouse, now=NOW)
    flagged = {(a.kind, a.by, a.group) for a in found}
    assert ("nps", "touchpoint", "order") not in flagged
    assert ("nps", "touchpoint", "tiny") not in flagged  # 10 answers < min_n 30
    assert not any(a.kind == "ces" for a in found)
    assert {("nps", "channel", "app"), ("nps", "touchpoint", "reset")} <= flagged
    assert all(a.change.p_value < 0.01 for a in found)
    assert [a.change.p_value for a in found] == sorted(a.change.p_value for a in found)


def test_the_overall_appears_once(warehouse: Warehouse) -> None:
    overall = [a for a in alerts(warehouse, now=NOW) if a.by is None]
    assert len(overall) <= 1
    assert all(a.message.startswith("NPS overall") for a in overall)


def test_lower_min_n_lets_the_small_group_through(warehouse: Warehouse) -> None:
    found = alerts(warehouse, now=NOW, min_n=10, by=["touchpoint"], kinds=["nps"])
    assert ("touchpoint", "tiny") in {(a.by, a.group) for a in found}


def test_windows_can_be_given_as_durations(warehouse: Warehouse) -> None:
    found = alerts(warehouse, now=NOW, current=timedelta(days=7), baseline="56d", by=[])
    assert all(a.by is None for a in found)
    with pytest.raises(InvalidInput, match="current"):
        alerts(warehouse, now=NOW, current="a week")
    with pytest.raises(InvalidInput, match="min_n"):
        alerts(warehouse, now=NOW, min_n=1)
    with pytest.raises(InvalidInput, match="by must be"):
        alerts(warehouse, now=NOW, by=["city"])


def test_docstring_examples() -> None:
    assert doctest.testmod(alerting).failed == 0


def test_sentences_for_csat_and_ces_and_a_rise() -> None:
    from opencx.metrics.stats import AnswerStats, ces_difference, csat_difference

    week, weeks = timedelta(days=7), timedelta(weeks=8)
    csat = csat_difference(AnswerStats(n=900, satisfied=540), AnswerStats(n=300, satisfied=177))
    assert alerting.describe("csat", "channel", "sms", csat, week, weeks).startswith(
        "CSAT for channel sms fell from 60% to 59% (−1 point, 95% interval −"
    )
    ces = ces_difference(AnswerStats.of([4, 5, 6] * 40), AnswerStats.of([6, 7, 6] * 20))
    text = alerting.describe("ces", None, "(all)", ces, timedelta(days=1), timedelta(days=28))
    assert text.startswith("CES overall rose from 5.0 to 6.3 (+1.3, 95% interval 1.")
    assert text.endswith("in the last 1 day (60 answers; 120 in the 4 weeks before)")
