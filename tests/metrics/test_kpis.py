"""KPIs on the log: equal to the hand-computed values, per group, period and segment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import ibis
import pytest

from opencx.errors import InvalidInput, NotFound
from opencx.metrics import AnswerStats, KpiQuery, KpiResult, KpiRow, estimate, kpi, kpi_expression
from opencx.voc.reports import score_by
from opencx.warehouse import Warehouse
from tests.metrics.conftest import NOW, answers
from tests.segments.conftest import warehouse_over

EMAIL_NPS = [10] * 6 + [9] * 4 + [8] * 5 + [3] * 5  # P 10, D 5 of 20: NPS 25
APP_NPS = [10] * 2 + [7] * 3 + [0] * 5  # P 2, D 5 of 10: NPS -30
CSAT = [5, 5, 4, 4, 4, 3, 2, 5]  # 6 of 8 satisfied
CES = [7, 6, 6, 5, 3, 2]
A = [f"a{i}" for i in range(20)]
B = [f"b{i}" for i in range(10)]
TRAITS = {p: {"tier": "gold" if i < 10 else "silver"} for i, p in enumerate(A)}
START, END = NOW - timedelta(days=30), NOW


@pytest.fixture(scope="module")
def warehouse() -> Iterator[Warehouse]:
    yield from warehouse_over(
        answers("nps", EMAIL_NPS, touchpoint="order@web", people=A)
        + answers("nps", APP_NPS, channel="app", touchpoint="reset@app", people=B)
        + answers("nps", [0, 0, 0], days_ago=40, people=["old1", "old2", "old3"])
        + answers("csat", CSAT, touchpoint="order@web", people=A[:8])
        + answers("ces", CES, channel="phone", people=B[:6]),
        TRAITS,
    )


def expected(kind: str, scores: list[int]) -> tuple[float, int, float | None, float | None]:
    e = estimate(kind, AnswerStats.of(scores))
    return e.value, e.n, e.low, e.high


def whole(result: KpiResult) -> KpiRow:
    assert result.overall is not None
    return result.overall


def row(r: object) -> tuple[float, int, float | None, float | None]:
    return r.value, r.n, r.low, r.high  # type: ignore[attr-defined]


def test_nps_overall_and_by_channel_equal_the_hand_computed_values(warehouse: Warehouse) -> None:
    result = kpi(warehouse, "nps", start_at=START, end_at=END, by="channel")
    assert row(result.overall) == pytest.approx(expected("nps", EMAIL_NPS + APP_NPS))
    assert whole(result).value == pytest.approx(100 * (12 - 10) / 30)
    assert [r.group for r in result.groups] == ["email", "app"]  # most answers first
    assert row(result.group("email")) == pytest.approx(expected("nps", EMAIL_NPS))
    assert result.group("email").value == pytest.approx(25.0)
    assert row(result.group("app")) == pytest.approx(expected("nps", APP_NPS))


def test_csat_and_ces_read_only_their_own_answers(warehouse: Warehouse) -> None:
    csat = kpi(warehouse, "csat", start_at=START, end_at=END)
    assert row(csat.overall) == pytest.approx(expected("csat", CSAT))
    assert whole(csat).value == pytest.approx(75.0) and csat.groups == ()
    ces = kpi(warehouse, "ces", start_at=START, end_at=END, by="touchpoint")
    assert row(ces.overall) == pytest.approx(expected("ces", CES))
    assert [r.group for r in ces.groups] == ["(none)"]  # answers without a touchpoint


def test_by_touchpoint_and_by_trait(warehouse: Warehouse) -> None:
    result = kpi(warehouse, "nps", start_at=START, end_at=END, by="touchpoint")
    assert result.group("reset@app").value == pytest.approx(-30.0)
    tiers = kpi(warehouse, "nps", start_at=START, end_at=END, by="trait:tier")
    assert {r.group: r.n for r in tiers.groups} == {"gold": 10, "silver": 10, "(none)": 10}
    assert row(tiers.group("gold")) == pytest.approx(expected("nps", EMAIL_NPS[:10]))


def test_the_period_is_start_inclusive_end_exclusive(warehouse: Warehouse) -> None:
    everything = kpi(warehouse, "nps", start_at=None, end_at=None)
    assert whole(everything).n == 33
    older = kpi(warehouse, "nps", start_at=NOW - timedelta(days=40), end_at=START)
    assert whole(older).n == 3 and whole(older).value == -100.0
    assert kpi(warehouse, "nps", start_at=NOW, end_at=None).overall is None


def test_by_segment_takes_a_mapping_and_counts_each_answer_once_overall(
    warehouse: Warehouse,
) -> None:
    segments = {"first-ten": A[:10], "app-people": B, "overlap": A[5:15], "empty": []}
    result = kpi(warehouse, "nps", start_at=START, end_at=END, by="segment", segments=segments)
    assert {r.group: r.n for r in result.groups} == {
        "first-ten": 10,
        "app-people": 10,
        "overlap": 10,
    }
    assert row(result.group("overlap")) == pytest.approx(expected("nps", EMAIL_NPS[5:15]))
    assert whole(result).n == 30  # everyone's answers, once, members or not


def test_by_segment_takes_an_ibis_table(warehouse: Warehouse) -> None:
    members = ibis.memtable({"person_id": A[:10] + A[:10], "segment": ["gold"] * 20})
    result = kpi(warehouse, "nps", start_at=START, end_at=END, by="segment", segments=members)
    assert [(r.group, r.n) for r in result.groups] == [("gold", 10)]  # duplicates dropped
    with pytest.raises(InvalidInput, match="person_id and segment"):
        kpi(warehouse, "nps", start_at=START, end_at=END, by="segment",
            segments=ibis.memtable({"who": ["a1"]}))  # fmt: skip


def test_the_value_is_the_voc_reports_value(warehouse: Warehouse) -> None:
    ours = kpi(warehouse, "nps", start_at=START, end_at=END, by="channel")
    theirs = {p.group: p for p in score_by(warehouse, "nps", "channel", start_at=START, end_at=END)}
    for r in ours.groups:
        assert (r.n, r.value) == pytest.approx((theirs[r.group].responses, theirs[r.group].value))


def test_the_expression_is_one_aggregate_per_group(warehouse: Warehouse) -> None:
    query = KpiQuery(kind="nps", start_at=START, end_at=END, by="channel")
    table = kpi_expression(query, warehouse).order_by("group").to_pyarrow().to_pylist()
    assert [(r["group"], r["n"], r["promoters"], r["detractors"]) for r in table] == [
        ("app", 10, 2, 5), ("email", 20, 10, 5),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("options", "error", "says"),
    [
        ({"kind": "effort"}, InvalidInput, "nps, csat or ces"),
        ({"by": "city"}, InvalidInput, "by must be one of"),
        ({"by": "trait:bad name"}, InvalidInput, "trait name"),
        ({"by": "segment"}, InvalidInput, "needs the segment membership"),
        ({"start_at": END, "end_at": START}, InvalidInput, "must be before"),
    ],
)
def test_bad_requests_say_what_would_be_accepted(
    warehouse: Warehouse, options: dict, error: type, says: str
) -> None:
    request = {"kind": "nps", "start_at": START, "end_at": END, **options}
    with pytest.raises(error, match=says):
        kpi(warehouse, request.pop("kind"), **request)


def test_an_unknown_group_names_the_known_ones(warehouse: Warehouse) -> None:
    result = kpi(warehouse, "nps", start_at=START, end_at=END, by="channel")
    with pytest.raises(NotFound, match="groups: email, app"):
        result.group("sms")
