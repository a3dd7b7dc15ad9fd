"""Experience KPIs API (analysts): NPS, CSAT, CES with intervals, by group; alerts; consistency
of each journey stage across channels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from opencx.api.deps import AnalystDep, ConDep, WarehouseDep
from opencx.journeys import touchpoint_model
from opencx.metrics import KINDS, Alert, ChannelGap, alerts, channel_consistency, kpi
from opencx.segments import saved_memberships

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])


@dataclass(frozen=True)
class KpiGroup:
    group: str
    value: float
    responses: int
    low: float | None
    high: float | None


@dataclass(frozen=True)
class KpiAnswer:
    kpi: str
    by: str | None
    overall: KpiGroup | None
    groups: list[KpiGroup]


@router.get("/alerts", response_model=list[Alert], summary="KPIs that moved beyond noise")
def kpi_alerts(
    _: AnalystDep,
    warehouse: WarehouseDep,
    current: str = Query(default="7d", description="The recent period, e.g. 7d."),
    baseline: str = Query(default="8w", description="The period before it to compare with."),
) -> list[Alert]:
    return alerts(warehouse, now=datetime.now(UTC), current=current, baseline=baseline)


@dataclass(frozen=True)
class ConsistencyChannel:
    channel: str
    value: float
    responses: int
    low: float | None
    high: float | None


@dataclass(frozen=True)
class ConsistencyFlag:
    kpi: str
    stage: str
    channel: str
    value: float
    others: float
    """The KPI of the stage's other channels pooled."""
    difference: float
    low: float
    high: float
    p_value: float
    p_adjusted: float
    """Holm-corrected over every channel tested for this KPI."""
    responses: int
    message: str


@dataclass(frozen=True)
class ConsistencyStage:
    kpi: str
    stage: str
    spread: float | None
    channels: list[ConsistencyChannel]
    lagging: list[ConsistencyFlag]


@dataclass(frozen=True)
class ConsistencyAnswer:
    stages: list[ConsistencyStage]
    flags: list[ConsistencyFlag]
    """Every lagging channel, most certain first."""


@router.get(
    "/consistency",
    response_model=ConsistencyAnswer,
    summary="Each journey stage's KPI by channel; channels lagging the rest beyond noise",
)
def consistency(
    _: AnalystDep,
    con: ConDep,
    warehouse: WarehouseDep,
    kind: Annotated[
        Literal["nps", "csat", "ces"] | None, Query(description="One KPI; all three if left out.")
    ] = None,
    start_at: Annotated[datetime | None, Query(alias="from")] = None,
    end_at: Annotated[datetime | None, Query(alias="to")] = None,
    min_n: Annotated[int, Query(ge=2, description="Answers a channel needs to be compared.")] = 30,
) -> ConsistencyAnswer:
    result = channel_consistency(
        warehouse, touchpoint_model(con, warehouse), kinds=[kind] if kind else KINDS,
        start_at=start_at, end_at=end_at, min_n=min_n,
    )  # fmt: skip

    def flag(g: ChannelGap) -> ConsistencyFlag:
        d = g.difference
        return ConsistencyFlag(
            g.kind, g.stage, g.channel, d.after.value, d.before.value, d.difference, d.low,
            d.high, d.p_value, g.p_adjusted, d.after.n, g.message,
        )  # fmt: skip

    stages = [
        ConsistencyStage(
            s.kind,
            s.stage,
            s.spread,
            [ConsistencyChannel(c.channel, c.value, c.n, c.low, c.high) for c in s.channels],
            [flag(g) for g in s.flags],
        )
        for s in result.stages
    ]
    return ConsistencyAnswer(stages, [flag(g) for g in result.flags])


@router.get("/{name}", response_model=KpiAnswer, summary="NPS, CSAT or CES with 95% intervals")
def metric(
    name: Literal["nps", "csat", "ces"],
    _: AnalystDep,
    con: ConDep,
    warehouse: WarehouseDep,
    start_at: Annotated[datetime | None, Query(alias="from")] = None,
    end_at: Annotated[datetime | None, Query(alias="to")] = None,
    by: Annotated[
        str | None,
        Query(description="channel, touchpoint, survey_id, segment (saved ones) or trait:NAME"),
    ] = None,
) -> KpiAnswer:
    result = kpi(
        warehouse, name, start_at=start_at, end_at=end_at, by=by,
        segments=saved_memberships(con, warehouse) if by == "segment" else None,
    )  # fmt: skip

    def public(row: object) -> KpiGroup:
        return KpiGroup(row.group, row.value, row.n, row.low, row.high)  # type: ignore[attr-defined]

    return KpiAnswer(
        name,
        by,
        public(result.overall) if result.overall else None,
        [public(r) for r in result.groups],
    )
