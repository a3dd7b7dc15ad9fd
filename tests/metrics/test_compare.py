"""Changes between two periods or two groups, tested on the log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from opencx.errors import InvalidInput
from opencx.metrics import (
    OVERALL,
    AnswerStats,
    compare_groups,
    compare_periods,
    csat_difference,
    kpi,
    nps_difference,
)
from opencx.warehouse import Warehouse
from tests.metrics.conftest import NOW, answers
from tests.segments.conftest import warehouse_over

WEEK = timedelta(days=7)
BEFORE = (NOW - 3 * WEEK, NOW - WEEK)
AFTER = (NOW - WEEK, NOW)
STEADY = [10, 9, 9, 8, 7, 7, 6, 3] * 10  # 80 answers, NPS 12.5, in each period
BEFORE_APP = [10, 10, 9, 8, 8, 7, 6, 2] * 10  # NPS 12.5 …
AFTER_APP = [10, 8, 7, 6, 5, 3, 1, 0] * 10  # … then -50


@pytest.fixture(scope="module")
def warehouse() -> Iterator[Warehouse]:
    yield from warehouse_over(
        answers("nps", STEADY, days_ago=10, people=[f"w{i}" for i in range(80)], channel="web")
        + answers("nps", STEADY, days_ago=2, people=[f"w{i}" for i in range(80)], channel="web")
        + answers("nps", BEFORE_APP, days_ago=9, people=[f"p{i}" for i in range(80)], channel="app")
        + answers("nps", AFTER_APP, days_ago=3, people=[f"p{i}" for i in range(80)], channel="app")
        + answers("csat", [5, 4, 2] * 20, days_ago=12, channel="web")
        + answers("csat", [5, 4, 2] * 20, days_ago=1, channel="web")
    )


def test_a_fall_in_one_channel_is_significant_and_the_steady_one_is_not(
    warehouse: Warehouse,
) -> None:
    changes = compare_periods(warehouse, "nps", before=BEFORE, after=AFTER, by="channel")
    by_group = {c.group: c for c in changes}
    assert list(by_group) == [OVERALL, "app", "web"]  # overall first
    app = by_group["app"].change
    assert app.difference == pytest.approx(-62.5)
    assert app.p_value < 1e-6 and app.high < 0
    expected = nps_difference(AnswerStats.of(BEFORE_APP), AnswerStats.of(AFTER_APP))
    assert (app.low, app.high, app.p_value) == pytest.approx(
        (expected.low, expected.high, expected.p_value)
    )
    web = by_group["web"].change
    assert web.difference == 0 and web.p_value == pytest.approx(1.0)
    assert by_group[OVERALL].by is None and by_group["app"].by == "channel"
    assert by_group[OVERALL].change.after.n == 160


def test_csat_changes_use_the_two_proportion_test(warehouse: Warehouse) -> None:
    [overall] = compare_periods(warehouse, "csat", before=BEFORE, after=AFTER)
    same = AnswerStats.of([5, 4, 2] * 20)
    assert overall.change == csat_difference(same, same)
    assert overall.change.p_value == pytest.approx(1.0)


def test_two_groups_of_one_result(warehouse: Warehouse) -> None:
    result = kpi(warehouse, "nps", start_at=AFTER[0], end_at=AFTER[1], by="channel")
    d = compare_groups(result, "web", "app")
    assert d.difference == pytest.approx(-50.0 - 12.5)
    assert d == nps_difference(AnswerStats.of(STEADY), AnswerStats.of(AFTER_APP))


def test_periods_must_be_ordered_and_apart(warehouse: Warehouse) -> None:
    with pytest.raises(InvalidInput, match="overlap"):
        compare_periods(warehouse, "nps", before=(NOW - 2 * WEEK, NOW), after=AFTER)
    with pytest.raises(InvalidInput, match="must be before"):
        compare_periods(warehouse, "nps", before=(NOW, NOW - WEEK), after=AFTER)
