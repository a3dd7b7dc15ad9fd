"""Effort signals: repeat contacts, channel hops, identifying again and slow fixes, by hand."""

from __future__ import annotations

import doctest
import json
from datetime import timedelta
from typing import Any

import pytest

from opencx.errors import InvalidInput
from opencx.journeys import TouchpointModel, model_from_counts
from opencx.metrics import (
    EFFORT_SCORE,
    EFFORT_TRAITS,
    EffortRules,
    assisted_contacts,
    effort,
    effort_by_segment,
    effort_by_touchpoint,
    effort_signals,
    effort_summary,
    write_effort_traits,
)
from opencx.segments import COMPUTED_TRAITS
from opencx.store import Store
from opencx.warehouse import Warehouse
from tests.journeys.conftest import T0, Row
from tests.metrics.conftest import Log


def ev(person: str, hours: float, event: str, channel: str, **props: object) -> Row:
    return (person, hours, event, channel, props)


ROWS: list[Row] = [
    # p1: an unresolved billing call, called back about it 30 h later: a repeat, and slow.
    ev("p1", 0, "Call Started", "phone", topic="billing"),
    ev("p1", 0.2, "Call Ended", "phone", topic="billing", resolved=False),
    ev("p1", 30, "Call Started", "phone", topic="billing"),
    ev("p1", 30.1, "Call Ended", "phone", topic="billing", resolved=True),
    # p2: billing left unresolved, then a technical call (another matter), then a store
    # visit without a topic (it repeats whatever came before).
    ev("p2", 0, "Call Started", "phone", topic="billing"),
    ev("p2", 0.1, "Call Ended", "phone", topic="billing", resolved=False),
    ev("p2", 10, "Call Started", "phone", topic="technical"),
    ev("p2", 10.1, "Call Ended", "phone", topic="technical", resolved=True),
    ev("p2", 50, "Store Visit", "store"),
    # p3: a failed reset in the app and a call 30 minutes later: a hop, identifying again.
    ev("p3", -0.1, "Password Reset Started", "app"),
    ev("p3", 0, "Password Reset Failed", "app"),
    ev("p3", 0.5, "Call Started", "phone", topic="password"),
    # p4: the bill in the app, a chat 10 h later: a hop, but not within the hour.
    ev("p4", 0, "Bill Viewed", "app"),
    ev("p4", 10, "Chat Started", "chat", topic="billing"),
    # p5: the bill in the app, a call 60 h later: no hop.
    ev("p5", 0, "Bill Viewed", "app"),
    ev("p5", 60, "Call Started", "phone", topic="billing"),
    # p6: two calls 8 days apart: not a repeat.
    ev("p6", 0, "Call Started", "phone", topic="billing"),
    ev("p6", 200, "Call Started", "phone", topic="billing"),
    # p7: only an email: no contact at all.
    ev("p7", 0, "Email Sent", "email"),
]


def model_of(rows: list[Row]) -> TouchpointModel:
    return model_from_counts(sorted({("track", r[2], r[3]) for r in rows}))


@pytest.fixture
def warehouse(log: Log) -> Warehouse:
    return log(ROWS)


def by_person(table: Any) -> dict[str, dict[str, Any]]:
    return {r["person_id"]: r for r in table.to_pyarrow().to_pylist()}


def test_signals_per_person_follow_the_definitions(warehouse: Warehouse) -> None:
    people = by_person(effort_signals(warehouse, model_of(ROWS)))
    columns = ("contacts", "repeat_contacts", "channel_hops", "reidentifications",
               "slow_resolutions")  # fmt: skip
    counts = {p: tuple(r[c] for c in columns) for p, r in people.items()}
    assert counts == {
        "p1": (2, 1, 0, 0, 1),  # start and end a minute apart are one contact
        "p2": (3, 1, 0, 0, 1),
        "p3": (1, 0, 1, 1, 0),
        "p4": (1, 0, 1, 0, 0),
        "p5": (1, 0, 0, 0, 0),
        "p6": (2, 0, 0, 0, 0),
        "p7": (0, 0, 0, 0, 0),
    }


def test_each_contact_carries_its_flags_and_the_flow_it_hopped_from(warehouse: Warehouse) -> None:
    rows = assisted_contacts(warehouse, model_of(ROWS)).to_pyarrow().to_pylist()
    p3 = next(r for r in rows if r["person_id"] == "p3")
    assert p3["hopped_from"] == "password_reset_started@app"  # the failure, under its flow
    assert (p3["channel_hop"], p3["reidentification"], p3["repeat_contact"]) == (True, True, False)
    p1 = sorted((r for r in rows if r["person_id"] == "p1"), key=lambda r: r["started_at"])
    assert [(r["resolved"], r["slow_resolution"], r["repeat_contact"]) for r in p1] == [
        (False, True, False),
        (True, False, True),
    ]
    assert p1[0]["ended_at"] - p1[0]["started_at"] == timedelta(hours=0.2)


def test_a_period_still_sees_the_contact_a_repeat_repeats(warehouse: Warehouse) -> None:
    later = T0 + timedelta(hours=20)
    people = by_person(effort_signals(warehouse, model_of(ROWS), start_at=later))
    assert (people["p1"]["contacts"], people["p1"]["repeat_contacts"]) == (1, 1)
    assert "p3" not in people  # nothing of theirs in the period


def test_rules_change_the_windows(warehouse: Warehouse) -> None:
    rules = EffortRules(repeat_within="1d", slow_after="48h", hop_within="3d")
    people = by_person(effort_signals(warehouse, model_of(ROWS), rules=rules))
    assert people["p1"]["repeat_contacts"] == 0  # the call back was 30 h later
    assert people["p1"]["slow_resolutions"] == 0  # fixed within 48 h
    assert people["p5"]["channel_hops"] == 1  # 60 h is within 3 days
    with pytest.raises(InvalidInput, match="repeat_within"):
        EffortRules(repeat_within="soon")


def test_shares_per_touchpoint_count_contacts_from_the_touchpoint_on(
    warehouse: Warehouse,
) -> None:
    rows = effort_by_touchpoint(warehouse, model_of(ROWS)).to_pyarrow().to_pylist()
    table = {r["touchpoint"]: r for r in rows}
    failed = table["password_reset_failed@app"]
    assert (failed["people"], failed["channel_hop"], failed["reidentification"]) == (1, 1.0, 1.0)
    bill = table["bill_viewed@app"]
    assert (bill["people"], bill["channel_hop"], bill["reidentification"]) == (2, 0.5, 0.0)
    call = table["call_started@phone"]  # p1, p2, p3, p5, p6; p1's and p2's repeat or are slow
    assert call["people"] == 5
    assert (call["repeat_contact"], call["slow_resolution"]) == (0.4, 0.4)
    assert rows[0]["people"] >= rows[-1]["people"]


def test_shares_per_segment_count_members_without_contacts(warehouse: Warehouse) -> None:
    segments = {"callers": ["p1", "p2"], "hoppers": ["p3", "p4", "p5"], "quiet": ["p7", "nobody"]}
    rows = effort_by_segment(warehouse, model_of(ROWS), segments).to_pyarrow().to_pylist()
    table = {r["segment"]: r for r in rows}
    assert (table["callers"]["members"], table["callers"]["repeat_contact"]) == (2, 1.0)
    assert table["callers"]["slow_resolution"] == 1.0
    assert table["hoppers"]["channel_hop"] == pytest.approx(2 / 3)
    assert table["hoppers"]["reidentification"] == pytest.approx(1 / 3)
    assert (table["quiet"]["members"], table["quiet"]["channel_hop"]) == (2, 0.0)


def test_a_bad_period_is_refused(warehouse: Warehouse) -> None:
    with pytest.raises(InvalidInput, match="before"):
        assisted_contacts(warehouse, model_of(ROWS), start_at=T0, end_at=T0)


def test_the_docstring_examples_run() -> None:
    assert doctest.testmod(effort).failed == 0


# -- effort as computed traits on each profile ---------------------------------------
def _stored(store: Store) -> dict[tuple[str, str], object]:
    rows = store.con.execute("SELECT person_id, name, value FROM computed_traits").fetchall()
    return {(p, n): json.loads(v) for p, n, v in rows}


def test_effort_traits_are_written_and_replaced(store: Store, warehouse: Warehouse) -> None:
    now = T0 + timedelta(days=10)
    assert set(EFFORT_TRAITS.values()) | {EFFORT_SCORE} <= set(COMPUTED_TRAITS)
    store.con.execute(
        "INSERT INTO computed_traits VALUES ('gone', 'effort_score_90d', '7', now()), "
        "('p1', 'loyalty_tier', '\"gold\"', now())"
    )
    written = write_effort_traits(store.con, warehouse, now, model=model_of(ROWS))
    assert written == 7 * 5  # every person with an event in the 90 days, five traits each
    stored = _stored(store)
    assert ("gone", "effort_score_90d") not in stored  # no longer current: removed
    assert stored["p1", "loyalty_tier"] == "gold"  # other computed traits are left alone
    assert stored["p1", "effort_repeat_contacts_90d"] == 1
    assert stored["p1", "effort_slow_resolutions_90d"] == 1
    assert stored["p3", "effort_channel_hops_90d"] == 1
    assert stored["p3", "effort_repeat_identification_90d"] == 1
    assert stored["p2", "effort_score_90d"] == 2 and stored["p3", "effort_score_90d"] == 2
    assert stored["p7", "effort_score_90d"] == 0
    # Much later nobody is active: every effort value goes, in one replacement.
    assert write_effort_traits(store.con, warehouse, now + timedelta(days=200),
                               model=model_of(ROWS)) == 0  # fmt: skip
    assert set(_stored(store)) == {("p1", "loyalty_tier")}


def test_the_summary_adds_up_the_signals(warehouse: Warehouse) -> None:
    summary = effort_summary(warehouse, model_of(ROWS))
    assert (summary.people, summary.contacts) == (7, 10)
    assert summary.counts == {"repeat_contact": 2, "channel_hop": 2, "reidentification": 1,
                              "slow_resolution": 2}  # fmt: skip
    assert summary.people_with["channel_hop"] == 2
    assert summary.share("channel_hop") == pytest.approx(0.2)
