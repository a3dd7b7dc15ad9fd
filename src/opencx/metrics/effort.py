"""Effort read from behaviour: repeat contacts, channel hops, identifying again, slow fixes.

Surveys ask a few people how easy it was; the log shows it for everyone. Every signal is
a property of an **assisted contact**: a run of customer-initiated touchpoint events on
one of phone, chat or store with less than `same_contact` (1 h) between consecutive
events (a call logs a start and an end, a store visit its visit and its order). A contact
has the `topic` of its first event that has one, and is resolved or not when one of its
events carries a `resolved` property (`Call Ended`, `Chat Ended`). A contact is:

- a **repeat contact** when the same person had another assisted contact in the
  `repeat_within` (7 days) before it about the same thing: the same `topic` when both
  have one, any contact when either has none;
- a **channel hop** when a web or app touchpoint came before it within `hop_within`
  (48 h): `opencx.journeys.paths.hops_expression` matches them, and the hop is credited to
  the *last* digital touchpoint before the contact, under its flow ("Password Reset
  Failed" counts as "Password Reset Started", as in the diagnostics);
- a **re-identification** when that last digital touchpoint was within
  `reidentify_within` (1 h): the log ties the session to the person, so the brand knew
  who they were a moment ago, yet the contact starts by identifying them again;
- a **slow resolution** when it ended unresolved (`resolved` false) and no contact about
  the same thing was resolved within `slow_after` (24 h) of its start. Cases (`Case
  Opened` … `Case Resolved`) are left out: they are opened from survey answers, so they
  would feed answers back into the drivers of answers; `opencx.voc` reports their times.

`assisted_contacts` is one row per contact with these flags; `effort_signals` counts them
per person (used by the key-driver analysis), `effort_by_touchpoint` and
`effort_by_segment` give the share of people with each signal, `effort_summary` the totals
the Overview page shows. `write_effort_traits` stores each person's counts of the last 90
days as computed traits (`effort_channel_hops_90d`, ...; `opencx.segments.COMPUTED_TRAITS`),
which segment rules and the profile read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from opencx.durations import parse_duration
from opencx.journeys import ASSISTED_CHANNELS, TouchpointModel, touchpoint_model
from opencx.journeys.diagnostics import flows
from opencx.journeys.paths import hops_expression
from opencx.metrics._answers import Segments, check_period, membership_table, utc
from opencx.warehouse import Warehouse

SIGNALS: tuple[str, ...] = (
    "repeat_contact",
    "channel_hop",
    "reidentification",
    "slow_resolution",
)
"""The effort flags of a contact, in the order every table here lists them."""

_COUNTS = {
    "repeat_contact": "repeat_contacts",
    "channel_hop": "channel_hops",
    "reidentification": "reidentifications",
    "slow_resolution": "slow_resolutions",
}


class EffortRules(BaseModel):
    """The windows behind the signals (durations as "7d", "48h", "1h" or timedelta).

    >>> EffortRules(repeat_within="3d").repeat_within
    datetime.timedelta(days=3)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    same_contact: timedelta = timedelta(hours=1)
    repeat_within: timedelta = timedelta(days=7)
    hop_within: timedelta = timedelta(hours=48)
    reidentify_within: timedelta = timedelta(hours=1)
    slow_after: timedelta = timedelta(hours=24)

    @field_validator("*", mode="before")
    @classmethod
    def _duration(cls, value: object, info: ValidationInfo) -> timedelta:
        text = value if isinstance(value, timedelta) else str(value)
        return parse_duration(text, field=info.field_name or "window")


def _customer_model(model: TouchpointModel) -> TouchpointModel:
    return TouchpointModel(
        touchpoints=tuple(tp for tp in model.touchpoints if tp.initiated_by == "customer")
    )


def _contact_runs(
    warehouse: Warehouse,
    model: TouchpointModel,
    rules: EffortRules,
    start_at: datetime | None,
    end_at: datetime | None,
) -> ir.Table:
    """One row per assisted contact: person_id, channel, touchpoint, started_at, ended_at,
    first_seq, topic, resolved (NULL when no event says)."""
    events = warehouse.events()
    events = events.filter(events.channel.isin(ASSISTED_CHANNELS))
    if start_at is not None:
        events = events.filter(events.timestamp >= start_at)
    if end_at is not None:
        events = events.filter(events.timestamp < end_at)
    text = warehouse.json_text
    labelled = _customer_model(model).label(events)
    rows = labelled.select(
        "person_id",
        "seq",
        "channel",
        "touchpoint",
        ts=labelled.timestamp,
        topic=text(labelled.properties, "topic"),
        resolved=text(labelled.properties, "resolved").lower(),
    )
    order = ibis.window(group_by=["person_id", "channel"], order_by=["ts", "seq"])
    rows = rows.mutate(prev_ts=rows.ts.lag().over(order))
    opens = rows.prev_ts.isnull() | (rows.ts > rows.prev_ts + rules.same_contact)
    rows = rows.mutate(opens=opens.cast("int64"))
    running = ibis.cumulative_window(group_by=["person_id", "channel"], order_by=["ts", "seq"])
    rows = rows.mutate(contact=rows.opens.sum().over(running))
    outcome = ibis.cases(
        (rows.resolved == "true", 1), (rows.resolved == "false", 0), else_=ibis.null("int64")
    )
    rows = rows.mutate(outcome=outcome)
    return rows.group_by(["person_id", "channel", "contact"]).aggregate(
        touchpoint=rows.touchpoint.argmin(rows.seq),
        started_at=rows.ts.min(),
        ended_at=rows.ts.max(),
        first_seq=rows.seq.min(),
        topic=rows.topic.argmin(rows.seq, where=rows.topic.notnull()),
        resolved=rows.outcome.max() == 1,
    )


def _same_matter(left: ir.Table, right: ir.Table) -> ir.BooleanValue:
    """Two contacts are about the same thing when their topics agree or either has none."""
    return left.topic.isnull() | right.topic.isnull() | (left.topic == right.topic)


def _repeats(contacts: ir.Table, rules: EffortRules) -> ir.Table:
    """The keys (person_id, first_seq) of contacts that repeat an earlier one."""
    later, earlier = contacts.view(), contacts.view()
    pairs = later.join(
        earlier,
        [
            later.person_id == earlier.person_id,
            earlier.started_at < later.started_at,
            earlier.started_at >= later.started_at - rules.repeat_within,
            _same_matter(later, earlier),
        ],
    )
    return pairs.select(r_person=later.person_id, r_seq=later.first_seq).distinct()


def _slow(contacts: ir.Table, rules: EffortRules) -> ir.Table:
    """The keys of unresolved contacts that nothing resolved within `slow_after`."""
    open_, fix = contacts.view(), contacts.view()
    open_ = open_.filter(open_.resolved == False)  # noqa: E712 (an Ibis expression)
    fix = fix.filter(fix.resolved)
    fixed = open_.join(
        fix,
        [
            open_.person_id == fix.person_id,
            fix.started_at >= open_.started_at,
            fix.first_seq != open_.first_seq,
            fix.started_at <= open_.started_at + rules.slow_after,
            _same_matter(open_, fix),
        ],
    ).select(f_person=open_.person_id, f_seq=open_.first_seq)
    fixed = fixed.distinct()
    left = open_.anti_join(
        fixed, [open_.person_id == fixed.f_person, open_.first_seq == fixed.f_seq]
    )
    return left.select(s_person=left.person_id, s_seq=left.first_seq)


def _hops(
    warehouse: Warehouse,
    model: TouchpointModel,
    contacts: ir.Table,
    rules: EffortRules,
    start_at: datetime | None,
    end_at: datetime | None,
) -> ir.Table:
    """Per contact that follows a digital touchpoint: its key, the last digital touchpoint
    before it (under its flow) and whether that was within `reidentify_within`."""
    since = None if start_at is None else start_at - rules.hop_within
    hops = hops_expression(warehouse, model, within=rules.hop_within, start_at=since, end_at=end_at)
    hops = hops.filter(hops.hop_ts.notnull())
    grouped = [(hops.touchpoint == tp, lead) for tp, lead in flows(model).items() if tp != lead]
    flow = ibis.cases(*grouped, else_=hops.touchpoint) if grouped else hops.touchpoint
    hops = hops.mutate(flow=flow)
    into = hops.join(
        contacts,
        [
            hops.person_id == contacts.person_id,
            hops.hop_channel == contacts.channel,
            hops.hop_ts >= contacts.started_at,
            hops.hop_ts <= contacts.ended_at,
            hops.ts < contacts.started_at,  # not the app opened during the call
        ],
    ).select(
        h_person=contacts.person_id,
        h_seq=contacts.first_seq,
        started_at=contacts.started_at,
        flow=hops.flow,
        ts=hops.ts,
        seq=hops.seq,
    )
    # Several digital events lead into one contact: the last one is where the customer gave up.
    last = ibis.window(group_by=["h_person", "h_seq"], order_by=[ibis.desc("ts"), ibis.desc("seq")])
    into = into.mutate(nth=ibis.row_number().over(last))
    into = into.filter(into.nth == 0)
    return into.select(
        "h_person",
        "h_seq",
        hopped_from=into.flow,
        reidentified=into.ts + rules.reidentify_within >= into.started_at,
    )


def assisted_contacts(
    warehouse: Warehouse,
    model: TouchpointModel,
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    rules: EffortRules | None = None,
) -> ir.Table:
    """Every assisted contact starting in [start_at, end_at), with its effort flags.

    Columns: person_id, channel, touchpoint, started_at, ended_at, first_seq, topic,
    resolved, hopped_from (the digital touchpoint's flow, NULL when no hop), and one
    boolean per name in `SIGNALS`. Earlier contacts (back to `repeat_within`) are read
    so that the first contact of the period can be a repeat.

    For example `assisted_contacts(wh, model).filter(lambda c: c.channel_hop)` is every
    contact that followed a web or app touchpoint within 48 h.
    """
    rules = rules or EffortRules()
    start_at, end_at = utc(start_at), utc(end_at)
    check_period(start_at, end_at)
    back = max(rules.repeat_within, rules.same_contact)
    since = None if start_at is None else start_at - back
    # Not a view: Ibis 12 joins two views of a view as one table (t9 = t9).
    every = _contact_runs(warehouse, model, rules, since, end_at)
    repeats = _repeats(every, rules)
    slow = _slow(every, rules)
    hops = _hops(warehouse, model, every, rules, since, end_at)
    contacts = every if start_at is None else every.filter(every.started_at >= start_at)
    joined = (
        contacts.left_join(
            repeats,
            [contacts.person_id == repeats.r_person, contacts.first_seq == repeats.r_seq],
        )
        .left_join(slow, [contacts.person_id == slow.s_person, contacts.first_seq == slow.s_seq])
        .left_join(hops, [contacts.person_id == hops.h_person, contacts.first_seq == hops.h_seq])
    )
    return joined.select(
        contacts.person_id,
        contacts.channel,
        contacts.touchpoint,
        contacts.started_at,
        contacts.ended_at,
        contacts.first_seq,
        contacts.topic,
        contacts.resolved,
        hopped_from=hops.hopped_from,
        repeat_contact=repeats.r_seq.notnull(),
        channel_hop=hops.h_seq.notnull(),
        reidentification=hops.reidentified.fill_null(False),
        slow_resolution=slow.s_seq.notnull(),
    )


def _people(warehouse: Warehouse, start_at: datetime | None, end_at: datetime | None) -> ir.Table:
    events = warehouse.events()
    if start_at is not None:
        events = events.filter(events.timestamp >= start_at)
    if end_at is not None:
        events = events.filter(events.timestamp < end_at)
    return events.select(pid=events.person_id).distinct()


def effort_signals(
    warehouse: Warehouse,
    model: TouchpointModel,
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    rules: EffortRules | None = None,
) -> ir.Table:
    """Per person with an event in [start_at, end_at): contacts, repeat_contacts,
    channel_hops, reidentifications and slow_resolutions (0 when none).

    One row per person, so the counts can be stored as traits or joined to a feature
    table: `effort_signals(wh, model).filter(lambda p: p.channel_hops > 0)` is everyone
    who went from the web or app to an agent at least once.
    """
    contacts = assisted_contacts(warehouse, model, start_at=start_at, end_at=end_at, rules=rules)
    counts = contacts.group_by(c_person=contacts.person_id).aggregate(
        contacts=contacts.count(),
        **{_COUNTS[s]: contacts[s].cast("int64").sum() for s in SIGNALS},
    )
    people = _people(warehouse, utc(start_at), utc(end_at))
    joined = people.left_join(counts, people.pid == counts.c_person)
    return joined.select(
        person_id=people.pid,
        contacts=counts.contacts.fill_null(0),
        **{_COUNTS[s]: counts[_COUNTS[s]].fill_null(0) for s in SIGNALS},
    )


def _shares(table: ir.Table, people: ir.IntegerValue) -> dict[str, ir.Value]:
    return {s: (table[f"n_{s}"].fill_null(0) / people) for s in SIGNALS}


def effort_by_touchpoint(
    warehouse: Warehouse,
    model: TouchpointModel,
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    rules: EffortRules | None = None,
) -> ir.Table:
    """Per touchpoint met in [start_at, end_at): people, and the share of them with each
    signal on a contact that started with the touchpoint or in the `hop_within` after it.

    Columns: touchpoint, people, then one share (0–1) per name in `SIGNALS`, most
    visited touchpoints first. A contact is counted once per person and touchpoint.
    """
    rules = rules or EffortRules()
    start_at, end_at = utc(start_at), utc(end_at)
    contacts = assisted_contacts(warehouse, model, start_at=start_at, end_at=end_at, rules=rules)
    events = warehouse.events()
    if start_at is not None:
        events = events.filter(events.timestamp >= start_at)
    if end_at is not None:
        events = events.filter(events.timestamp < end_at)
    met = model.label(events).select("person_id", "touchpoint", ts=events.timestamp)
    met = met.view()
    people = met.group_by("touchpoint").aggregate(people=met.person_id.nunique())
    after = met.join(
        contacts,
        [
            met.person_id == contacts.person_id,
            contacts.started_at >= met.ts,
            contacts.started_at <= met.ts + rules.hop_within,
        ],
    )
    flagged = after.group_by([met.touchpoint, met.person_id]).aggregate(
        **{s: contacts[s].max() for s in SIGNALS}
    )
    counts = flagged.group_by(t_touchpoint=flagged.touchpoint).aggregate(
        **{f"n_{s}": flagged[s].cast("int64").sum() for s in SIGNALS}
    )
    joined = people.left_join(counts, people.touchpoint == counts.t_touchpoint)
    out = joined.select(people.touchpoint, people.people, **_shares(joined, joined.people))
    return out.order_by([ibis.desc("people"), "touchpoint"])


def effort_by_segment(
    warehouse: Warehouse,
    model: TouchpointModel,
    segments: Segments,
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    rules: EffortRules | None = None,
) -> ir.Table:
    """Per segment: members, and the share of them with each signal in the period.

    `segments` is {segment: person ids} or an Ibis table (person_id, segment); members
    with no contact count as having no signal. Columns: segment, members, one share per
    name in `SIGNALS`.
    """
    contacts = assisted_contacts(warehouse, model, start_at=start_at, end_at=end_at, rules=rules)
    per_person = contacts.group_by(c_person=contacts.person_id).aggregate(
        **{s: contacts[s].max() for s in SIGNALS}
    )
    members = membership_table(segments)
    joined = members.left_join(per_person, members.pid == per_person.c_person)
    counts = joined.group_by(members.segment).aggregate(
        members=joined.count(),
        **{f"n_{s}": joined[s].fill_null(False).cast("int64").sum() for s in SIGNALS},
    )
    out = counts.select("segment", "members", **_shares(counts, counts.members))
    return out.order_by([ibis.desc("members"), "segment"])


TRAIT_WINDOW = timedelta(days=90)
EFFORT_TRAITS: dict[str, str] = {
    "repeat_contacts": "effort_repeat_contacts_90d",
    "channel_hops": "effort_channel_hops_90d",
    "reidentifications": "effort_repeat_identification_90d",
    "slow_resolutions": "effort_slow_resolutions_90d",
}
"""Each count of `effort_signals` and the computed trait that stores it."""
EFFORT_SCORE = "effort_score_90d"


def effort_traits_expression(
    warehouse: Warehouse,
    model: TouchpointModel,
    now: datetime,
    *,
    rules: EffortRules | None = None,
) -> ir.Table:
    """Per person with an event in the 90 days before `now`: one column per computed trait
    (`EFFORT_TRAITS` values and `effort_score_90d`, the four signals added up)."""
    now = utc(now)
    signals = effort_signals(warehouse, model, start_at=now - TRAIT_WINDOW, end_at=now, rules=rules)
    score = sum((signals[c] for c in EFFORT_TRAITS), ibis.literal(0, type="int64"))
    return signals.select(
        "person_id",
        **{trait: signals[count] for count, trait in EFFORT_TRAITS.items()},
        **{EFFORT_SCORE: score},
    )


def write_effort_traits(
    con: duckdb.DuckDBPyConnection,
    warehouse: Warehouse,
    now: datetime,
    *,
    model: TouchpointModel | None = None,
    rules: EffortRules | None = None,
) -> int:
    """Store every person's effort signals of the 90 days before `now` in `computed_traits`,
    replacing the previous values of these traits in one transaction; returns the rows kept.

    People with no event in the window lose their old values (none is current). `model`
    defaults to the saved (or inferred) touchpoint model.
    """
    now = utc(now)
    model = model or touchpoint_model(con, warehouse)
    table = effort_traits_expression(warehouse, model, now, rules=rules).to_pyarrow()
    names = [*EFFORT_TRAITS.values(), EFFORT_SCORE]
    # Long form (person_id, name, value JSON), as `computed_traits` holds it.
    long = (
        "SELECT person_id, name, CAST(value AS VARCHAR) AS value FROM (UNPIVOT _effort_traits "
        "ON COLUMNS(* EXCLUDE (person_id)) INTO NAME name VALUE value)"
    )
    con.register("_effort_traits", table)
    try:
        con.execute("BEGIN")
        try:
            con.execute(
                "DELETE FROM computed_traits WHERE name IN (SELECT unnest(?::VARCHAR[])) "
                f"AND (person_id, name) NOT IN (SELECT (person_id, name) FROM ({long}))",
                [names],
            )
            con.execute(
                f"INSERT INTO computed_traits SELECT person_id, name, value::JSON, ? FROM ({long}) "
                "ON CONFLICT (person_id, name) "
                "DO UPDATE SET value = excluded.value, computed_at = excluded.computed_at",
                [now],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    finally:
        con.unregister("_effort_traits")
    return table.num_rows * len(names)


@dataclass(frozen=True)
class EffortSummary:
    """The effort of a period in totals: assisted contacts, each signal's count and the
    people who met it at least once, among the people seen in the period."""

    people: int
    contacts: int
    counts: dict[str, int]  # signal (SIGNALS) -> contacts with it
    people_with: dict[str, int]  # signal -> people with at least one

    def share(self, signal: str) -> float:
        """The share of assisted contacts with the signal (0 with no contact)."""
        return self.counts[signal] / self.contacts if self.contacts else 0.0


def effort_summary(
    warehouse: Warehouse,
    model: TouchpointModel,
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    rules: EffortRules | None = None,
) -> EffortSummary:
    """Totals of `effort_signals` over [start_at, end_at), in one aggregate."""
    signals = effort_signals(warehouse, model, start_at=start_at, end_at=end_at, rules=rules)
    row = (
        signals.aggregate(
            people=signals.count(),
            contacts=signals.contacts.sum(),
            **{f"n_{s}": signals[_COUNTS[s]].sum() for s in SIGNALS},
            **{f"p_{s}": (signals[_COUNTS[s]] > 0).cast("int64").sum() for s in SIGNALS},
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    return EffortSummary(
        people=int(row["people"] or 0),
        contacts=int(row["contacts"] or 0),
        counts={s: int(row[f"n_{s}"] or 0) for s in SIGNALS},
        people_with={s: int(row[f"p_{s}"] or 0) for s in SIGNALS},
    )
