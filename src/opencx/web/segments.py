"""The Segments page: saved rules, their size over time, and how each segment feels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from opencx.metrics import (
    clv_by_person,
    kpi,
    profitability,
    value_by_segment,
    write_effort_traits,
)
from opencx.segments import (
    FEATURES,
    refresh_segments,
    save_segment,
    saved_segments,
    segment_size_history,
)
from opencx.web import _charts
from opencx.web.app import Viewer, _acting, _page, _viewer

router = APIRouter(include_in_schema=False)


@router.get("/segments")
def segments_page(request: Request) -> HTMLResponse:
    """Saved segments as last refreshed (the server's schedule, or the button on the page):
    reading the page does not recompute them."""
    viewer = _viewer(request, "analyst")
    warehouse = viewer.state.warehouse()
    segments = saved_segments(viewer.con)
    now = datetime.now(UTC)
    rows = []
    refreshed = None
    if segments:
        member_lists: dict[str, list[str]] = {}
        for segment, person, at in viewer.con.execute(
            "SELECT segment, person_id, refreshed_at FROM segment_members"
        ).fetchall():
            member_lists.setdefault(segment, []).append(person)
            refreshed = at if refreshed is None or at > refreshed else refreshed
        nps = kpi(warehouse, "nps", start_at=None, end_at=None, by="segment", segments=member_lists)
        by_name = {row.group: row for row in nps.groups}
        worth = {
            v.segment: v for v in value_by_segment(member_lists, clv_by_person(warehouse, now=now))
        }
        profit = {
            p.segment: p
            for p in profitability(
                warehouse, member_lists, start_at=now - timedelta(days=365), end_at=None,
                contact_costs=viewer.state.settings.contact_costs,
            )
        }  # fmt: skip
        for s in segments:
            history = segment_size_history(viewer.con, s.name)
            rows.append({
                "segment": s, "size": len(member_lists.get(s.name, ())),
                "nps": by_name.get(s.name), "value": worth.get(s.name),
                "profit": profit.get(s.name), "refreshed": bool(history),
                "trend": _charts.line_chart(
                    [(f"{p.at:%m-%d %H:%M}", float(p.size)) for p in history], width=260
                ),
            })  # fmt: skip
    return _page(
        request, viewer, "segments.html", rows=rows, features=FEATURES, refreshed=refreshed,
        now=now,
    )  # fmt: skip


def _refresh(viewer: Viewer) -> None:
    refresh_segments(
        viewer.con, viewer.state.warehouse(), datetime.now(UTC), traits=[write_effort_traits]
    )


@router.post("/segments/refresh")
def refresh_form(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    _refresh(_acting(request, "analyst", csrf))
    return RedirectResponse("/segments", 303)


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
    _refresh(viewer)  # its members and first size now, not at the next scheduled refresh
    return RedirectResponse("/segments", 303)
