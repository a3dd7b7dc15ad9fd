"""What is broken, and where: touchpoints ranked by the harm they do to customers.

Three signals, each measured against what would be expected without a problem, and
counted in *excess customers* (people hurt beyond that expectation) so they add up:

- **effort**: customers for whom the touchpoint, on the web or in the app, was the last
  thing they tried before contacting the brand on an assisted channel (phone, chat,
  store) within `within` (48 h), against the same rate after every other digital
  touchpoint;
- **drop-off**: for a touchpoint that has a completion ("X Started" → "X Completed" on
  the same channel), the share that did not complete within `completion_window`, against
  the same pair on the other channels;
- **feedback**: survey answers tied to the touchpoint (`Survey Responded` with a
  `touchpoint` property) that are negative (NPS ≤ 6, CSAT ≤ 2, CES ≤ 3 on the 1–7
  agreement with "the company made it easy to handle my issue"), against the
  negative share of all other answers.

A signal counts when its rate is above the expectation; its p-value (two-proportion
z-test) is Bonferroni-corrected over every touchpoint tested, and the item's confidence
is one minus the smallest corrected p-value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import ibis

from opencx.journeys._time import parse_duration, utc
from opencx.journeys.funnel import FunnelQuery, FunnelStep, run_funnel, two_proportion_p
from opencx.journeys.paths import hops_expression
from opencx.journeys.touchpoints import DIGITAL_CHANNELS, Touchpoint, TouchpointModel
from opencx.warehouse import Warehouse

SignalKind = Literal["effort", "drop_off", "feedback"]


@dataclass(frozen=True)
class Signal:
    """One kind of evidence against a touchpoint."""

    kind: SignalKind
    people: int
    affected: int
    rate: float
    expected: float
    excess: float
    p_value: float | None
    evidence: str
    lift: float | None = None

    def __post_init__(self) -> None:
        if self.lift is None and self.expected:
            object.__setattr__(self, "lift", self.rate / self.expected)


@dataclass(frozen=True)
class Finding:
    """A touchpoint that hurts, with its evidence, size and confidence."""

    touchpoint: str
    name: str
    channel: str | None
    stage: str
    harm: float
    customers_affected: int
    confidence: float
    signals: tuple[Signal, ...]
    examples: tuple[str, ...]
    evidence: str = ""
    confidence_label: str = ""

    def __post_init__(self) -> None:
        if not self.evidence:
            object.__setattr__(self, "evidence", " ".join(s.evidence for s in self.signals))
        if not self.confidence_label:
            label = (
                "high" if self.confidence >= 0.99 else "medium" if self.confidence >= 0.9 else "low"
            )
            object.__setattr__(self, "confidence_label", label)


def _where(tp: Touchpoint) -> str:
    if tp.channel is None:
        return ""
    return {"app": "in the app", "web": "on the web"}.get(tp.channel, f"on {tp.channel}")


def _phrase(tp: Touchpoint) -> str:
    where = _where(tp)
    event = tp.event
    for verb in ("Started", "Viewed", "Opened"):
        if event.endswith(f" {verb}"):
            stem = event[: -len(verb) - 1].lower()
            event = {"Started": f"start {stem}", "Viewed": f"view {stem}"}.get(verb, f"open {stem}")
            break
    else:
        event = f"meet '{event}'"
    return f"{event} {where}".strip()


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours % 24 == 0:
        days = int(hours // 24)
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{hours:g} hours"


def _effort_signals(
    warehouse: Warehouse,
    model: TouchpointModel,
    within: timedelta,
    start_at: datetime | None,
    end_at: datetime | None,
    min_people: int,
) -> tuple[dict[str, Signal], dict[str, list[str]]]:
    hops = _last_before_contact(
        hops_expression(warehouse, model, within=within, start_at=start_at, end_at=end_at)
    )
    grouped = [(hops.touchpoint == tp, lead) for tp, lead in flows(model).items() if tp != lead]
    if grouped:
        hops = hops.mutate(touchpoint=ibis.cases(*grouped, else_=hops.touchpoint))
    per_tp = hops.group_by(["person_id", "touchpoint"]).aggregate(hopped=hops.hopped.max())
    stats = (
        per_tp.group_by("touchpoint")
        .aggregate(people=per_tp.count(), hopped=per_tp.hopped.sum())
        .to_pyarrow()
        .to_pylist()
    )
    n_all = sum(int(r["people"]) for r in stats)
    h_all = sum(int(r["hopped"]) for r in stats)
    channels = (
        hops.filter(hops.hopped == 1)
        .group_by(["touchpoint", "hop_channel"])
        .aggregate(people=hops.person_id.nunique())
        .to_pyarrow()
        .to_pylist()
    )
    by_tp: dict[str, list[tuple[int, str]]] = {}
    for r in channels:
        by_tp.setdefault(r["touchpoint"], []).append((int(r["people"]), r["hop_channel"]))
    out: dict[str, Signal] = {}
    known = model.by_id()
    for r in stats:
        tp = known[r["touchpoint"]]
        n, k = int(r["people"]), int(r["hopped"])
        others_n, others_h = n_all - n, h_all - k
        if n < min_people or others_n <= 0:
            continue
        rate, expected = k / n, others_h / others_n
        if rate <= expected:
            continue
        via = " or ".join(ch for _, ch in sorted(by_tp.get(tp.id, []), reverse=True)[:2])
        lift = (
            f"{rate / expected:.1f}x the rate after other touchpoints"
            if expected
            else "which no other touchpoint leads to"
        )
        text = (
            f"{rate:.0%} of customers who {_phrase(tp)} contact us by {via or 'phone'} "
            f"within {_span(within)} with nothing else tried in between, "
            f"{lift} ({expected:.0%})."
        )
        out[tp.id] = Signal(
            "effort", n, k, rate, expected, n * (rate - expected),
            two_proportion_p(k, n, others_h, others_n), text,
        )  # fmt: skip
    examples = _examples(hops, list(out))
    return out, examples


_FLOW_ENDINGS = (" Started", " Completed", " Failed")


def flows(model: TouchpointModel) -> dict[str, str]:
    """Touchpoint → the touchpoint standing for its flow.

    "Password Reset Started", "... Failed" and "... Completed" on one channel are one
    flow, reported under its start: a customer who fails and calls was let down by the
    password reset, not by the failure screen.
    """
    by_key = {(tp.event, tp.channel): tp.id for tp in model.touchpoints}
    out = {}
    for tp in model.touchpoints:
        lead = tp.id
        for ending in _FLOW_ENDINGS:
            if tp.event.endswith(ending):
                stem = tp.event[: -len(ending)]
                lead = by_key.get((stem + " Started", tp.channel), tp.id)
                break
        out[tp.id] = lead
    return out


def _last_before_contact(hops: ibis.Table) -> ibis.Table:
    """`hopped` = 1 where the event is the last digital touchpoint before the contact.

    Generic touchpoints (opening the app) precede almost everything; the last thing a
    customer tried before calling is the one that sent them to the phone.
    """
    order = ibis.window(group_by="person_id", order_by=["ts", "seq"])
    hops = hops.mutate(next_ts=hops.ts.lead().over(order))
    last = hops.hop_ts.notnull() & (hops.next_ts.isnull() | (hops.next_ts > hops.hop_ts))
    return hops.mutate(hopped=last.cast("int32"))


def _examples(hops: ibis.Table, touchpoints: list[str], per: int = 5) -> dict[str, list[str]]:
    if not touchpoints:
        return {}
    hit = hops.filter((hops.hopped == 1) & hops.touchpoint.isin(touchpoints))
    first = hit.group_by(["touchpoint", "person_id"]).aggregate(at=hit.hop_ts.max())
    ranked = first.mutate(
        nth=ibis.row_number().over(
            ibis.window(group_by="touchpoint", order_by=[ibis.desc("at"), "person_id"])
        )
    )
    rows = ranked.filter(ranked.nth < per).to_pyarrow().to_pylist()
    out: dict[str, list[str]] = {}
    for r in sorted(rows, key=lambda r: r["nth"]):
        out.setdefault(r["touchpoint"], []).append(r["person_id"])
    return out


def completion_pairs(model: TouchpointModel) -> list[tuple[Touchpoint, Touchpoint]]:
    """("X Started", "X Completed") touchpoint pairs on the same channel."""
    by_key = {(tp.event, tp.channel): tp for tp in model.touchpoints}
    pairs = []
    for tp in model.touchpoints:
        if tp.event.endswith(" Started"):
            done = by_key.get((tp.event[: -len("Started")] + "Completed", tp.channel))
            if done is not None:
                pairs.append((tp, done))
    return pairs


def _drop_off_signals(
    warehouse: Warehouse,
    model: TouchpointModel,
    window: timedelta,
    start_at: datetime | None,
    end_at: datetime | None,
    min_people: int,
) -> dict[str, Signal]:
    measured: dict[str, tuple[Touchpoint, int, int]] = {}
    for start, done in completion_pairs(model):
        query = FunnelQuery(
            steps=(FunnelStep(touchpoint=start.id), FunnelStep(touchpoint=done.id)),
            window=window,
            start_at=start_at,
            end_at=end_at,
        )
        rows = run_funnel(query, warehouse, model).overall()
        if rows[0].entered:
            measured[start.id] = (start, rows[0].entered, rows[1].entered)
    out: dict[str, Signal] = {}
    for tp_id, (tp, n, completed) in measured.items():
        peers = [
            (pn, pc)
            for other, (otp, pn, pc) in measured.items()
            if other != tp_id and otp.event == tp.event
        ]
        if n < min_people or not peers:
            continue
        peer_n, peer_dropped = sum(p[0] for p in peers), sum(p[0] - p[1] for p in peers)
        dropped = n - completed
        rate, expected = dropped / n, peer_dropped / peer_n
        if rate <= expected:
            continue
        stem = tp.event[: -len(" Started")].lower()
        text = (
            f"{rate:.0%} of {stem} attempts {_where(tp)} do not complete within {_span(window)}, "
            f"against {expected:.0%} on other channels."
        )
        out[tp_id] = Signal(
            "drop_off", n, dropped, rate, expected, n * (rate - expected),
            two_proportion_p(dropped, n, peer_dropped, peer_n), text,
        )  # fmt: skip
    return out


def _feedback_signals(
    warehouse: Warehouse,
    model: TouchpointModel,
    start_at: datetime | None,
    end_at: datetime | None,
    min_people: int,
) -> dict[str, Signal]:
    answers = warehouse.survey_answers()
    if start_at is not None:
        answers = answers.filter(answers.at >= start_at)
    if end_at is not None:
        answers = answers.filter(answers.at < end_at)
    kind, score = answers.survey_type, answers.score
    negative = ibis.cases(
        ((kind == "nps") & (score <= 6), 1),
        ((kind == "csat") & (score <= 2), 1),
        ((kind == "ces") & (score <= 3), 1),
        else_=0,
    )
    rows = answers.mutate(negative=negative)
    rows = rows.filter(rows.touchpoint.notnull() & rows.score.notnull())
    stats = (
        rows.group_by("touchpoint")
        .aggregate(n=rows.person_id.nunique(), neg=rows.negative.sum(), answers=rows.count())
        .to_pyarrow()
        .to_pylist()
    )
    total_answers = sum(int(r["answers"]) for r in stats)
    total_neg = sum(int(r["neg"]) for r in stats)
    known = model.by_id()
    out: dict[str, Signal] = {}
    for r in stats:
        tp = known.get(r["touchpoint"])
        answers_n, neg = int(r["answers"]), int(r["neg"])
        others_n, others_neg = total_answers - answers_n, total_neg - neg
        if tp is None or int(r["n"]) < min_people or others_n <= 0:
            continue
        rate, expected = neg / answers_n, others_neg / others_n
        if rate <= expected:
            continue
        text = (
            f"{rate:.0%} of survey answers about {tp.name} are negative, "
            f"against {expected:.0%} for other touchpoints."
        )
        out[tp.id] = Signal(
            "feedback", answers_n, neg, rate, expected, answers_n * (rate - expected),
            two_proportion_p(neg, answers_n, others_neg, others_n), text,
        )  # fmt: skip
    return out


def diagnose(
    warehouse: Warehouse,
    model: TouchpointModel,
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    within: timedelta | str = "48h",
    completion_window: timedelta | str = "1d",
    min_people: int = 30,
    limit: int = 20,
) -> list[Finding]:
    """Touchpoints ranked by harm (excess customers hurt), most harmful first."""
    start_at, end_at = utc(start_at), utc(end_at)
    within = parse_duration(within, field="within")
    completion_window = parse_duration(completion_window, field="completion_window")
    digital = TouchpointModel(
        touchpoints=tuple(tp for tp in model.touchpoints if tp.channel in DIGITAL_CHANNELS)
    )
    effort, examples = _effort_signals(warehouse, model, within, start_at, end_at, min_people)
    drops = _drop_off_signals(warehouse, digital, completion_window, start_at, end_at, min_people)
    feedback = _feedback_signals(warehouse, model, start_at, end_at, min_people)
    tested = max(1, len(model.touchpoints))
    known = model.by_id()
    findings = []
    for tp_id in dict.fromkeys([*effort, *drops, *feedback]):
        signals = tuple(s for s in (effort.get(tp_id), drops.get(tp_id), feedback.get(tp_id)) if s)
        corrected = [min(1.0, s.p_value * tested) for s in signals if s.p_value is not None]
        tp = known[tp_id]
        findings.append(
            Finding(
                touchpoint=tp_id,
                name=tp.name,
                channel=tp.channel,
                stage=tp.stage,
                harm=sum(s.excess for s in signals),
                customers_affected=max(s.affected for s in signals),
                confidence=1 - min(corrected) if corrected else 0.0,
                signals=tuple(sorted(signals, key=lambda s: -s.excess)),
                examples=tuple(examples.get(tp_id, ())),
            )
        )
    findings.sort(key=lambda f: (-f.harm, f.touchpoint))
    return findings[:limit]
