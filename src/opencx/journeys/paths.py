"""Paths and transitions between touchpoints, cross-channel hops, and Sankey data.

A person's touchpoints are ordered by (timestamp, seq); by default a run of the same
touchpoint counts once ("Product Viewed" ten times in a row is one step of a path).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opencx.errors import InvalidInput
from opencx.journeys._time import check_period, parse_duration, utc
from opencx.journeys.touchpoints import ASSISTED_CHANNELS, DIGITAL_CHANNELS, TouchpointModel
from opencx.warehouse import Warehouse

END = "(end)"
START = "(start)"


class PathQuery(BaseModel):
    """Which part of the journeys to look at."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_at: datetime | None = None
    end_at: datetime | None = None
    touchpoint: str | None = Field(default=None, description="Anchor of the paths.")
    direction: Literal["after", "before"] = "after"
    depth: int = Field(default=3, ge=1, le=8)
    collapse_repeats: bool = True
    limit: int = Field(default=20, ge=1, le=500)

    @field_validator("start_at", "end_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return utc(value)

    @model_validator(mode="after")
    def _check(self) -> PathQuery:
        check_period(self.start_at, self.end_at)
        return self


@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    transitions: int
    people: int


@dataclass(frozen=True)
class PathCount:
    steps: tuple[str, ...]
    people: int


@dataclass(frozen=True)
class ChannelHop:
    from_channel: str
    to_channel: str
    people: int
    hops: int


def _in_period(query: PathQuery, warehouse: Warehouse) -> ir.Table:
    events = warehouse.events()
    if query.start_at is not None:
        events = events.filter(events.timestamp >= query.start_at)
    if query.end_at is not None:
        events = events.filter(events.timestamp < query.end_at)
    return events


def touchpoint_sequence(query: PathQuery, warehouse: Warehouse, model: TouchpointModel) -> ir.Table:
    """Each person's touchpoints in order, with `pos`, and the channel and time of each."""
    events = _in_period(query, warehouse)
    labelled = model.label(events).select(
        "person_id", "seq", "touchpoint", "channel", ts=events.timestamp
    )
    order = ibis.window(group_by="person_id", order_by=["ts", "seq"])
    if query.collapse_repeats:
        labelled = labelled.mutate(prev=labelled.touchpoint.lag().over(order))
        labelled = labelled.filter(
            labelled.prev.isnull() | (labelled.prev != labelled.touchpoint)
        ).drop("prev")
    return labelled.mutate(pos=ibis.row_number().over(order))


# Transitions carry each touchpoint as its place in the model (a small integer) through
# the window and the counts, and get the ids back once counted: sorting and hashing
# millions of id strings took about a third of the time. bench/journeys.py measures it.
_ENTRY, _EXIT = -1, -2


def _touchpoint_code(events: ir.Table, model: TouchpointModel) -> ir.IntegerValue:
    """The place in `model` of each event's touchpoint (the first that matches, as in
    `TouchpointModel.label`), NULL for events that are none."""
    if not model.touchpoints:
        raise InvalidInput("the touchpoint model is empty: infer one or load a YAML file")
    cases = [(tp.matches(events), i) for i, tp in enumerate(model.touchpoints)]
    return ibis.cases(*cases, else_=ibis.null("int32")).cast("int32")


def _touchpoint_id(code: ir.IntegerValue, model: TouchpointModel) -> ir.StringValue:
    names = [(_ENTRY, START), (_EXIT, END), *enumerate(tp.id for tp in model.touchpoints)]
    return ibis.cases(*((code == i, name) for i, name in names))


def transitions_expression(
    query: PathQuery, warehouse: Warehouse, model: TouchpointModel
) -> ir.Table:
    """Counts of (touchpoint → next touchpoint), with `(start)`/`(end)` for entries and exits.

    One window gives every touchpoint event both neighbours: a change of touchpoint (any
    step, when repeats are kept) is a transition, a first event an entry, a last an exit.
    """
    events = _in_period(query, warehouse)
    coded = events.select(
        "person_id", "seq", ts=events.timestamp, code=_touchpoint_code(events, model)
    )
    coded = coded.filter(coded.code.notnull())
    order = ibis.window(group_by="person_id", order_by=["ts", "seq"])
    steps = coded.select(
        "person_id",
        "code",
        prev=coded.code.lag().over(order),
        next=coded.code.lead().over(order),
    )
    # Three readers of one window: through views, so that Ibis writes it once (as a CTE).
    moves, entries, exits = steps.view(), steps.view(), steps.view()
    moved = moves.prev.notnull()
    if query.collapse_repeats:
        moved &= moves.prev != moves.code
    moves = moves.filter(moved)
    # Counting per person first gives `people` as a plain count, without a DISTINCT;
    # a person enters and exits once, so those need no such step.
    each = moves.group_by(source="prev", target="code", person_id="person_id").aggregate(
        n=moves.count()
    )
    entries = entries.filter(entries.prev.isnull())
    exits = exits.filter(exits.next.isnull())
    parts = [
        each.group_by(["source", "target"]).aggregate(
            transitions=each.n.sum(), people=each.count()
        ),
        entries.group_by(source=ibis.literal(_ENTRY, "int32"), target="code").aggregate(
            transitions=entries.count(), people=entries.count()
        ),
        exits.group_by(source="code", target=ibis.literal(_EXIT, "int32")).aggregate(
            transitions=exits.count(), people=exits.count()
        ),
    ]
    counts = ibis.union(*parts)
    return counts.select(
        source=_touchpoint_id(counts.source, model),
        target=_touchpoint_id(counts.target, model),
        transitions=counts.transitions,
        people=counts.people,
    ).order_by([ibis.desc("transitions"), "source", "target"])


def transitions(query: PathQuery, warehouse: Warehouse, model: TouchpointModel) -> list[Transition]:
    """Every transition with its count; the data of a Sankey diagram."""
    rows = transitions_expression(query, warehouse, model).to_pyarrow().to_pylist()
    return [
        Transition(r["source"], r["target"], int(r["transitions"]), int(r["people"])) for r in rows
    ]


def next_touchpoints(
    query: PathQuery, warehouse: Warehouse, model: TouchpointModel
) -> list[Transition]:
    """What comes right after (or before) the anchor touchpoint, most common first."""
    if query.touchpoint is None:
        return transitions(query, warehouse, model)[: query.limit]
    model.get(query.touchpoint)
    field = "source" if query.direction == "after" else "target"
    table = transitions_expression(query, warehouse, model)
    table = table.filter(table[field] == query.touchpoint).limit(query.limit)
    return [
        Transition(r["source"], r["target"], int(r["transitions"]), int(r["people"]))
        for r in table.to_pyarrow().to_pylist()
    ]


def paths_expression(query: PathQuery, warehouse: Warehouse, model: TouchpointModel) -> ir.Table:
    """The `depth` touchpoints after (or before) each person's first anchor touchpoint."""
    seq = touchpoint_sequence(query, warehouse, model)
    order = ibis.window(group_by="person_id", order_by=["ts", "seq"])
    shift = (lambda c, n: c.lead(n)) if query.direction == "after" else (lambda c, n: c.lag(n))
    steps = {
        f"s{n}": shift(seq.touchpoint, n)
        .over(order)
        .fill_null(END if query.direction == "after" else START)
        for n in range(1, query.depth + 1)
    }
    seq = seq.mutate(**steps)
    if query.touchpoint is not None:
        anchors = seq.filter(seq.touchpoint == query.touchpoint)
        first = ibis.window(group_by="person_id", order_by=["ts", "seq"])
        anchors = anchors.mutate(nth=ibis.row_number().over(first))
        seq = anchors.filter(anchors.nth == 0)
    else:
        seq = seq.filter(seq.pos == 0)
    return (
        seq.group_by(["touchpoint", *steps])
        .aggregate(people=seq.person_id.nunique())
        .order_by([ibis.desc("people"), "touchpoint", *steps])
        .limit(query.limit)
    )


def top_paths(query: PathQuery, warehouse: Warehouse, model: TouchpointModel) -> list[PathCount]:
    """The most common paths from (or to) a touchpoint; paths end early at `(end)`."""
    if query.touchpoint is not None:
        model.get(query.touchpoint)
    out = []
    for r in paths_expression(query, warehouse, model).to_pyarrow().to_pylist():
        rest = [r[f"s{n}"] for n in range(1, query.depth + 1)]
        if query.direction == "after":
            cut = rest.index(END) + 1 if END in rest else len(rest)
            steps = (r["touchpoint"], *rest[:cut])
        else:
            rest = rest[: rest.index(START) + 1] if START in rest else rest
            steps = (*reversed(rest), r["touchpoint"])
        out.append(PathCount(tuple(steps), int(r["people"])))
    return _merge_paths(out)


def _merge_paths(paths: list[PathCount]) -> list[PathCount]:
    # Paths that ended early differ only in the padding after (end): add them up.
    merged: dict[tuple[str, ...], int] = {}
    for p in paths:
        merged[p.steps] = merged.get(p.steps, 0) + p.people
    return [PathCount(k, v) for k, v in sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))]


def hops_expression(
    warehouse: Warehouse,
    model: TouchpointModel,
    *,
    within: timedelta | str = "48h",
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> ir.Table:
    """Per digital touchpoint event: the first assisted contact within `within` after it.

    Columns: person_id, touchpoint, channel, ts, hop_ts, hop_channel (NULL when none).
    Only customer-initiated touchpoints count on either side (a sent SMS is no hop).
    """
    within = parse_duration(within, field="within")
    customer = [tp for tp in model.touchpoints if tp.initiated_by == "customer"]
    own = TouchpointModel(touchpoints=tuple(customer))
    events = warehouse.events()
    if start_at is not None:
        events = events.filter(events.timestamp >= utc(start_at))
    if end_at is not None:
        events = events.filter(events.timestamp < utc(end_at) + within)
    labelled = own.label(events).select(
        "person_id", "seq", "touchpoint", "channel", ts=events.timestamp
    )
    digital = labelled.filter(labelled.channel.isin(DIGITAL_CHANNELS))
    if end_at is not None:
        digital = digital.filter(digital.ts < utc(end_at))
    assisted = labelled.filter(labelled.channel.isin(ASSISTED_CHANNELS)).select(
        a_person="person_id", a_ts="ts", a_seq="seq", a_channel="channel"
    )
    joined = digital.join(
        assisted,
        [
            digital.person_id == assisted.a_person,
            assisted.a_ts > digital.ts,
            assisted.a_ts <= digital.ts + within,
        ],
    )
    # The first contact after each digital event; log order breaks ties in time.
    nearest = ibis.window(group_by=["person_id", "seq"], order_by=["a_ts", "a_seq"])
    joined = joined.mutate(nth=ibis.row_number().over(nearest))
    first = joined.filter(joined.nth == 0).select(
        k_person="person_id", k_seq="seq", hop_ts="a_ts", hop_channel="a_channel"
    )
    out = digital.left_join(
        first, [digital.person_id == first.k_person, digital.seq == first.k_seq]
    ).select(digital, first.hop_ts, first.hop_channel)
    return out.view()


def channel_hops(
    warehouse: Warehouse,
    model: TouchpointModel,
    *,
    within: timedelta | str = "48h",
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> list[ChannelHop]:
    """Web/app → phone/chat/store within `within`: people and hops per channel pair."""
    hops = hops_expression(warehouse, model, within=within, start_at=start_at, end_at=end_at)
    hops = hops.filter(hops.hop_ts.notnull())
    table = (
        hops.group_by(["channel", "hop_channel"])
        .aggregate(people=hops.person_id.nunique(), hops=hops.count())
        .order_by([ibis.desc("people"), "channel", "hop_channel"])
    )
    return [
        ChannelHop(r["channel"], r["hop_channel"], int(r["people"]), int(r["hops"]))
        for r in table.to_pyarrow().to_pylist()
    ]


@dataclass(frozen=True)
class Sankey:
    """Nodes and weighted links, ready to draw."""

    nodes: tuple[str, ...]
    links: tuple[tuple[int, int, int], ...]


def sankey(flows: list[Transition], *, top: int = 25) -> Sankey:
    """The `top` heaviest transitions as a Sankey graph (self-loops and cycles dropped)."""
    chosen: list[Transition] = []
    order: dict[str, int] = {}
    for t in flows:
        if len(chosen) >= top:
            break
        if t.source == t.target or _reaches(chosen, t.target, t.source):
            continue
        chosen.append(t)
        for name in (t.source, t.target):
            order.setdefault(name, len(order))
    nodes = tuple(order)
    links = tuple((order[t.source], order[t.target], t.people) for t in chosen)
    return Sankey(nodes, links)


def _reaches(links: list[Transition], start: str, goal: str) -> bool:
    frontier, seen = [start], {start}
    while frontier:
        node = frontier.pop()
        if node == goal:
            return True
        for t in links:
            if t.source == node and t.target not in seen:
                seen.add(t.target)
                frontier.append(t.target)
    return False
