"""Effort signals: repeat contacts, channel hops, identifying again and slow fixes, by hand."""

from __future__ import annotations

import doctest
from datetime import timedelta
from typing import Any

import pytest

from opencx.errors import InvalidInput
from opencx.journeys import TouchpointModel, model_from_counts
from opencx.metrics import (
    EffortRules,
    assisted_contacts,
    effort,
    effort_by_segment,
    effort_by_touchpoint,
    effort_signals,
)
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
