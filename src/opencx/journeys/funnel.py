"""Ordered funnels with a conversion window, as one Ibis expression on any engine.

Semantics (docs/journeys.md has the long form):

- A person's events are ordered by (timestamp, seq): equal timestamps keep log order, so
  one event never counts for two steps, even when two steps name the same event.
- `start="first"` (the default, what analysts expect from Mixpanel or Amplitude): the
  person's *first* step-1 event in the period starts their one attempt; each later step
  is the first matching event after the previous step and within `window` of step 1.
- `start="any"` (ClickHouse's `windowFunnel`): every step-1 event in the period starts an
  attempt, and the person counts at the deepest step any attempt reaches (times from the
  earliest such attempt). It can only count more people than "first".
- An exclusion event after step 1 and before the attempt ends (the last step, or the
  end of the window if it never got there) disqualifies that attempt.
- Step 1 must be in [from, to); later steps may fall after `to` while in the window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from opencx.errors import InvalidInput
from opencx.journeys._time import check_period, parse_duration, utc
from opencx.journeys.touchpoints import TouchpointModel
from opencx.warehouse import Warehouse, check_field_name

NO_GROUP = "(none)"


class FunnelStep(BaseModel):
    """One step: an event name (track name or page/screen name) or a touchpoint id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: str | None = None
    touchpoint: str | None = None
    touchpoints: tuple[str, ...] = Field(default=(), description="Any of these touchpoints.")
    stage: str | None = Field(default=None, description="Any touchpoint of this stage.")
    channel: str | None = None
    where: dict[str, str] = Field(
        default_factory=dict, description="Properties the event must have, e.g. {method: sms}."
    )

    @model_validator(mode="after")
    def _one_target(self) -> FunnelStep:
        targets = [self.event, self.touchpoint, self.touchpoints or None, self.stage]
        if sum(t is not None for t in targets) != 1:
            raise ValueError(
                "a step names exactly one of 'event', 'touchpoint', 'touchpoints' or 'stage'"
            )
        for name in self.where:
            check_field_name(name)
        return self

    @property
    def label(self) -> str:
        text = (
            self.touchpoint
            or self.event
            or (f"stage {self.stage}" if self.stage else " or ".join(self.touchpoints))
        )
        if self.channel:
            text += f" on {self.channel}"
        if self.where:
            text += " (" + ", ".join(f"{k}={v}" for k, v in self.where.items()) + ")"
        return text

    def matches(
        self, events: ir.Table, warehouse: Warehouse, model: TouchpointModel | None
    ) -> ir.BooleanValue:
        if self.event is not None:
            cond = events.event == self.event
        else:
            if model is None:
                raise InvalidInput(f"step {self.label!r} needs the touchpoint model")
            if self.stage is not None:
                chosen = [tp for tp in model.touchpoints if tp.stage == self.stage]
                if not chosen:
                    raise InvalidInput(f"no touchpoint is in stage {self.stage!r}")
            else:
                ids = self.touchpoints or (self.touchpoint,)
                chosen = [model.get(tp) for tp in ids if tp]
            cond = ibis.or_(*(tp.matches(events) for tp in chosen))
        if self.channel is not None:
            cond &= events.channel == self.channel
        for name, value in self.where.items():
            cond &= warehouse.json_text(events.properties, name) == value
        return cond


def parse_step(text: str) -> FunnelStep:
    """A step as people type it: `Event name`, `tp:TOUCHPOINT` or `stage:STAGE`, each
    optionally followed by `|channel=app` and `|property=value` filters.

    >>> parse_step("Password Reset Started|channel=app|method=sms").label
    'Password Reset Started on app (method=sms)'
    """
    target, *filters = [part.strip() for part in text.split("|")]
    fields: dict[str, Any] = {"where": {}}
    if target.startswith("tp:"):
        fields["touchpoint"] = target[3:]
    elif target.startswith("stage:"):
        fields["stage"] = target[6:]
    else:
        fields["event"] = target
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"step {text!r}: filter {item!r} must be KEY=VALUE")
        if key.strip() == "channel":
            fields["channel"] = value.strip()
        else:
            fields["where"][key.strip()] = value.strip()
    try:
        return FunnelStep(**fields)
    except ValidationError as exc:
        raise InvalidInput(f"step {text!r}: {exc.errors()[0]['msg']}") from None


class FunnelQuery(BaseModel):
    """What to count: the steps, the window, which step-1 event starts it, the breakdown."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: tuple[FunnelStep, ...]
    window: timedelta = timedelta(days=7)
    start: Literal["first", "any"] = "first"
    start_at: datetime | None = Field(default=None, description="Step 1 at or after this.")
    end_at: datetime | None = Field(default=None, description="Step 1 before this.")
    by: str | None = Field(
        default=None, description="channel, property:NAME (of step 1) or trait:NAME."
    )
    exclude: FunnelStep | None = None

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: object) -> timedelta:
        if isinstance(value, (str, timedelta)):
            return parse_duration(value)
        raise ValueError("must be a duration such as 7d or 48h")

    @field_validator("start_at", "end_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return utc(value)

    @model_validator(mode="after")
    def _check(self) -> FunnelQuery:
        if not 2 <= len(self.steps) <= 12:
            raise ValueError(f"a funnel has 2 to 12 steps, got {len(self.steps)}")
        check_period(self.start_at, self.end_at)
        if self.by is not None and self.by != "channel":
            kind, _, name = self.by.partition(":")
            if kind not in ("property", "trait") or not name:
                raise ValueError("by must be channel, property:NAME or trait:NAME")
            check_field_name(name, kind)
        return self

    def between(self, start_at: datetime | None, end_at: datetime | None) -> FunnelQuery:
        return self.model_copy(update={"start_at": utc(start_at), "end_at": utc(end_at)})


@dataclass(frozen=True)
class FunnelRow:
    """One step of one group."""

    group: str | None
    step: int
    label: str
    entered: int
    dropped: int
    conversion_from_previous: float | None
    conversion_from_start: float | None
    median_s: float | None
    p90_s: float | None


@dataclass(frozen=True)
class FunnelResult:
    query: FunnelQuery
    rows: tuple[FunnelRow, ...]

    def overall(self) -> list[FunnelRow]:
        return [r for r in self.rows if r.group is None]

    def groups(self) -> list[str]:
        return sorted({r.group for r in self.rows if r.group is not None})


# The expression is a chain of per-step tables: step k's table is built from step k-1's
# alone, never from a join of everything so far. Every table with more than one reader is
# read through `.view()`: Ibis then writes it once, as a CTE, where it would otherwise
# fold it into each reader (a 4-step funnel was 2,000 lines of SQL recomputing earlier
# steps, 6 steps 12,000; now 250 and 380). tests/journeys/test_funnel.py checks the
# answers against hand-written SQL and brute force, bench/journeys.py the speed.


def _matching_events(
    query: FunnelQuery, warehouse: Warehouse, model: TouchpointModel | None, *, grouped: bool
) -> ir.Table:
    """The events any step (or the exclusion) can use, with a flag per step (and the group
    of step 1, `g`, when grouped by channel or property)."""
    events = warehouse.events()
    flags = {f"m{i}": s.matches(events, warehouse, model) for i, s in enumerate(query.steps)}
    if query.exclude is not None:
        flags["mx"] = query.exclude.matches(events, warehouse, model)
    wanted = ibis.or_(*flags.values())
    if query.start_at is not None:
        wanted &= events.timestamp >= query.start_at
    if query.end_at is not None:
        wanted &= events.timestamp < query.end_at + query.window
    columns: dict[str, ir.Value] = {"ts": events.timestamp, **flags}
    if grouped and query.by == "channel":
        columns["g"] = events.channel
    elif grouped and query.by is not None and query.by.startswith("property:"):
        columns["g"] = warehouse.json_text(events.properties, query.by.split(":", 1)[1])
    elif grouped and query.by is None:
        columns["g"] = ibis.null("string")
    return events.filter(wanted).select("person_id", "seq", **columns)


def _later(a: ir.Table, b: ir.Table, ts: str = "ts", seq: str = "seq") -> ir.BooleanValue:
    """Whether `a`'s event comes after the event at (`b[ts]`, `b[seq]`) in log order."""
    return (a.ts > b[ts]) | ((a.ts == b[ts]) & (a.seq > b[seq]))


def _earliest(t: ir.Table, keys: list[str]) -> ir.Table:
    """The first row of each `keys` group in log order, (ts, seq)."""
    order = ibis.window(group_by=keys, order_by=[t.ts, t.seq])
    return t.filter(ibis.row_number().over(order) == 0)


def _reached(
    query: FunnelQuery, warehouse: Warehouse, model: TouchpointModel | None, *, grouped: bool
) -> list[ir.Table]:
    """Per step, one row per attempt that reached it (for start="first", per person).

    Columns: person_id, seq0 and t0 (the attempt's step-1 event, which names it), ts and
    seq (this step's event), from step 2 on t_prev (the previous step's time) and, when
    grouped, g. Only what is used travels: the rows of each step are sorted.
    """
    m = _matching_events(query, warehouse, model, grouped=grouped)
    by = query.by or ""
    trait = by.removeprefix("trait:") if grouped and by.startswith("trait:") else None
    group = ["g"] if grouped else []
    starts = m.view()
    first = starts.m0
    if query.end_at is not None:
        first &= starts.ts < query.end_at
    starts = starts.filter(first).select(
        "person_id", "ts", "seq", *([] if trait is not None else group)
    )
    if query.start == "first":
        starts = _earliest(starts, ["person_id"])
    starts = starts.mutate(t0=starts.ts, seq0=starts.seq)
    if trait is not None:
        profiles = warehouse.profiles()
        traits = profiles.select("person_id", g=warehouse.json_text(profiles.traits, trait))
        starts = _attach(starts, traits, ["person_id"], ["g"])
        # A projection of the join, so that its readers share it (see above).
        starts = starts.select(*starts.columns)
    steps = [starts]
    keys = ["person_id"] if query.start == "first" else ["person_id", "seq0"]
    for k in range(1, len(query.steps)):
        here, prev = m.view(), steps[-1].view()
        follows = [
            here.person_id == prev.person_id,
            here[f"m{k}"],
            _later(here, prev),
            here.ts <= prev.t0 + query.window,
        ]
        cand = here.join(prev, follows).select(
            "person_id",
            prev.seq0,
            prev.t0,
            here.ts,
            here.seq,
            *(prev[c] for c in group),
            t_prev=prev.ts,
        )
        steps.append(_earliest(cand, keys))
    if query.exclude is not None:
        steps = _without_excluded(steps, m, query.window)
    if query.start == "any":
        steps = _best_attempt(steps, grouped=grouped)
    return steps


def _attach(left: ir.Table, right: ir.Table, keys: list[str], columns: list[str]) -> ir.Table:
    """`left` with `columns` of `right` where the keys match (NULL elsewhere).

    Ibis 12 flattens chained left joins and can then read a left key from the right
    side (NULL where nothing matched): the keys are renamed and the chain is cut.
    tests/test_warehouse.py and tests/journeys/test_funnel.py catch it on both engines.
    """
    right = right.select(*columns, **{f"_key_{c}": right[c] for c in keys})
    on = [left[c] == right[f"_key_{c}"] for c in keys]
    joined = left.left_join(right, on).select(left, *(right[c] for c in columns))
    # A fresh relation: chaining further joins onto this one trips the same problem.
    return joined.view()


def _without_excluded(steps: list[ir.Table], m: ir.Table, window: timedelta) -> list[ir.Table]:
    """`steps` without the attempts an exclusion event falls into."""
    keys = ["person_id", "seq0"]
    last = steps[-1].view().select(*keys, stop_ts="ts", stop_seq="seq")
    ends = _attach(steps[0].view().select(*keys, "t0"), last, keys, ["stop_ts", "stop_seq"])
    x = m.view()
    x = x.filter(x.mx).select("person_id", "ts", "seq").join(ends, "person_id")
    stop_t = ibis.coalesce(x.stop_ts, x.t0 + window)
    before_stop = (x.ts < x.stop_ts) | ((x.ts == x.stop_ts) & (x.seq < x.stop_seq))
    x = x.filter(
        _later(x, x, "t0", "seq0") & (x.ts <= stop_t) & (x.stop_seq.isnull() | before_stop)
    )
    hit = x.select(**{f"_key_{c}": x[c] for c in keys}).distinct()
    kept = []
    for step in steps:
        s, h = step.view(), hit.view()
        kept.append(s.anti_join(h, [s[c] == h[f"_key_{c}"] for c in keys]))
    return kept


def _best_attempt(steps: list[ir.Table], *, grouped: bool) -> list[ir.Table]:
    """Each person's deepest attempt (the earliest of those), at every step it reached.

    Without groups, step 1 only counts people, so it is left whole and people who went
    no further are not ranked at all: ranking every step-1 event was the costly part.
    """
    lo = 0 if grouped else 1
    levels = ibis.union(
        *(
            s.select(
                "person_id",
                # Nullability differs from step to step; a union wants one schema.
                seq0=s.seq0.cast(s.seq0.type().copy(nullable=True)),
                t0=s.t0.cast(s.t0.type().copy(nullable=True)),
                level=ibis.literal(k, "int32"),
            )
            for k, s in ((k, steps[k].view()) for k in range(lo, len(steps)))
        )
    )
    order = ibis.window(
        group_by="person_id", order_by=[ibis.desc(levels.level), levels.t0, levels.seq0]
    )
    ranked = levels.mutate(_rank=ibis.row_number().over(order))
    best = ranked.filter(ranked._rank == 0).select(_key_person_id="person_id", _key_seq0="seq0")
    kept = steps[:lo]
    for step in steps[lo:]:
        s, b = step.view(), best.view()
        kept.append(s.semi_join(b, [s.person_id == b._key_person_id, s.seq0 == b._key_seq0]))
    return kept


def funnel_expression(
    query: FunnelQuery,
    warehouse: Warehouse,
    model: TouchpointModel | None = None,
    *,
    grouped: bool = False,
) -> ir.Table:
    """Per step (and group): people who reached it, median and p90 seconds from the previous."""
    parts = []
    for k, step in enumerate(_reached(query, warehouse, model, grouped=grouped)):
        reached = step.view()
        # Step 1 of start="any" without groups still has every attempt (_best_attempt).
        several = query.start == "any" and k == 0 and not grouped
        if k:
            gap = warehouse.epoch_seconds(reached.ts) - warehouse.epoch_seconds(reached.t_prev)
            median, p90 = gap.quantile(0.5), gap.quantile(0.9)
        else:
            median = p90 = ibis.null("float64")
        stats = {
            "step": ibis.literal(k + 1, "int32"),
            "entered": reached.person_id.nunique() if several else reached.count(),
            "median_s": median,
            "p90_s": p90,
        }
        if grouped:
            parts.append(reached.group_by(grp=reached.g.fill_null(NO_GROUP)).aggregate(**stats))
        else:
            parts.append(reached.aggregate(grp=ibis.null("string"), **stats))
    return ibis.union(*parts).order_by(["grp", "step"])


def run_funnel(
    query: FunnelQuery, warehouse: Warehouse, model: TouchpointModel | None = None
) -> FunnelResult:
    """Execute the funnel (overall, and per group when `by` is set).

    >>> # run_funnel(FunnelQuery(steps=[{"event": "Product Viewed"},
    >>> #                               {"event": "Order Completed"}], window="7d"), wh)
    """
    tables = [funnel_expression(query, warehouse, model)]
    if query.by is not None:
        tables.append(funnel_expression(query, warehouse, model, grouped=True))
    rows: list[FunnelRow] = []
    for grouped, table in enumerate(tables):
        counts: dict[tuple[str | None, int], dict[str, object]] = {}
        for rec in table.to_pyarrow().to_pylist():
            counts[(rec["grp"], int(rec["step"]))] = rec
        groups = sorted({g for g, _ in counts}) if grouped else [None]
        for g in groups:
            rows.extend(_rows(query, g, counts))
    return FunnelResult(query, tuple(rows))


def _rows(
    query: FunnelQuery, group: str | None, counts: dict[tuple[str | None, int], dict[str, object]]
) -> list[FunnelRow]:
    out: list[FunnelRow] = []
    first = previous = None
    for k, step in enumerate(query.steps, 1):
        rec = counts.get((group, k), {})
        entered = int(rec.get("entered") or 0)  # type: ignore[call-overload]
        if k == 1:
            first = entered
        out.append(
            FunnelRow(
                group=group,
                step=k,
                label=step.label,
                entered=entered,
                dropped=0 if previous is None else previous - entered,
                conversion_from_previous=None if previous is None else _rate(entered, previous),
                conversion_from_start=_rate(entered, first or 0),
                median_s=_seconds(rec.get("median_s")),
                p90_s=_seconds(rec.get("p90_s")),
            )
        )
        previous = entered
    return out


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _seconds(value: object) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    # Milliseconds are the log's resolution; engines interpolate in different float orders.
    return round(float(value), 3)  # type: ignore[arg-type]


@dataclass(frozen=True)
class FunnelComparison:
    """The same funnel in two periods, with the change in overall conversion and its p-value."""

    before: FunnelResult
    after: FunnelResult
    conversion_before: float | None
    conversion_after: float | None
    p_value: float | None


def compare_funnels(
    query: FunnelQuery,
    warehouse: Warehouse,
    periods: Sequence[tuple[datetime | None, datetime | None]],
    model: TouchpointModel | None = None,
) -> FunnelComparison:
    """Run the funnel for two periods; a two-proportion z-test on end-to-end conversion."""
    if len(periods) != 2:
        raise InvalidInput("a comparison needs exactly two periods")
    a = run_funnel(query.between(*periods[0]), warehouse, model)
    b = run_funnel(query.between(*periods[1]), warehouse, model)
    na, ka = a.overall()[0].entered, a.overall()[-1].entered
    nb, kb = b.overall()[0].entered, b.overall()[-1].entered
    return FunnelComparison(a, b, _rate(ka, na), _rate(kb, nb), two_proportion_p(ka, na, kb, nb))


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """Two-sided p-value that k1/n1 and k2/n2 differ only by chance (pooled z-test)."""
    if not n1 or not n2:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = abs(k1 / n1 - k2 / n2) / se
    return math.erfc(z / math.sqrt(2))
