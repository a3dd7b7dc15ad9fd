"""Designed journeys: "what should be" (stages, touchpoints, targets) against "what is".

A design is YAML:

    name: Buy a phone
    horizon: 30d                     # how long we wait for the next stage
    stages:
      - name: Consider
        touchpoints: [product_viewed@web, product_viewed@app]
        channels: [web, app]         # optional: the touchpoints' channels by default
        targets: {conversion: 0.3, time_to_next: 3d, effort: 0.05, csat: 4.0}

For each stage OpenCX measures the people who entered it (any of its touchpoints),
the share that went on to the next stage within the horizon and the median time it
took (a two-step funnel), the share who contacted us on an assisted channel within
48 h after one of its touchpoints (effort), survey answers tied to its touchpoints,
and the channels customers actually used, and flags every departure from the design.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import ibis
import ibis.expr.datatypes as dt
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from opencx.documents import parse_document
from opencx.durations import describe_seconds, format_duration
from opencx.errors import InvalidInput
from opencx.journeys._time import parse_duration, utc
from opencx.journeys.funnel import FunnelQuery, FunnelStep, run_funnel
from opencx.journeys.paths import hops_expression
from opencx.journeys.touchpoints import TouchpointModel
from opencx.types import CHANNELS
from opencx.warehouse import Warehouse

UNPLANNED_SHARE = 0.05


class StageTargets(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    conversion: float | None = Field(default=None, ge=0, le=1)
    time_to_next: timedelta | None = None
    effort: float | None = Field(default=None, ge=0, le=1)
    csat: float | None = Field(default=None, ge=1, le=5)
    nps: float | None = Field(default=None, ge=-100, le=100)

    @field_validator("time_to_next", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value, field="time_to_next") if isinstance(value, str) else value


class Stage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    touchpoints: tuple[str, ...] = Field(min_length=1)
    channels: tuple[str, ...] = ()
    targets: StageTargets = StageTargets()

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for channel in value:
            if channel not in CHANNELS:
                raise ValueError(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")
        return value


class JourneyDesign(BaseModel):
    """An intended journey, stage by stage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    horizon: timedelta = timedelta(days=30)
    stages: tuple[Stage, ...] = Field(min_length=1, max_length=12)

    @field_validator("horizon", mode="before")
    @classmethod
    def _horizon(cls, value: object) -> object:
        return parse_duration(value, field="horizon") if isinstance(value, str) else value

    def check_against(self, model: TouchpointModel) -> None:
        known = model.by_id()
        for stage in self.stages:
            missing = [tp for tp in stage.touchpoints if tp not in known]
            if missing:
                raise InvalidInput(
                    f"stage {stage.name!r} names unknown touchpoints: {', '.join(missing)}"
                )

    def planned_channels(self, stage: Stage, model: TouchpointModel) -> set[str]:
        if stage.channels:
            return set(stage.channels)
        known = model.by_id()
        return {c for tp in stage.touchpoints if (c := known[tp].channel) is not None}

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_defaults=True)
        data["horizon"] = format_duration(self.horizon)
        for stage, raw in zip(self.stages, data["stages"], strict=True):
            if stage.targets.time_to_next is not None:
                raw["targets"]["time_to_next"] = format_duration(stage.targets.time_to_next)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def parse_design(text: str) -> JourneyDesign:
    """A designed journey from YAML, with errors naming the stage and field."""
    return parse_document(
        JourneyDesign, text, "journey design", "a mapping with 'name' and 'stages'"
    )


@dataclass(frozen=True)
class StageActual:
    """One stage as customers lived it, beside its targets, with the departures flagged."""

    stage: Stage
    entered: int
    converted: int | None
    conversion: float | None
    median_to_next_s: float | None
    effort: float | None
    csat: float | None
    nps: float | None
    responses: int
    channels: dict[str, float]
    flags: tuple[str, ...]


def compare_design(
    design: JourneyDesign,
    warehouse: Warehouse,
    model: TouchpointModel,
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> list[StageActual]:
    """Each stage of the design against the log, with its flags."""
    design.check_against(model)
    start_at, end_at = utc(start_at), utc(end_at)
    stage_of = {tp: i for i, s in enumerate(design.stages) for tp in s.touchpoints}
    hops = hops_expression(warehouse, model, start_at=start_at, end_at=end_at)
    stage_col = ibis.cases(
        *((hops.touchpoint == tp, i) for tp, i in stage_of.items()), else_=ibis.null("int64")
    )
    hops = hops.mutate(stage=stage_col).filter(lambda t: t.stage.notnull())
    per_person = hops.group_by(["stage", "person_id"]).aggregate(
        hopped=hops.hop_ts.notnull().cast("int32").max()
    )
    effort_rows = (
        per_person.group_by("stage")
        .aggregate(n=per_person.count(), k=per_person.hopped.sum())
        .to_pyarrow()
        .to_pylist()
    )
    effort = {int(r["stage"]): (int(r["n"]), int(r["k"])) for r in effort_rows}
    usage = _channel_usage(warehouse, model, design, start_at, end_at, hops)
    answers = _answers(warehouse, stage_of, start_at, end_at)
    out = []
    for i, stage in enumerate(design.stages):
        steps = [FunnelStep(touchpoints=stage.touchpoints)]
        if i + 1 < len(design.stages):
            steps.append(FunnelStep(touchpoints=design.stages[i + 1].touchpoints))
        else:
            steps.append(FunnelStep(touchpoints=stage.touchpoints))
        rows = run_funnel(
            FunnelQuery(steps=steps, window=design.horizon, start_at=start_at, end_at=end_at),
            warehouse,
            model,
        ).overall()
        last = i + 1 == len(design.stages)
        entered = rows[0].entered
        converted = None if last else rows[1].entered
        n_e, k_e = effort.get(i, (0, 0))
        csat, nps, responses = answers.get(i, (None, None, 0))
        actual = StageActual(
            stage=stage,
            entered=entered,
            converted=converted,
            conversion=None if last or not entered else (converted or 0) / entered,
            median_to_next_s=None if last else rows[1].median_s,
            effort=k_e / n_e if n_e else None,
            csat=csat,
            nps=nps,
            responses=responses,
            channels=usage.get(i, {}),
            flags=(),
        )
        planned = design.planned_channels(stage, model)
        out.append(_flagged(actual, planned))
    return out


def _channel_usage(
    warehouse: Warehouse,
    model: TouchpointModel,
    design: JourneyDesign,
    start_at: datetime | None,
    end_at: datetime | None,
    hops: ibis.Table,
) -> dict[int, dict[str, float]]:
    """Share of each stage's people who used each channel: its touchpoints, plus contacts."""
    events = warehouse.events()
    if start_at is not None:
        events = events.filter(events.timestamp >= start_at)
    if end_at is not None:
        events = events.filter(events.timestamp < end_at)
    cases = []
    for i, stage in enumerate(design.stages):
        for tp in stage.touchpoints:
            cases.append((model.get(tp).matches(events), i))
    direct = events.mutate(stage=ibis.cases(*cases, else_=ibis.null("int64")))
    text, number = dt.String(nullable=True), dt.Int64(nullable=True)
    direct = direct.filter(direct.stage.notnull())
    direct = direct.select(
        stage=direct.stage.cast(number),
        person_id=direct.person_id.cast(text),
        channel=direct.channel.cast(text),
    )
    contacts = hops.filter(hops.hop_ts.notnull())
    contacts = contacts.select(
        stage=contacts.stage.cast(number),
        person_id=contacts.person_id.cast(text),
        channel=contacts.hop_channel.cast(text),
    )
    used = ibis.union(direct, contacts).distinct()
    people = used.group_by("stage").aggregate(total=used.person_id.nunique())
    per = used.group_by(["stage", "channel"]).aggregate(n=used.person_id.nunique())
    rows = per.join(people, "stage").to_pyarrow().to_pylist()
    out: dict[int, dict[str, float]] = {}
    for r in rows:
        out.setdefault(int(r["stage"]), {})[r["channel"]] = int(r["n"]) / int(r["total"])
    return {k: dict(sorted(v.items(), key=lambda kv: -kv[1])) for k, v in out.items()}


def _answers(
    warehouse: Warehouse,
    stage_of: dict[str, int],
    start_at: datetime | None,
    end_at: datetime | None,
) -> dict[int, tuple[float | None, float | None, int]]:
    answers = warehouse.survey_answers()
    if start_at is not None:
        answers = answers.filter(answers.at >= start_at)
    if end_at is not None:
        answers = answers.filter(answers.at < end_at)
    tp = answers.touchpoint
    stage = ibis.cases(*((tp == t, i) for t, i in stage_of.items()), else_=ibis.null("int64"))
    rows = answers.mutate(stage=stage, kind=answers.survey_type)
    rows = rows.filter(rows.stage.notnull() & rows.score.notnull())
    agg = (
        rows.group_by(["stage", "kind"])
        .aggregate(
            n=rows.count(),
            mean=rows.score.mean(),
            promoters=(rows.score >= 9).cast("int32").sum(),
            detractors=(rows.score <= 6).cast("int32").sum(),
        )
        .to_pyarrow()
        .to_pylist()
    )
    out: dict[int, tuple[float | None, float | None, int]] = {}
    for r in agg:
        i = int(r["stage"])
        csat, nps, n = out.get(i, (None, None, 0))
        if r["kind"] == "csat":
            csat = float(r["mean"])
        elif r["kind"] == "nps":
            nps = 100 * (int(r["promoters"]) - int(r["detractors"])) / int(r["n"])
        out[i] = (csat, nps, n + int(r["n"]))
    return out


def _flagged(actual: StageActual, planned: set[str]) -> StageActual:
    t = actual.stage.targets
    flags = []
    if t.conversion is not None and actual.conversion is not None and actual.entered:
        se = math.sqrt(t.conversion * (1 - t.conversion) / actual.entered) or 1e-9
        if (t.conversion - actual.conversion) / se > 1.96:
            flags.append(
                f"converts {actual.conversion:.0%} to the next stage, against a target "
                f"of {t.conversion:.0%}"
            )
    if t.time_to_next is not None and actual.median_to_next_s is not None:
        ratio = actual.median_to_next_s / t.time_to_next.total_seconds()
        if ratio >= 2:
            flags.append(
                f"takes {ratio:.1f}x longer than designed: median "
                f"{describe_seconds(actual.median_to_next_s)} against "
                f"{describe_seconds(t.time_to_next.total_seconds())}"
            )
    if t.effort is not None and actual.effort is not None and actual.effort > t.effort:
        flags.append(
            f"{actual.effort:.0%} contact us within 48 h, against a target of at most "
            f"{t.effort:.0%}"
        )
    if t.csat is not None and actual.csat is not None and actual.csat < t.csat:
        flags.append(f"CSAT {actual.csat:.2f} against a target of {t.csat:.2f}")
    if t.nps is not None and actual.nps is not None and actual.nps < t.nps:
        flags.append(f"NPS {actual.nps:.0f} against a target of {t.nps:.0f}")
    for channel, share in actual.channels.items():
        if channel not in planned and share >= UNPLANNED_SHARE:
            flags.append(
                f"{share:.0%} of customers in this stage use {channel}, "
                "which the design never planned for"
            )
    return StageActual(**{**actual.__dict__, "flags": tuple(flags)})
