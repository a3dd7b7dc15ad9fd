"""Profitability by segment: order revenue minus contacts times their cost, by hand."""

from __future__ import annotations

from datetime import timedelta

import ibis
import pytest

from opencx.errors import InvalidInput
from opencx.metrics import profitability
from opencx.warehouse import Warehouse
from tests.journeys.conftest import Row
from tests.metrics.conftest import NOW, Log, hours_before_now

COSTS = {"phone": 6.0, "chat": 2.5, "store": 4.0, "email": 0.05}
START, END = NOW - timedelta(days=30), NOW


def ev(person: str, days: float, event: str, channel: str, **props: object) -> Row:
    return (person, hours_before_now(days), event, channel, props)


@pytest.fixture
def warehouse(log: Log) -> Warehouse:
    return log([
        ev("p1", 3, "Order Completed", "web", revenue=100),
        ev("p1", 2, "Order Completed", "app", total=50),
        ev("p1", 40, "Order Completed", "web", revenue=1000),  # before the period
        ev("p1", 5, "Call Started", "phone"), ev("p1", 4.99, "Call Ended", "phone"),  # 1 contact
        ev("p1", 9, "Call Started", "phone"),  # another day: another contact
        ev("p1", 6.2, "Email Sent", "email"), ev("p1", 6.1, "Email Opened", "email"),
        ev("p2", 1, "Order Completed", "store", revenue=30),
        ev("p2", 8.5, "Chat Started", "chat"), ev("p2", 8.4, "Chat Ended", "chat"),
        ev("p2", 1, "Store Visit", "store"),
        ev("p3", 1, "Call Started", "phone"), ev("p3", 2, "Call Started", "phone"),
        ev("p3", 3, "Call Started", "phone"), ev("p3", 3, "Page Viewed", "web"),
    ])  # fmt: skip


def test_revenue_minus_cost_to_serve_per_segment(warehouse: Warehouse) -> None:
    segments = {"vip": ["p1", "p2"], "callers": ["p1", "p3"], "nobody": []}
    result = profitability(warehouse, segments, start_at=START, end_at=END, contact_costs=COSTS)
    by_name = {s.segment: s for s in result}
    vip = by_name["vip"]
    assert (vip.members, vip.revenue) == (2, 180.0)
    assert vip.contacts == {"chat": 1, "email": 1, "phone": 2, "store": 1}
    assert vip.cost_to_serve == pytest.approx(2 * 6.0 + 0.05 + 2.5 + 4.0)
    assert vip.profit == pytest.approx(161.45) and vip.profit_per_member == pytest.approx(80.725)
    callers = by_name["callers"]
    assert callers.contacts == {"email": 1, "phone": 5}
    assert callers.profit == pytest.approx(150 - 5 * 6.0 - 0.05)
    nobody = by_name["nobody"]
    assert (nobody.members, nobody.profit, nobody.profit_per_member) == (0, 0.0, None)
    assert [s.segment for s in result] == ["vip", "callers", "nobody"]  # most profitable first


def test_channels_without_a_cost_cost_nothing(warehouse: Warehouse) -> None:
    members = ibis.memtable({"person_id": ["p3"], "segment": ["quiet"]})
    [quiet] = profitability(
        warehouse, members, start_at=START, end_at=END, contact_costs={"chat": 2.5}
    )
    assert (quiet.contacts, quiet.cost_to_serve, quiet.revenue) == ({}, 0.0, 0.0)


def test_costs_must_be_numbers_of_zero_or_more(warehouse: Warehouse) -> None:
    with pytest.raises(InvalidInput, match="contact cost of 'phone'"):
        profitability(warehouse, {"x": ["p1"]}, start_at=START, end_at=END,
                      contact_costs={"phone": -1.0})  # fmt: skip
