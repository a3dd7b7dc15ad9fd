"""The Segments page: saved rules, their size over time, and how each segment feels."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from opencx.metrics import segment_summaries, write_effort_traits
from opencx.segments import (
    FEATURES,
    refresh_segments,
    save_segment,
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
    now = datetime.now(UTC)
    summaries = segment_summaries(
        viewer.con, viewer.state.warehouse(), now=now,
        contact_costs=viewer.state.settings.contact_costs,
    )  # fmt: skip
    rows = []
    for s in summaries:
        history = segment_size_history(viewer.con, s.segment.name)
        rows.append({
            "segment": s.segment, "size": s.size, "nps": s.nps, "value": s.value,
            "profit": s.profit, "refreshed": s.refreshed_at is not None,
            "trend": _charts.line_chart(
                [(f"{p.at:%m-%d %H:%M}", float(p.size)) for p in history], width=260
            ),
        })  # fmt: skip
    refreshed = max((s.refreshed_at for s in summaries if s.refreshed_at), default=None)
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
