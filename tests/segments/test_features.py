"""The feature table: every column computed by hand on a small log, as of a given time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from opencx.errors import InvalidInput
from opencx.segments import COMPUTED_TRAITS, FEATURES, evaluate_segment, features_expression
from opencx.store import Store
from opencx.warehouse import Warehouse, embedded
from tests.journeys.conftest import Row, write_events
from tests.segments.conftest import NOW, hours_before_now, warehouse_over


def ago(days: float, person: str, event: str, channel: str, **props: Any) -> Row:
    return (person, hours_before_now(days), event, channel, props)


def survey(days: float, person: str, kind: str, score: int) -> Row:
    return ago(days, person, "Survey Responded", "email", survey_type=kind, score=score)


ROWS: list[Row] = [
    # p1: a regular for 200 days; three orders, one of them outside the 90 days.
    ago(200, "p1", "Order Completed", "web", revenue=100),
    ago(40, "p1", "Order Completed", "web", total="15.5"),  # `total` when no revenue
    ago(10, "p1", "Order Completed", "web", revenue=20),
    survey(50, "p1", "nps", 3),
    survey(30, "p1", "csat", 4),
    survey(20, "p1", "nps", 9),  # the latest NPS answer wins
    survey(19, "p1", "ces", 2),
    ago(5, "p1", "Screen Viewed", "app"),
    ago(2, "p1", "Screen Viewed", "app"),
    ago(1, "p1", "Screen Viewed", "app"),  # 3 app, 3 web, 4 email…
    ago(-1, "p1", "Order Completed", "web", revenue=999),  # after `now`: not seen yet
    # p2: seen once, 45 days ago.
    ago(45, "p2", "Page Viewed", "web"),
    # p3: new, one order 8 days ago in a store.
    ago(8, "p3", "Order Completed", "store", revenue=50),
    # p4: lapsed, a small order 120 days ago.
    ago(120, "p4", "Order Completed", "web", revenue=5),
]
TRAITS = {"p1": {"city": "Leeds"}, "p5": {"plan": "pro"}}  # p5: a profile, no events


@pytest.fixture(scope="module")
def warehouse() -> Iterator[Warehouse]:
    yield from warehouse_over(ROWS, TRAITS)


def rows_by_person(warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    table = features_expression(warehouse, NOW).to_pyarrow().to_pylist()
    return {r["person_id"]: r for r in table}


def test_every_documented_feature_is_a_column_and_back(warehouse: Warehouse) -> None:
    assert list(features_expression(warehouse, NOW).columns) == list(FEATURES)


def test_behaviour_features_match_a_hand_count(warehouse: Warehouse) -> None:
    f = rows_by_person(warehouse)
    p1 = f["p1"]
    assert (p1["purchases_90d"], p1["revenue_90d"]) == (2, 35.5)
    assert (p1["orders"], p1["revenue"], p1["days_since_order"]) == (3, 135.5, 10)
    assert (p1["last_seen_days"], p1["tenure_days"]) == (1, 200)
    assert p1["events_30d"] == 7  # 3 screens, 1 order, 3 answers (one exactly 30 days ago)
    assert p1["main_channel"] == "email"  # 4 survey answers on email
    assert p1["traits"] == '{"city":"Leeds"}'
    assert f["p3"]["main_channel"] == "store" and f["p3"]["purchases_90d"] == 1


def test_survey_features_take_the_latest_answer_of_each_kind(warehouse: Warehouse) -> None:
    p1 = rows_by_person(warehouse)["p1"]
    assert (p1["last_nps"], p1["last_csat"], p1["last_ces"]) == (9, 4, 2)
    assert (p1["responded_surveys"], p1["responded"], p1["nps_group"]) == (4, True, "promoter")


def test_rfm_scores_are_quintiles_and_ties_share_a_score(warehouse: Warehouse) -> None:
    f = rows_by_person(warehouse)
    # Buyers p4 (120 days, 1 order, 5), p1 (10 days, 3, 135.5), p3 (8 days, 1, 50):
    # cume_dist 1/3, 2/3, 1 -> 2, 4, 5; p3 and p4 tie on one order -> 2/3 -> 4.
    assert [f[p]["rfm"] for p in ("p1", "p3", "p4")] == ["455", "544", "242"]
    assert (f["p3"]["rfm_recency"], f["p3"]["rfm_frequency"], f["p3"]["rfm_monetary"]) == (5, 4, 4)
    assert f["p2"]["rfm"] is None and f["p2"]["rfm_recency"] is None


def test_lifecycle_by_recency_and_tenure(warehouse: Warehouse) -> None:
    f = rows_by_person(warehouse)
    stages = {p: f[p]["lifecycle"] for p in f}
    assert stages == {"p1": "active", "p2": "at-risk", "p3": "new", "p4": "lapsed", "p5": None}


def test_people_with_only_a_profile_get_zeros_not_nulls(warehouse: Warehouse) -> None:
    p5 = rows_by_person(warehouse)["p5"]
    assert (p5["purchases_90d"], p5["revenue"], p5["events_30d"], p5["responded"]) == (
        0, 0.0, 0, False
    )  # fmt: skip
    assert p5["last_seen_days"] is None and p5["traits"] == '{"plan":"pro"}'


def test_features_as_of_an_earlier_time_ignore_later_events(warehouse: Warehouse) -> None:
    earlier = features_expression(warehouse, NOW - timedelta(days=15))
    f = {r["person_id"]: r for r in earlier.to_pyarrow().to_pylist()}
    assert "p3" not in f  # first seen 8 days before NOW
    p1 = f["p1"]
    assert (p1["orders"], p1["days_since_order"], p1["last_nps"]) == (2, 25, 9)


def test_asking_for_some_columns_computes_the_same_values(warehouse: Warehouse) -> None:
    full = rows_by_person(warehouse)
    for columns in (["last_nps", "nps_group"], ["rfm", "traits"], ["main_channel"], []):
        some = features_expression(warehouse, NOW, columns=columns).to_pyarrow().to_pylist()
        assert all(set(r) == {"person_id", *columns} for r in some)
        assert {r["person_id"]: r for r in some} == {
            p: {k: row[k] for k in ("person_id", *columns)} for p, row in full.items()
        }


def test_unknown_columns_are_named(warehouse: Warehouse) -> None:
    with pytest.raises(InvalidInput, match="unknown features spend; known: person_id"):
        features_expression(warehouse, NOW, columns=["spend", "orders"])


def test_computed_traits_are_numbers_read_from_the_store() -> None:
    with Store() as store:
        write_events(store, ROWS)
        store.con.execute(
            "INSERT INTO computed_traits VALUES ('p1', 'effort_channel_hops_90d', '2', now()), "
            "('p2', 'effort_channel_hops_90d', '0', now()), "
            "('p1', 'effort_score_90d', '4', now()), "
            "('p3', 'something_else', '\"text\"', now())"
        )
        warehouse = embedded(store.con)
        table = features_expression(warehouse, NOW, columns=list(COMPUTED_TRAITS))
        rows = {r["person_id"]: r for r in table.to_pyarrow().to_pylist()}
        assert rows["p1"]["effort_channel_hops_90d"] == 2.0 and rows["p1"]["effort_score_90d"] == 4
        assert rows["p2"]["effort_channel_hops_90d"] == 0.0
        assert rows["p3"]["effort_channel_hops_90d"] is None  # never computed: no value
        assert evaluate_segment(warehouse, "effort_channel_hops_90d >= 2", NOW) == ["p1"]
        assert evaluate_segment(warehouse, "effort_channel_hops_90d < 1", NOW) == ["p2"]
        with pytest.raises(InvalidInput, match="is a number"):
            evaluate_segment(warehouse, 'effort_score_90d = "high"', NOW)
