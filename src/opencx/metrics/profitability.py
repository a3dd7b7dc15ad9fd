"""Profitability by segment: the revenue a segment brings minus what it costs to serve.

Revenue is the segment's `Order Completed` revenue in the period. Cost to serve is its
contacts times the cost of a contact on that channel, passed in (e.g. {"phone": 6.0,
"chat": 2.5, "store": 4.0, "email": 0.05}). A contact is a day on which the person
interacted on that channel: a call logs a start and an end, an email is sent, opened
and clicked, and each should cost once. Channels without a cost cost nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import ibis.expr.types as ir

from opencx.errors import InvalidInput
from opencx.metrics._answers import Segments, between, membership_table
from opencx.segments import day_number, orders
from opencx.warehouse import Warehouse


@dataclass(frozen=True)
class SegmentProfit:
    segment: str
    members: int
    revenue: float
    contacts: dict[str, int]  # channel → contacts (person-days on that channel)
    cost_to_serve: float

    @property
    def profit(self) -> float:
        return self.revenue - self.cost_to_serve

    @property
    def profit_per_member(self) -> float | None:
        return self.profit / self.members if self.members else None


def _check_costs(contact_costs: Mapping[str, float]) -> dict[str, float]:
    costs = {}
    for channel, cost in contact_costs.items():
        if not isinstance(cost, (int, float)) or not math.isfinite(cost) or cost < 0:
            raise InvalidInput(
                f"the contact cost of {channel!r} must be a number >= 0, got {cost!r}"
            )
        costs[str(channel)] = float(cost)
    return costs


def revenue_expression(
    warehouse: Warehouse, members: ir.Table, start_at: datetime | None, end_at: datetime | None
) -> ir.Table:
    """segment, revenue: the members' order revenue in the period."""
    o = orders(warehouse)
    o = between(o, start_at, end_at)
    joined = o.join(members, o.person_id == members.pid).select(members.segment, o.revenue)
    return joined.group_by("segment").aggregate(revenue=joined.revenue.sum().fill_null(0.0))


def contacts_expression(
    warehouse: Warehouse,
    members: ir.Table,
    channels: list[str],
    start_at: datetime | None,
    end_at: datetime | None,
) -> ir.Table:
    """segment, channel, contacts: distinct (person, day) on each costed channel."""
    events = warehouse.events()
    events = events.filter(events.channel.isin(channels))
    events = between(events.mutate(at=events.timestamp), start_at, end_at)
    days = events.select("person_id", "channel", day=day_number(events.at)).distinct()
    joined = days.join(members, days.person_id == members.pid)
    joined = joined.select(members.segment, days.channel)
    return joined.group_by(["segment", "channel"]).aggregate(contacts=joined.count())


def profitability(
    warehouse: Warehouse,
    segments: Segments,
    *,
    start_at: datetime | None,
    end_at: datetime | None,
    contact_costs: Mapping[str, float],
) -> list[SegmentProfit]:
    """Revenue, contacts and cost to serve per segment in [start_at, end_at), most
    profitable first. `segments` is {name: person ids} or an Ibis table (person_id,
    segment), e.g. from `opencx.segments.membership_expression`.
    """
    costs = _check_costs(contact_costs)
    members = membership_table(segments).view()
    # A segment named in a mapping is reported even when nobody is in it.
    sizes = {str(name): 0 for name in segments} if isinstance(segments, Mapping) else {}
    counted = members.group_by("segment").aggregate(n=members.count()).to_pyarrow().to_pylist()
    sizes.update({r["segment"]: int(r["n"]) for r in counted})
    revenue = {
        r["segment"]: float(r["revenue"] or 0.0)
        for r in revenue_expression(warehouse, members, start_at, end_at).to_pyarrow().to_pylist()
    }
    contacts: dict[str, dict[str, int]] = {name: {} for name in sizes}
    if costs:
        table = contacts_expression(warehouse, members, sorted(costs), start_at, end_at)
        for r in table.to_pyarrow().to_pylist():
            contacts[r["segment"]][r["channel"]] = int(r["contacts"])
    out = [
        SegmentProfit(
            segment=name,
            members=size,
            revenue=revenue.get(name, 0.0),
            contacts=dict(sorted(contacts[name].items())),
            cost_to_serve=sum(n * costs[c] for c, n in contacts[name].items()),
        )
        for name, size in sizes.items()
    ]
    return sorted(out, key=lambda s: (-s.profit, s.segment))
