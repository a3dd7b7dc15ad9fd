"""The Segments page: saved rules, their size over time, and how each segment feels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from opencx.metrics import clv_by_person, kpi, profitability, value_by_segment
from opencx.segments import (
    FEATURES,
    record_segment_sizes,
    save_segment,
    saved_memberships,
    saved_segments,
    segment_size_history,
)
from opencx.web import _charts
from opencx.web.app import _acting, _page, _viewer

router = APIRouter(include_in_schema=False)


@router.get("/segments")
def segments_page(request: Request) -> HTMLResponse:
    viewer = _viewer(request, "analyst")
    warehouse = viewer.state.warehouse()
    segments = saved_segments(viewer.con)
    now = datetime.now(UTC)
    rows = []
    if segments:
        sizes = record_segment_sizes(viewer.con, warehouse, now)
        members = saved_memberships(viewer.con, warehouse)
        nps = kpi(warehouse, "nps", start_at=None, end_at=None, by="segment", segments=members)
        by_name = {row.group: row for row in nps.groups}
        member_lists: dict[str, list[str]] = {}
        for r in members.to_pyarrow().to_pylist():
            member_lists.setdefault(r["segment"], []).append(r["person_id"])
        worth = {
            v.segment: v for v in value_by_segment(member_lists, clv_by_person(warehouse, now=now))
        }
        profit = {
            p.segment: p
            for p in profitability(
                warehouse, members, start_at=now - timedelta(days=365), end_at=None,
                contact_costs=viewer.state.settings.contact_costs,
            )
        }  # fmt: skip
        for s in segments:
            history = segment_size_history(viewer.con, s.name)
            rows.append({
                "segment": s, "size": sizes.get(s.name, 0), "nps": by_name.get(s.name),
                "value": worth.get(s.name), "profit": profit.get(s.name),
                "trend": _charts.line_chart(
                    [(f"{p.at:%m-%d %H:%M}", float(p.size)) for p in history], width=260
                ),
            })  # fmt: skip
    return _page(request, viewer, "segments.html", rows=rows, features=FEATURES)


@router.post("/segments")
def save_segment_form(
    request: Request,
    name: Annotated[str, Form()],
    rule: Annotated[str, Form()],
    description: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    viewer = _acting(request, "analyst", csrf)
    save_segment(
        viewer.con,
        {"name": name.strip(), "rule": rule, "description": description.strip()},
        warehouse=viewer.state.warehouse(),
        by=viewer.user.email,
    )
    return RedirectResponse("/segments", 303)
