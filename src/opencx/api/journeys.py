"""Journey analytics API (analysts): funnels, paths, transitions, cohorts, diagnostics, designs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from opencx.api.deps import AdminDep, AnalystDep, ConDep, WarehouseDep
from opencx.journeys import (
    ChannelHop,
    Cohort,
    Finding,
    FunnelComparison,
    FunnelQuery,
    FunnelResult,
    FunnelStep,
    PathCount,
    PathQuery,
    Sankey,
    StageActual,
    Transition,
    channel_hops,
    compare_design,
    compare_funnels,
    diagnose,
    journey_design,
    journey_designs,
    next_touchpoints,
    retention_cohorts,
    run_funnel,
    sankey,
    save_journey_design,
    save_touchpoint_model,
    top_paths,
    touchpoint_model,
    transitions,
)
from opencx.journeys.cohorts import Grain

router = APIRouter(prefix="/api/v1/journeys", tags=["journeys"])

From = Annotated[datetime | None, Query(alias="from", description="Start (ISO 8601, UTC).")]
To = Annotated[datetime | None, Query(alias="to", description="End, exclusive.")]
YamlBody = Annotated[str, Body(media_type="application/yaml", description="The YAML document.")]


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None


class FunnelRequest(BaseModel):
    """A funnel: steps in order, the window, which step-1 event starts it, a breakdown."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    steps: list[FunnelStep]
    window: str = Field(default="7d", description="Conversion window, e.g. 7d or 48h.")
    start: Literal["first", "any"] = Field(
        default="first",
        description="first: each person's first step-1 event starts their one attempt "
        "(Mixpanel/Amplitude). any: every step-1 event starts an attempt and the deepest "
        "counts (ClickHouse windowFunnel).",
    )
    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None
    by: str | None = Field(default=None, description="channel, property:NAME or trait:NAME")
    exclude: FunnelStep | None = None
    compare_to: Period | None = Field(
        default=None, description="Another period: the answer then compares the two."
    )

    def query(self) -> FunnelQuery:
        return FunnelQuery(
            steps=tuple(self.steps),
            window=self.window,  # type: ignore[arg-type]
            start=self.start,
            start_at=self.from_,
            end_at=self.to,
            by=self.by,
            exclude=self.exclude,
        )


@dataclass(frozen=True)
class FunnelAnswer:
    result: FunnelResult
    comparison: FunnelComparison | None


@router.post("/funnel", response_model=FunnelAnswer, summary="Run a funnel")
def funnel(
    body: FunnelRequest, _: AnalystDep, con: ConDep, warehouse: WarehouseDep
) -> FunnelAnswer:
    query = body.query()
    model = touchpoint_model(con, warehouse)
    result = run_funnel(query, warehouse, model)
    comparison = None
    if body.compare_to is not None:
        periods = [(body.compare_to.from_, body.compare_to.to), (body.from_, body.to)]
        comparison = compare_funnels(query, warehouse, periods, model)
    return FunnelAnswer(result, comparison)


@router.get("/paths", response_model=list[PathCount], summary="Top paths from or to a touchpoint")
def paths(
    _: AnalystDep,
    con: ConDep,
    warehouse: WarehouseDep,
    start_at: From = None,
    end_at: To = None,
    touchpoint: str | None = None,
    direction: Literal["after", "before"] = "after",
    depth: Annotated[int, Query(ge=1, le=8)] = 3,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    collapse: bool = True,
) -> list[PathCount]:
    query = PathQuery(
        start_at=start_at, end_at=end_at, touchpoint=touchpoint, direction=direction,
        depth=depth, limit=limit, collapse_repeats=collapse,
    )  # fmt: skip
    return top_paths(query, warehouse, touchpoint_model(con, warehouse))


@dataclass(frozen=True)
class TransitionsAnswer:
    transitions: list[Transition]
    sankey: Sankey
    hops: list[ChannelHop]


@router.get(
    "/transitions", response_model=TransitionsAnswer, summary="Touchpoint transitions (Sankey)"
)
def transitions_(
    _: AnalystDep,
    con: ConDep,
    warehouse: WarehouseDep,
    start_at: From = None,
    end_at: To = None,
    touchpoint: str | None = Query(default=None, description="Only next/previous of this one."),
    direction: Literal["after", "before"] = "after",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    collapse: bool = True,
    within: str = Query(default="48h", description="Cross-channel hop window."),
) -> TransitionsAnswer:
    model = touchpoint_model(con, warehouse)
    query = PathQuery(
        start_at=start_at, end_at=end_at, touchpoint=touchpoint, direction=direction,
        limit=limit, collapse_repeats=collapse,
    )  # fmt: skip
    flows = (
        next_touchpoints(query, warehouse, model)
        if touchpoint
        else transitions(query, warehouse, model)[:limit]
    )
    hops = channel_hops(warehouse, model, within=within, start_at=start_at, end_at=end_at)
    return TransitionsAnswer(flows, sankey(flows), hops)


@router.get("/cohorts", response_model=list[Cohort], summary="Retention cohorts")
def cohorts(
    _: AnalystDep,
    warehouse: WarehouseDep,
    grain: Grain = "week",
    start_at: From = None,
    end_at: To = None,
    channel: Annotated[list[str] | None, Query()] = None,
) -> list[Cohort]:
    return retention_cohorts(warehouse, grain, start_at=start_at, end_at=end_at, channels=channel)


@router.get(
    "/diagnostics", response_model=list[Finding], summary="What is broken, and where (ranked)"
)
def diagnostics(
    _: AnalystDep,
    con: ConDep,
    warehouse: WarehouseDep,
    start_at: From = None,
    end_at: To = None,
    within: str = "48h",
    min_people: Annotated[int, Query(ge=1)] = 30,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[Finding]:
    return diagnose(
        warehouse,
        touchpoint_model(con, warehouse),
        start_at=start_at,
        end_at=end_at,
        within=within,
        min_people=min_people,
        limit=limit,
    )


@router.get(
    "/touchpoints",
    response_class=PlainTextResponse,
    summary="The touchpoint model (YAML; inferred from the log until one is saved)",
)
def get_touchpoints(_: AnalystDep, con: ConDep, warehouse: WarehouseDep) -> str:
    return touchpoint_model(con, warehouse).to_yaml()


@router.put("/touchpoints", response_class=PlainTextResponse, summary="Replace the model")
def put_touchpoints(body: YamlBody, token: AdminDep, con: ConDep) -> str:
    return save_touchpoint_model(con, body, by=f"token:{token.name}").to_yaml()


@router.get("/designs", summary="Designed journeys")
def designs(_: AnalystDep, con: ConDep) -> list[dict[str, object]]:
    return [d.model_dump(mode="json") for d in journey_designs(con)]


@router.put("/designs", summary="Create or replace a designed journey (YAML)")
def put_design(
    body: YamlBody, token: AnalystDep, con: ConDep, warehouse: WarehouseDep
) -> dict[str, object]:
    model = touchpoint_model(con, warehouse)
    design = save_journey_design(con, body, model, by=f"token:{token.name}")
    return design.model_dump(mode="json")


@router.get(
    "/designs/{name}/actual",
    response_model=list[StageActual],
    summary="A designed journey against what customers did, stage by stage",
)
def design_actual(
    name: str,
    _: AnalystDep,
    con: ConDep,
    warehouse: WarehouseDep,
    start_at: From = None,
    end_at: To = None,
) -> list[StageActual]:
    model = touchpoint_model(con, warehouse)
    return compare_design(
        journey_design(con, name), warehouse, model, start_at=start_at, end_at=end_at
    )
