"""Consistency across touchpoints: the same journey stage, one KPI, compared channel by channel.

Customers expect the same experience however they connect. Each answer belongs to the
touchpoint it measured (`properties.touchpoint`), so to that touchpoint's journey
`stage` and `channel` in the touchpoint model (a touchpoint without a channel takes the
answer's own channel; answers about no touchpoint of the model, such as relationship
NPS, are left out). Per stage and channel the KPI gets its value and interval
(`opencx.metrics.stats`); the **spread** of a stage is the best minus the worst channel
among those with at least `min_n` answers.

A channel **lags** when it is worse than the pooled answers of the stage's other
channels beyond noise: each channel with at least `min_n` answers (against at least
`min_n` on the others) is tested against the rest with the KPI's difference test
(z-test on the multinomial variances for NPS, two-proportion for CSAT, Welch's t for
CES); the p-values of one KPI are Holm-corrected over every channel tested, and a fall
with a corrected p below `alpha` is flagged with a sentence, e.g. "CSAT for service in
chat is 61% vs 78% on the other channels (p < 0.001, 412 answers)".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from opencx.documents import describe_errors
from opencx.errors import InvalidInput
from opencx.journeys import STAGES, TouchpointModel
from opencx.metrics._answers import (
    NO_GROUP,
    between,
    check_period,
    scored_answers,
    stats_by,
    stats_from_row,
    total,
    utc,
)
from opencx.metrics.drivers import holm
from opencx.metrics.stats import (
    KINDS,
    AnswerStats,
    Difference,
    KpiKind,
    check_kind,
    difference,
    estimate,
)
from opencx.warehouse import Warehouse

LABELS = {"nps": "NPS", "csat": "CSAT", "ces": "CES"}


class ConsistencyQuery(BaseModel):
    """Which KPIs, over which answers [start_at, end_at), and how strict the flags are."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kinds: tuple[KpiKind, ...] = KINDS
    start_at: datetime | None = None
    end_at: datetime | None = None
    min_n: int = Field(default=30, ge=2, description="Answers a channel needs to be compared.")
    alpha: float = Field(default=0.05, gt=0, lt=1, description="Holm-corrected threshold.")
    confidence: float = Field(default=0.95, gt=0, lt=1)

    @field_validator("start_at", "end_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return utc(value)

    @field_validator("kinds")
    @classmethod
    def _some(cls, value: tuple[KpiKind, ...]) -> tuple[KpiKind, ...]:
        if not value:
            raise ValueError("name at least one of nps, csat or ces")
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _check(self) -> ConsistencyQuery:
        check_period(self.start_at, self.end_at)
        return self


@dataclass(frozen=True)
class ChannelKpi:
    """One channel's KPI within a stage: value, answers, interval (None below 2 answers)."""

    channel: str
    value: float
    n: int
    low: float | None
    high: float | None
    stats: AnswerStats


@dataclass(frozen=True)
class ChannelGap:
    """A channel against the pooled other channels of its stage (`difference` = channel −
    rest), its Holm-corrected p-value, and whether it is flagged as lagging."""

    kind: KpiKind
    stage: str
    channel: str
    difference: Difference
    p_adjusted: float
    lags: bool
    message: str


@dataclass(frozen=True)
class StageConsistency:
    """One KPI in one stage: every channel, the spread, and each channel's test."""

    kind: KpiKind
    stage: str
    channels: tuple[ChannelKpi, ...]
    spread: float | None  # best − worst among channels with at least min_n answers
    gaps: tuple[ChannelGap, ...]

    @property
    def flags(self) -> tuple[ChannelGap, ...]:
        return tuple(g for g in self.gaps if g.lags)


@dataclass(frozen=True)
class ConsistencyResult:
    query: ConsistencyQuery
    stages: tuple[StageConsistency, ...]  # by KPI, then in journey order

    @property
    def flags(self) -> tuple[ChannelGap, ...]:
        """Every lagging channel, most certain first."""
        found = [g for s in self.stages for g in s.gaps if g.lags]
        return tuple(sorted(found, key=lambda g: (g.p_adjusted, g.kind, g.stage, g.channel)))


def consistency_expression(
    query: ConsistencyQuery, warehouse: Warehouse, model: TouchpointModel
) -> ir.Table:
    """The sums behind each KPI per kind, stage and channel (n, promoters, detractors,
    satisfied, total, total_sq), as one Ibis aggregate."""
    answers = between(scored_answers(warehouse, query.kinds), query.start_at, query.end_at)
    tp, own = answers.touchpoint, answers.channel.fill_null(NO_GROUP)
    stage = _by_touchpoint(tp, [(t.id, ibis.literal(t.stage)) for t in model.touchpoints])
    channel = _by_touchpoint(
        tp, [(t.id, ibis.literal(t.channel) if t.channel else own) for t in model.touchpoints]
    )
    labelled = answers.mutate(stage=stage, channel_of=channel)
    labelled = labelled.filter(labelled.stage.notnull())
    return stats_by(labelled, ["kind", "stage", "channel_of"])


def _by_touchpoint(tp: ir.StringValue, values: list[tuple[str, ir.Value]]) -> ir.Value:
    """The value of the answer's touchpoint (NULL for a touchpoint not in the list)."""
    nothing = ibis.null("string")
    return ibis.cases(*((tp == key, v) for key, v in values), else_=nothing) if values else nothing


def run_consistency(
    query: ConsistencyQuery, warehouse: Warehouse, model: TouchpointModel
) -> ConsistencyResult:
    """Execute the expression and test every channel against the rest of its stage."""
    rows = consistency_expression(query, warehouse, model).to_pyarrow().to_pylist()
    sums: dict[tuple[str, str], dict[str, AnswerStats]] = {}
    for r in rows:
        sums.setdefault((r["kind"], r["stage"]), {})[str(r["channel_of"])] = stats_from_row(r)
    order = {s: i for i, s in enumerate(STAGES)}
    stages: list[StageConsistency] = []
    for kind in query.kinds:
        keys = sorted((k for k in sums if k[0] == kind), key=lambda k: (order.get(k[1], 99), k[1]))
        tested = [(k[1], _tests(query, kind, sums[k])) for k in keys]
        adjusted = iter(holm([d.p_value for _, tests in tested for _, d in tests]))
        for (kind_, stage), (_, tests) in zip(keys, tested, strict=True):
            gaps = []
            for channel, diff in tests:
                p_adj = next(adjusted)
                lags = diff.difference < 0 and p_adj < query.alpha
                gaps.append(
                    ChannelGap(kind, stage, channel, diff, p_adj, lags,
                               describe_gap(kind, stage, channel, diff, p_adj))
                )  # fmt: skip
            stages.append(_stage(query, kind, stage, sums[(kind_, stage)], gaps))
    return ConsistencyResult(query, tuple(stages))


def _tests(
    query: ConsistencyQuery, kind: str, channels: dict[str, AnswerStats]
) -> list[tuple[str, Difference]]:
    """Each channel with enough answers against the pooled others (also with enough)."""
    whole = total(channels.values())
    out = []
    for channel in sorted(channels):
        mine = channels[channel]
        rest = AnswerStats(
            whole.n - mine.n,
            whole.promoters - mine.promoters,
            whole.detractors - mine.detractors,
            whole.satisfied - mine.satisfied,
            whole.total - mine.total,
            whole.total_sq - mine.total_sq,
        )
        if mine.n >= query.min_n and rest.n >= query.min_n:
            out.append((channel, difference(kind, rest, mine, query.confidence)))
    return out


def _stage(
    query: ConsistencyQuery,
    kind: KpiKind,
    stage: str,
    channels: dict[str, AnswerStats],
    gaps: list[ChannelGap],
) -> StageConsistency:
    rows = []
    for channel, s in sorted(channels.items(), key=lambda item: (-item[1].n, item[0])):
        e = estimate(kind, s, query.confidence)
        rows.append(ChannelKpi(channel, e.value, e.n, e.low, e.high, s))
    compared = [r.value for r in rows if r.n >= query.min_n]
    spread = max(compared) - min(compared) if len(compared) >= 2 else None
    return StageConsistency(kind, stage, tuple(rows), spread, tuple(gaps))


def channel_consistency(
    warehouse: Warehouse,
    model: TouchpointModel,
    *,
    kinds: Sequence[str] = KINDS,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    min_n: int = 30,
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> ConsistencyResult:
    """Each KPI per journey stage and channel, the spread between channels, and the
    channels that lag the rest of their stage beyond noise.

    For example `channel_consistency(wh, model, kinds=["ces"]).flags[0].message` could read
    "CES for service in app is 2.1 vs 5.6 on the other channels (p < 0.001, 325 answers)".
    """
    try:
        query = ConsistencyQuery(
            kinds=tuple(check_kind(k) for k in kinds),
            start_at=start_at,
            end_at=end_at,
            min_n=min_n,
            alpha=alpha,
            confidence=confidence,
        )
    except ValidationError as exc:
        raise InvalidInput(f"consistency query is not valid: {describe_errors(exc)}") from None
    return run_consistency(query, warehouse, model)


def describe_gap(kind: str, stage: str, channel: str, diff: Difference, p_adjusted: float) -> str:
    """The sentence of a channel against the rest of its stage.

    >>> from opencx.metrics.stats import AnswerStats, csat_difference
    >>> d = csat_difference(AnswerStats(n=900, satisfied=702), AnswerStats(n=412, satisfied=251))
    >>> describe_gap("csat", "service", "chat", d, 1e-9)
    'CSAT for service in chat is 61% vs 78% on the other channels (p < 0.001, 412 answers)'
    """
    decimals = 1 if kind == "ces" else 0
    unit = "%" if kind == "csat" else ""
    p = "p < 0.001" if p_adjusted < 0.001 else f"p = {p_adjusted:.3f}"
    return (
        f"{LABELS[kind]} for {stage} in {channel} is {_number(diff.after.value, decimals)}{unit} "
        f"vs {_number(diff.before.value, decimals)}{unit} on the other channels "
        f"({p}, {diff.after.n:,} answers)"
    )


def _number(value: float, decimals: int) -> str:
    text = f"{abs(value):,.{decimals}f}"
    return "−" + text if value < 0 and float(text.replace(",", "")) != 0 else text
