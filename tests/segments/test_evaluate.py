"""Segments evaluated on the log: members, several segments at once, sizes in one pass."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opencx.errors import InvalidInput
from opencx.segments import (
    evaluate_segment,
    features_expression,
    membership_expression,
    segment_sizes_now,
)
from opencx.warehouse import Warehouse
from tests.journeys.conftest import Row
from tests.segments.conftest import NOW, hours_before_now, warehouse_over


def order(person: str, days: float, revenue: float) -> Row:
    return (person, hours_before_now(days), "Order Completed", "web", {"revenue": revenue})


def nps(person: str, days: float, score: int) -> Row:
    props = {"survey_type": "nps", "score": score}
    return (person, hours_before_now(days), "Survey Responded", "app", props)


ROWS = [
    order("p1", 5, 20), order("p1", 30, 25), nps("p1", 3, 4),   # buys often, unhappy
    order("p2", 5, 80), order("p2", 50, 10), nps("p2", 2, 10),  # buys often, happy
    order("p3", 200, 15), nps("p3", 100, 2),                    # lapsed detractor
    ("p4", hours_before_now(1), "Page Viewed", "web"),          # browses, never buys
]  # fmt: skip
TRAITS = {"p1": {"city": "Leeds"}, "p4": {"city": "Leeds"}}


@pytest.fixture(scope="module")
def warehouse() -> Iterator[Warehouse]:
    yield from warehouse_over(ROWS, TRAITS)


def test_the_issue_example_selects_unhappy_regulars(warehouse: Warehouse) -> None:
    assert evaluate_segment(warehouse, "purchases_90d >= 2 and last_nps <= 6", NOW) == ["p1"]
    assert evaluate_segment(warehouse, 'trait.city = "Leeds" and not responded', NOW) == ["p4"]
    assert evaluate_segment(warehouse, 'nps_group = "detractor"', NOW) == ["p1", "p3"]


def test_membership_lists_each_segment_a_person_is_in(warehouse: Warehouse) -> None:
    rules = {"detractors": 'nps_group = "detractor"', "leeds": 'trait.city = "Leeds"'}
    table = membership_expression(warehouse, rules, NOW).to_pyarrow().to_pylist()
    pairs = sorted((r["segment"], r["person_id"]) for r in table)
    assert pairs == [("detractors", "p1"), ("detractors", "p3"), ("leeds", "p1"), ("leeds", "p4")]


def test_sizes_of_many_segments_come_from_one_feature_table(warehouse: Warehouse) -> None:
    features = features_expression(warehouse, NOW)
    sizes = segment_sizes_now(
        warehouse,
        {"buyers": "orders > 0", "lapsed": 'lifecycle = "lapsed"', "none": "orders > 99"},
        NOW,
        features=features,
    )
    assert sizes == {"buyers": 3, "lapsed": 1, "none": 0}


def test_a_bad_rule_fails_before_anything_runs(warehouse: Warehouse) -> None:
    with pytest.raises(InvalidInput, match="unknown field 'spend'"):
        segment_sizes_now(warehouse, {"ok": "orders > 0", "bad": "spend > 10"}, NOW)
    with pytest.raises(InvalidInput, match="no segments"):
        membership_expression(warehouse, {}, NOW)
