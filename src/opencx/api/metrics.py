"""Experience KPIs API (analysts): NPS, CSAT, CES with intervals, by group; alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from opencx.api.deps import AnalystDep, ConDep, WarehouseDep
from opencx.metrics import Alert, alerts, kpi
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
