"""The Journeys page: what is broken, a funnel builder, transitions, design against reality."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from opencx.durations import describe_seconds
from opencx.errors import OpenCXError
from opencx.journeys import (
    STAGES,
    FunnelQuery,
    PathQuery,
    TouchpointModel,
    channel_hops,
    compare_design,
    diagnose,
    journey_designs,
    parse_step,
    run_funnel,
    sankey,
    save_journey_design,
    save_touchpoint_model,
    touchpoint_model,
    transitions,
)
from opencx.warehouse import Warehouse
from opencx.web import _charts
from opencx.web.app import Viewer, _acting, _page, _viewer, templates

templates.env.filters["span"] = describe_seconds

router = APIRouter(include_in_schema=False)
MAX_STEPS = 6
WINDOWS = ("1h", "1d", "2d", "7d", "14d", "30d")
BREAKDOWNS = ("", "channel")


def _model(viewer: Viewer) -> tuple[Warehouse, TouchpointModel]:
    warehouse = viewer.state.warehouse()
    return warehouse, touchpoint_model(viewer.con, warehouse)


@router.get("/journeys")
def journeys_page(
    request: Request,
    step: Annotated[list[str] | None, Query()] = None,
    window: str = "7d",
    start: str = "first",
    by: str = "",
    error: str | None = None,
) -> HTMLResponse:
    viewer = _viewer(request, "analyst")
    warehouse, model = _model(viewer)
    steps = [s.strip() for s in (step or []) if s.strip()]
    result = chart = problem = None
    if len(steps) >= 2:
        try:
            query = FunnelQuery(
                steps=tuple(parse_step(s) for s in steps),
                window=window,  # type: ignore[arg-type]
                start=start,  # type: ignore[arg-type]
                by=by or None,
            )
            result = run_funnel(query, warehouse, model)
            chart = _charts.bar_chart(
                [(f"{r.step}. {r.label}", r.entered) for r in result.overall()], width=720
            )
        except (OpenCXError, ValueError) as exc:
            problem = getattr(exc, "message", None) or str(exc).splitlines()[-1]
    elif steps:
        problem = "A funnel needs at least two steps."
    events = sorted({tp.event for tp in model.touchpoints})
    return _page(
        request,
        viewer,
        "journeys.html",
        steps=steps + [""] * (MAX_STEPS - len(steps)),
        window=window,
        start=start,
        by=by,
        windows=WINDOWS,
        breakdowns=BREAKDOWNS,
        suggestions=[*events, *(f"tp:{tp.id}" for tp in model.touchpoints)],
        result=result,
        chart=chart,
        problem=problem,
        error=error,
        model_yaml=model.to_yaml(),
        stages=STAGES,
    )


@router.get("/journeys/diagnostics")
def diagnostics_fragment(request: Request) -> HTMLResponse:
    viewer = _viewer(request, "analyst")
    warehouse, model = _model(viewer)
    findings = diagnose(warehouse, model, limit=10)
    top = max((f.harm for f in findings), default=1.0) or 1.0
    return _page(request, viewer, "_diagnostics.html", findings=findings, top=top)


@router.get("/journeys/flows")
def flows_fragment(request: Request) -> HTMLResponse:
    viewer = _viewer(request, "analyst")
    warehouse, model = _model(viewer)
    flows = transitions(PathQuery(), warehouse, model)
    graph = sankey(flows, top=24)
    hops = channel_hops(warehouse, model)
    return _page(
        request,
        viewer,
        "_flows.html",
        chart=_charts.sankey_chart(graph.nodes, graph.links),
        hops=hops[:8],
    )


@router.get("/journeys/designs")
def designs_fragment(request: Request) -> HTMLResponse:
    viewer = _viewer(request, "analyst")
    warehouse, model = _model(viewer)
    compared = [
        (design, compare_design(design, warehouse, model)) for design in journey_designs(viewer.con)
    ]
    return _page(request, viewer, "_designs.html", compared=compared)


@router.post("/journeys/designs")
def save_design(
    request: Request, body: Annotated[str, Form()], csrf: Annotated[str, Form()] = ""
) -> Response:
    viewer = _acting(request, "analyst", csrf)
    _, model = _model(viewer)
    save_journey_design(viewer.con, body, model, by=viewer.user.email)
    return RedirectResponse("/journeys#designs", 303)


@router.post("/journeys/touchpoints")
def save_touchpoints(
    request: Request, body: Annotated[str, Form()], csrf: Annotated[str, Form()] = ""
) -> Response:
    viewer = _acting(request, "admin", csrf)
    save_touchpoint_model(viewer.con, body, by=viewer.user.email)
    return RedirectResponse("/journeys#touchpoints", 303)
