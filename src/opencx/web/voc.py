"""Pages of the voice of the customer: the hosted survey, the Cases queue, the VoC page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from opencx.errors import Conflict, InvalidInput, NotFound
from opencx.orchestrate.engine import survey_admission
from opencx.voc import (
    ROOT_CAUSES,
    STATUSES,
    Survey,
    get_case,
    get_survey,
    give_feedback,
    invitation_for_token,
    list_cases,
    list_surveys,
    loop_metrics,
    rank_negative_themes,
    record_answer,
    root_causes,
    save_survey,
    update_case,
)
from opencx.voc.reports import all_verbatims, response_rates, score_by, score_trend, verbatims
from opencx.voc.themes_store import save_themes, theme_views, themes_yaml
from opencx.web import _charts
from opencx.web.app import _acting, _page, _viewer, templates

router = APIRouter(include_in_schema=False)
_HEX = re.compile(r"#[0-9a-fA-F]{6}")


# -- the hosted survey page: no sign-in, the invitation token is the key -------------
def _survey_page(
    request: Request, token: str, *, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    con = request.app.state.opencx.store.cursor()
    inv = invitation_for_token(con, token)
    survey = get_survey(con, inv.survey_id)
    closed = None
    if inv.status == "answered":
        closed = "Thank you: this survey was already answered."
    elif inv.expires_at < datetime.now(UTC):
        closed = f"This survey link expired on {inv.expires_at:%d %B %Y}."
    return templates.TemplateResponse(
        request,
        "survey.html",
        {
            "survey": survey,
            "action": f"/s/{token}",
            "brand_css": f"/s/{token}/brand.css",
            "closed": closed,
            "values": {},
            **extra,
        },
        status_code=status_code,
    )


@router.get("/s/{token}")
def survey_form(request: Request, token: str) -> HTMLResponse:
    return _survey_page(request, token)


@router.get("/s/{token}/brand.css")
def survey_brand(request: Request, token: str) -> Response:
    con = request.app.state.opencx.store.cursor()
    return _brand_css(get_survey(con, invitation_for_token(con, token).survey_id))


def _brand_css(survey: Survey) -> Response:
    colour = survey.brand.colour if _HEX.fullmatch(survey.brand.colour) else "#2563eb"
    return PlainTextResponse(f":root {{ --brand: {colour}; }}\n", media_type="text/css")


@router.post("/s/{token}")
async def survey_submit(request: Request, token: str) -> HTMLResponse:
    state = request.app.state.opencx
    form = await request.form()
    answers: dict[str, Any] = {}
    for key in form:
        values = form.getlist(key)
        answers[key] = values if len(values) > 1 else values[0]
    con = state.store.cursor()
    survey = get_survey(con, invitation_for_token(con, token).survey_id)
    for q in survey.questions:
        if q.type == "multiple" and isinstance(answers.get(q.id), str):
            answers[q.id] = [answers[q.id]]
    try:
        record_answer(
            state.ingestor, token, answers, queue=state.settings.case_queue,
            sla_hours=state.settings.case_sla_hours,
        )  # fmt: skip
    except InvalidInput as exc:
        return _survey_page(request, token, error=exc.message, values=answers, status_code=400)
    except Conflict as exc:
        return _survey_page(request, token, error=exc.message, status_code=409)
    return templates.TemplateResponse(request, "survey_done.html", {"survey": survey})


# -- cases -----------------------------------------------------------------------
@router.get("/cases")
def cases_page(request: Request, status: str = "unresolved", mine: bool = False) -> HTMLResponse:
    viewer = _viewer(request, "agent")
    found = list_cases(viewer.con, status=status or None, owner=viewer.user.email if mine else None)
    return _page(
        request, viewer, "cases.html", cases=found, status=status, mine=mine,
        statuses=STATUSES, now=datetime.now(UTC), metrics=loop_metrics(viewer.con),
        causes=root_causes(viewer.con)[:8],
    )  # fmt: skip


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: str) -> HTMLResponse:
    viewer = _viewer(request, "agent")
    return _page(
        request, viewer, "case.html", case=get_case(viewer.con, case_id), statuses=STATUSES,
        root_causes=ROOT_CAUSES, now=datetime.now(UTC),
    )  # fmt: skip


@router.post("/cases/{case_id}")
def case_update(
    request: Request,
    case_id: str,
    csrf: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    owner: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    root_cause: Annotated[str, Form()] = "",
    follow_up: Annotated[str, Form()] = "",
    take: Annotated[str, Form()] = "",
) -> Response:
    viewer = _acting(request, "agent", csrf)
    update_case(
        viewer.state.ingestor, case_id, by=viewer.user.email, status=status or None,
        owner=viewer.user.email if take else (owner or None), note=note or None,
        root_cause=root_cause or None, follow_up=bool(follow_up),
        admit=survey_admission(viewer.state.store, purpose="service"),
    )  # fmt: skip
    return RedirectResponse(f"/cases/{case_id}", 303)


# -- the voice of the customer page -------------------------------------------------
@router.get("/voc")
def voc_page(
    request: Request, q: str = "", touchpoint: str = "", low: bool = False
) -> HTMLResponse:
    viewer = _viewer(request, "analyst")
    warehouse = viewer.state.warehouse()
    kpis = []
    for kind, unit in (("nps", ""), ("csat", "%"), ("ces", "")):
        trend = score_trend(warehouse, kind)  # type: ignore[arg-type]
        by_touchpoint = score_by(warehouse, kind, "touchpoint")  # type: ignore[arg-type]
        by_channel = score_by(warehouse, kind, "channel")  # type: ignore[arg-type]
        total = sum(p.responses for p in by_channel)
        if not total:
            continue
        overall = sum(p.value * p.responses for p in by_channel) / total
        kpis.append({
            "kind": kind, "overall": overall, "responses": total, "unit": unit,
            "trend": _charts.line_chart([(p.group, p.value) for p in trend], unit=unit),
            "by_touchpoint": _charts.bar_chart(
                [(p.group, p.value) for p in by_touchpoint[:10]], unit=unit, signed=True
            ),
            "by_channel": _charts.bar_chart(
                [(p.group, p.value) for p in by_channel], unit=unit, signed=True
            ),
        })  # fmt: skip
    views = theme_views(viewer.con, all_verbatims(warehouse, limit=3000), now=datetime.now(UTC))
    negative = rank_negative_themes([v.theme for v in views], top=5) if views else []
    shown = verbatims(
        warehouse, search=q or None, touchpoint=touchpoint or None,
        max_score=6 if low else None, limit=40,
    )  # fmt: skip
    return _page(
        request, viewer, "voc.html", kpis=kpis, rates=response_rates(warehouse),
        themes=views, negative=negative, verbatims=shown, q=q, touchpoint=touchpoint, low=low,
        surveys=list_surveys(viewer.con),
        themes_yaml=themes_yaml([v.theme for v in views]),
    )  # fmt: skip


@router.post("/voc/surveys")
def save_survey_form(
    request: Request, body: Annotated[str, Form()], csrf: Annotated[str, Form()] = ""
) -> Response:
    viewer = _acting(request, "analyst", csrf)
    save_survey(viewer.con, body, by=viewer.user.email)
    return RedirectResponse("/voc#surveys", 303)


@router.post("/voc/themes")
def save_themes_form(
    request: Request, body: Annotated[str, Form()], csrf: Annotated[str, Form()] = ""
) -> Response:
    viewer = _acting(request, "analyst", csrf)
    save_themes(viewer.con, body, by=viewer.user.email)
    return RedirectResponse("/voc#themes", 303)


# -- the always-open feedback link: never pushed, answered whenever a customer wants ----
def _feedback_survey(request: Request, survey_id: str) -> Survey:
    survey = get_survey(request.app.state.opencx.store.cursor(), survey_id)
    if survey.kind != "feedback":
        raise NotFound(f"{survey_id!r} is not an open feedback form")
    return survey


@router.get("/f/{survey_id}")
def feedback_form(request: Request, survey_id: str) -> HTMLResponse:
    survey = _feedback_survey(request, survey_id)
    return templates.TemplateResponse(
        request, "survey.html",
        {"survey": survey, "action": f"/f/{survey_id}", "closed": None, "values": {},
         "brand_css": f"/f/{survey_id}/brand.css", "ask_email": True},
    )  # fmt: skip


@router.get("/f/{survey_id}/brand.css")
def feedback_brand(request: Request, survey_id: str) -> Response:
    return _brand_css(_feedback_survey(request, survey_id))


@router.post("/f/{survey_id}")
async def feedback_submit(request: Request, survey_id: str) -> HTMLResponse:
    state = request.app.state.opencx
    survey = _feedback_survey(request, survey_id)
    form = await request.form()
    answers = {k: (v if len(v := form.getlist(k)) > 1 else v[0]) for k in form}
    email = str(answers.pop("email", "") or "").strip() or None
    try:
        give_feedback(state.ingestor, survey, answers, email=email)
    except InvalidInput as exc:
        return templates.TemplateResponse(
            request, "survey.html",
            {"survey": survey, "action": f"/f/{survey_id}", "closed": None, "values": answers,
             "error": exc.message, "brand_css": f"/f/{survey_id}/brand.css", "ask_email": True},
            status_code=400,
        )  # fmt: skip
    return templates.TemplateResponse(request, "survey_done.html", {"survey": survey})
