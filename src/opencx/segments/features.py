"""The per-person feature table segment rules read: behaviour, survey answers, RFM, lifecycle.

One row per person (everyone with an event before `now`, and everyone with a profile),
computed from the log as of `now` by one Ibis expression. `FEATURES` documents every
column; rules name them directly (`purchases_90d >= 2`) and traits as `trait.NAME`.

Built-in scores:

- **RFM**: quintile scores 1–5 of recency (days since the last order: recent is 5),
  frequency (orders) and monetary value (revenue) among people with at least one order,
  as `ceil(5 × cume_dist)`, so equal values always get the same score (with many
  one-order customers, frequency then skips the low scores rather than splitting equals).
  NULL for people who never ordered. `rfm` is the three digits, e.g. "545".
- **lifecycle**: `lapsed` when last seen more than 90 days ago, `at-risk` after 30 days,
  else `new` when first seen within 30 days, else `active` (NULL with no events).
- **survey behaviour**: `responded`, `responded_surveys`, the latest NPS/CSAT/CES score
  and `nps_group` (promoter 9–10, passive 7–8, detractor 0–6) from the latest NPS answer.

- **computed traits**: values written into the store's `computed_traits` table by a
  refresh (`refresh_segments`), read as numbers: the effort signals of the last 90 days
  (`COMPUTED_TRAITS`). They are as of their last refresh, not of `now`, and NULL for a
  person with no value (nobody active in the window); an engine without that table (a
  Parquet export that lacks it) has no such fields.

Days are whole UTC calendar days (`last_seen_days` is 0 for someone seen today); the
"_90d"/"_30d" windows are the 90 × 24 hours before `now`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta

import ibis
import ibis.common.exceptions as ibis_errors
import ibis.expr.types as ir

from opencx.errors import InvalidInput
from opencx.segments._orders import ORDER_EVENT, day_number, order_revenue
from opencx.warehouse import Warehouse

SURVEY_EVENT = "Survey Responded"
ACTIVE_DAYS = 30  # seen within this many days: active (or new)
LAPSED_DAYS = 90  # not seen for longer than this: lapsed; in between: at-risk
NEW_DAYS = 30  # first seen within this many days: new
_EPOCH = date(1970, 1, 1)
COMPUTED_TABLE = "computed_traits"

COMPUTED_TRAITS: dict[str, str] = {
    "effort_repeat_contacts_90d": "number: repeat assisted contacts in the last 90 days "
    "(computed trait, as of the last refresh)",
    "effort_channel_hops_90d": "number: contacts that followed a web or app attempt within "
    "48 h, last 90 days (computed trait)",
    "effort_repeat_identification_90d": "number: contacts within 1 h of being known on the "
    "web or app, so identifying again, last 90 days (computed trait)",
    "effort_slow_resolutions_90d": "number: contacts left unresolved for more than 24 h, "
    "last 90 days (computed trait)",
    "effort_score_90d": "number: the four effort signals above added up (computed trait)",
}
"""Computed traits a rule can name, read from `computed_traits` (all numbers)."""

FEATURES: dict[str, str] = {
    "person_id": "text: the person (profile id, following merges)",
    "purchases_90d": "number: `Order Completed` events in the last 90 days",
    "revenue_90d": "number: their revenue (properties.revenue, else total)",
    "orders": "number: every `Order Completed` before now",
    "revenue": "number: their revenue",
    "days_since_order": "number: days since the last order (NULL: never ordered)",
    "last_seen_days": "number: days since the last event (0: today)",
    "tenure_days": "number: days since the first event",
    "events_30d": "number: events in the last 30 days",
    "main_channel": "text: the channel with most of the person's events (alias: channel)",
    "last_nps": "number: the latest NPS answer (0-10)",
    "last_csat": "number: the latest CSAT answer (1-5)",
    "last_ces": "number: the latest CES answer (1-7, 7 = very easy)",
    "responded_surveys": "number: `Survey Responded` events",
    "responded": "bool: answered at least one survey",
    "nps_group": "text: promoter, passive or detractor, from the latest NPS answer",
    "rfm_recency": "number: 1-5, 5 = ordered most recently",
    "rfm_frequency": "number: 1-5, 5 = most orders",
    "rfm_monetary": "number: 1-5, 5 = most revenue",
    "rfm": 'text: the three RFM digits, e.g. "545"',
    "lifecycle": "text: new, active, at-risk or lapsed",
    "traits": "JSON text of the profile's traits: read them as trait.NAME",
    **COMPUTED_TRAITS,
}


def _utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _activity(events: ir.Table, warehouse: Warehouse, now: datetime) -> ir.Table:
    """One pass over the log: counts, revenue, first and last seen, per person."""
    ts = events.timestamp
    is_order = events.event == ORDER_EVENT
    last_90d = ts >= now - timedelta(days=90)
    # Only order rows are parsed: CASE evaluates its branch on the matching rows alone.
    revenue = ibis.cases((is_order, order_revenue(warehouse, events.properties)))
    count = "int64"
    return events.group_by("person_id").aggregate(
        first_seen=ts.min(),
        last_seen=ts.max(),
        events_30d=(ts >= now - timedelta(days=30)).cast(count).sum(),
        purchases_90d=(is_order & last_90d).cast(count).sum(),
        revenue_90d=revenue.sum(where=last_90d).fill_null(0.0),
        orders=is_order.cast(count).sum(),
        revenue=revenue.sum().fill_null(0.0),
        last_order=ts.max(where=is_order),
        responded_surveys=(events.event == SURVEY_EVENT).cast(count).sum(),
    )


def _main_channel(events: ir.Table) -> ir.Table:
    counts = events.group_by(["person_id", "channel"]).aggregate(
        n=events.count(), latest=events.timestamp.max()
    )
    # Ties go to the channel used most recently, then by name: the same on every engine.
    order = [ibis.desc(counts.n), ibis.desc(counts.latest), counts.channel]
    ranked = counts.mutate(
        rank=ibis.row_number().over(ibis.window(group_by="person_id", order_by=order))
    )
    return ranked.filter(ranked.rank == 0).select(m_pid="person_id", main_channel="channel")


def _latest_scores(warehouse: Warehouse, now: datetime) -> ir.Table:
    answers = warehouse.survey_answers()
    answers = answers.filter(
        (answers.at < now)
        & answers.score.notnull()
        & answers.survey_type.isin(["nps", "csat", "ces"])
    )
    order = [ibis.desc(answers.at), ibis.desc(answers.message_id)]
    window = ibis.window(group_by=["person_id", "survey_type"], order_by=order)
    ranked = answers.mutate(rank=ibis.row_number().over(window))
    latest = ranked.filter(ranked.rank == 0)
    return latest.group_by(s_pid=latest.person_id).aggregate(
        **{
            f"last_{kind}": latest.score.max(where=latest.survey_type == kind)
            for kind in ("nps", "csat", "ces")
        }
    )


def _rfm(activity: ir.Table, now_day: int) -> ir.Table:
    buyers = activity.filter(activity.orders > 0)

    def score(value: ir.Value) -> ir.IntegerValue:
        # cume_dist is k/n; the epsilon keeps 5 × 3/5 from rounding up to 4.
        dist = ibis.cume_dist().over(ibis.window(order_by=value))
        return (dist * 5 - 1e-9).ceil().cast("int64")

    return buyers.select(
        r_pid=buyers.person_id,
        days_since_order=now_day - day_number(buyers.last_order),
        rfm_recency=score(buyers.last_order),
        rfm_frequency=score(buyers.orders),
        rfm_monetary=score(buyers.revenue),
    )


# Which sub-table each column comes from, so a rule pays only for what it reads.
_PARTS: dict[str, str] = {
    **dict.fromkeys(
        ["purchases_90d", "revenue_90d", "orders", "revenue", "last_seen_days", "tenure_days",
         "events_30d", "responded_surveys", "responded", "lifecycle"],
        "activity",
    ),
    "main_channel": "main",
    **dict.fromkeys(["last_nps", "last_csat", "last_ces", "nps_group"], "scores"),
    **dict.fromkeys(
        ["days_since_order", "rfm_recency", "rfm_frequency", "rfm_monetary", "rfm"], "rfm"
    ),
    "traits": "traits",
    **dict.fromkeys(COMPUTED_TRAITS, "computed"),
}  # fmt: skip


def computed_traits_table(warehouse: Warehouse) -> ir.Table | None:
    """The engine's `computed_traits` table (person_id, name, value JSON, computed_at), or
    None when it has none (e.g. Spark over an export without it)."""
    try:
        return warehouse.backend.table(COMPUTED_TABLE)
    except ibis_errors.TableNotFound:
        return None


def _computed(table: ir.Table, names: Collection[str]) -> ir.Table:
    """One row per person with a computed trait: c_pid and one number column per name."""
    rows = table.filter(table.name.isin(list(names)))
    value = rows.value.cast("string").try_cast("float64")
    return rows.group_by(c_pid=rows.person_id.cast("string")).aggregate(
        **{name: value.max(where=rows.name == name) for name in names}
    )


def _wanted(columns: Collection[str] | None, computed: bool = True) -> list[str]:
    if columns is None:
        return [c for c in FEATURES if computed or c not in COMPUTED_TRAITS]
    unknown = sorted(set(columns) - set(FEATURES))
    if unknown:
        raise InvalidInput(f"unknown features {', '.join(unknown)}; known: {', '.join(FEATURES)}")
    return ["person_id", *(c for c in FEATURES if c in set(columns) and c != "person_id")]


def features_expression(
    warehouse: Warehouse, now: datetime, *, columns: Collection[str] | None = None
) -> ir.Table:
    """The feature table as of `now` (events before it), one row per person; columns and
    their meaning in `FEATURES`. With `columns`, only those (and person_id) are computed,
    e.g. `features_expression(wh, now, columns=["purchases_90d"])` skips the RFM windows.
    """
    stored = computed_traits_table(warehouse)
    wanted = _wanted(columns, computed=stored is not None)
    parts = {_PARTS[c] for c in wanted if c != "person_id"}
    if "computed" in parts and stored is None:
        raise InvalidInput(
            f"{', '.join(c for c in wanted if c in COMPUTED_TRAITS)} are computed traits, kept "
            f"in the {COMPUTED_TABLE} table, which this engine lacks: export it with the "
            "analytics tables"
        )
    now = _utc(now)
    now_day = (now.date() - _EPOCH).days
    events = warehouse.events()
    events = events.filter(events.timestamp < now)
    # Read several times below: `.view()` makes Ibis write it once, as a CTE.
    activity = _activity(events, warehouse, now).view()
    profiles = warehouse.profiles()
    traits = profiles.select(t_pid=profiles.person_id, traits=profiles.traits)
    people = (
        activity.select(pid=activity.person_id.cast("string"))
        .union(traits.select(pid=traits.t_pid.cast("string")), distinct=True)
        .view()
    )
    # Every right side has its own key name, so a chain of left joins keeps `pid` intact.
    joined: ir.Table = people
    values: dict[str, ir.Value] = {"person_id": people.pid}
    if "activity" in parts:
        joined = joined.left_join(activity, people.pid == activity.person_id)
        values.update(
            purchases_90d=activity.purchases_90d.fill_null(0),
            revenue_90d=activity.revenue_90d.fill_null(0.0),
            orders=activity.orders.fill_null(0),
            revenue=activity.revenue.fill_null(0.0),
            last_seen_days=now_day - day_number(activity.last_seen),
            tenure_days=now_day - day_number(activity.first_seen),
            events_30d=activity.events_30d.fill_null(0),
            responded_surveys=activity.responded_surveys.fill_null(0),
        )
    if "main" in parts:
        main = _main_channel(events)
        joined = joined.left_join(main, people.pid == main.m_pid)
        values["main_channel"] = main.main_channel
    if "scores" in parts:
        scores = _latest_scores(warehouse, now)
        joined = joined.left_join(scores, people.pid == scores.s_pid)
        values.update(last_nps=scores.last_nps, last_csat=scores.last_csat,
                      last_ces=scores.last_ces)  # fmt: skip
    if "rfm" in parts:
        rfm = _rfm(activity, now_day)
        joined = joined.left_join(rfm, people.pid == rfm.r_pid)
        values.update(days_since_order=rfm.days_since_order, rfm_recency=rfm.rfm_recency,
                      rfm_frequency=rfm.rfm_frequency, rfm_monetary=rfm.rfm_monetary)  # fmt: skip
    if "traits" in parts:
        joined = joined.left_join(traits, people.pid == traits.t_pid)
        values["traits"] = traits.traits
    if "computed" in parts and stored is not None:
        names = [c for c in wanted if c in COMPUTED_TRAITS]
        computed = _computed(stored, names)
        joined = joined.left_join(computed, people.pid == computed.c_pid)
        values.update({name: computed[name] for name in names})
    t = joined.select(**values)
    return t.mutate(**_derived(t, parts)).select(*wanted)


def _derived(t: ir.Table, parts: set[str]) -> dict[str, ir.Value]:
    """The columns computed from other columns: flags, groups, stages, the RFM digits."""
    out: dict[str, ir.Value] = {}
    if "activity" in parts:
        out["responded"] = t.responded_surveys > 0
        out["lifecycle"] = ibis.cases(
            (t.last_seen_days > LAPSED_DAYS, "lapsed"),
            (t.last_seen_days > ACTIVE_DAYS, "at-risk"),
            (t.tenure_days <= NEW_DAYS, "new"),
            (t.last_seen_days.notnull(), "active"),
        )
    if "scores" in parts:
        out["nps_group"] = ibis.cases(
            (t.last_nps >= 9, "promoter"),
            (t.last_nps >= 7, "passive"),
            (t.last_nps.notnull(), "detractor"),
        )
    if "rfm" in parts:
        out["rfm"] = (
            t.rfm_recency.cast("string")
            .concat(t.rfm_frequency.cast("string"))
            .concat(t.rfm_monetary.cast("string"))
        )
    return out
