"""The web app for people: sign-in, overview, customers and the customer-360 page, settings.

Server-rendered with Jinja2, htmx for the interactive parts (infinite timeline,
filters). Every page but sign-in needs a session; every form carries the session's
CSRF token; roles gate pages (agents: customers; analysts: also analytics; admins:
also settings). Pages call library functions and render what they return.
"""

from __future__ import annotations

import hmac
import secrets
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import duckdb
from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from opencx import access
from opencx.config import Settings
from opencx.errors import InvalidInput, NotFound, OpenCXError
from opencx.ingest import replay_failed
from opencx.journeys import touchpoint_model
from opencx.metrics import (
    ChannelGap,
    Driver,
    DriverResult,
    EffortSummary,
    SegmentSummary,
    alerts,
    channel_consistency,
    effort_summary,
    key_drivers,
    kpi,
    segment_summaries,
)
from opencx.orchestrate.decisions import decisions_of
from opencx.orchestrate.engine import recommend
from opencx.profiles import (
    canonical_id,
    get_profile,
    log_overview,
    recent_activity,
    search_profiles,
    timeline,
)
from opencx.types import CHANNELS, EVENT_TYPES
from opencx.voc import list_cases
from opencx.voc.reports import answers_of, score_trend
from opencx.web import _charts, _format

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(
    ago=_format.ago, when=_format.when, describe=_format.describe, icon=_format.icon
)
templates.env.globals["action"] = _format.action
router = APIRouter(include_in_schema=False)

SESSION_COOKIE = "ocx_session"
PRE_CSRF_COOKIE = "ocx_login_csrf"
_RANK = {"agent": 1, "analyst": 2, "admin": 3}
NAV = (
    ("Overview", "/", "analyst"),
    ("Customers", "/customers", "agent"),
    ("Journeys", "/journeys", "analyst"),
    ("Voice of the customer", "/voc", "analyst"),
    ("Cases", "/cases", "agent"),
    ("Segments", "/segments", "analyst"),
    ("Contact policy", "/policy", "analyst"),
    ("Settings", "/settings", "admin"),
)


class SignInRequired(Exception):
    """Raised by pages when nobody is signed in: answered with a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class NotAllowed(Exception):
    """Raised when the signed-in user's role may not see a page."""

    def __init__(self, role: str) -> None:
        self.role = role


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the user, their session's CSRF token, and their connection."""

    user: access.User
    csrf: str
    con: duckdb.DuckDBPyConnection
    state: Any

    def may(self, role: str) -> bool:
        return _RANK.get(self.user.role, 0) >= _RANK[role]


def _viewer(request: Request, role: str) -> Viewer:
    state = request.app.state.opencx
    con = state.store.cursor()
    secret = request.cookies.get(SESSION_COOKIE)
    found = access.session_user(con, secret) if secret else None
    if found is None:
        raise SignInRequired(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
    viewer = Viewer(found[0], found[1], con, state)
    if not viewer.may(role):
        raise NotAllowed(role)
    return viewer


def _check_csrf(viewer: Viewer, token: str) -> None:
    if not hmac.compare_digest(viewer.csrf.encode(), token.encode()):
        raise InvalidInput("the form's CSRF token is missing or wrong: reload the page and retry")


def _page(request: Request, viewer: Viewer | None, name: str, **context: Any) -> HTMLResponse:
    nav = [(label, href) for label, href, role in NAV if viewer is None or viewer.may(role)]
    return templates.TemplateResponse(
        request,
        name,
        {"viewer": viewer, "nav": nav, "path": request.url.path, **context},
    )


# -- sign-in -------------------------------------------------------------------
@router.get("/login")
def login_form(request: Request, next: str = "/", error: str | None = None) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = _page(request, None, "login.html", next=_safe_next(next), error=error, csrf=token)
    response.set_cookie(PRE_CSRF_COOKIE, token, httponly=True, samesite="strict", max_age=3600)
    return response


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    expected = request.cookies.get(PRE_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf.encode()):
        return RedirectResponse(
            f"/login?error={quote('Your sign-in form expired: please try again.')}", 303
        )
    con = request.app.state.opencx.store.cursor()
    user = access.authenticate(con, email, password)
    if user is None:
        return RedirectResponse(
            f"/login?next={quote(next)}&error={quote('Wrong email or password.')}", 303
        )
    secret, _ = access.start_session(con, user)
    target = _safe_next(next)
    if target == "/" and user.role == "agent":
        target = "/customers"
    response = RedirectResponse(target, 303)
    response.set_cookie(
        SESSION_COOKIE, secret, httponly=True, samesite="lax",
        secure=request.url.scheme == "https", max_age=7 * 86400,
    )  # fmt: skip
    response.delete_cookie(PRE_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    viewer = _viewer(request, "agent")
    _check_csrf(viewer, csrf)
    access.end_session(viewer.con, request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# -- overview ------------------------------------------------------------------
OVERVIEW_CACHE_S = 300.0
"""How long the Overview keeps its slower analytics (drivers, effort, consistency) per process."""
_overview_cache: dict[tuple[int, str], tuple[float, weakref.ref[Any], Any]] = {}
_T = TypeVar("_T")


def _overview_cached(state: Any, name: str, compute: Callable[[], _T] | None) -> _T | None:
    """`compute()` remembered for OVERVIEW_CACHE_S per server state (drivers, effort and
    consistency take seconds on the sample brand; the page should not). Without `compute`:
    the remembered value, or None."""
    now = time.monotonic()
    key = (id(state), name)
    hit = _overview_cache.get(key)
    if hit is not None and hit[1]() is state and hit[0] > now:
        return hit[2]  # type: ignore[no-any-return]
    if compute is None:
        return None
    value = compute()
    _overview_cache[key] = (now + OVERVIEW_CACHE_S, weakref.ref(state), value)
    return value


@dataclass(frozen=True)
class OverviewAnalytics:
    """What the Overview shows beyond the log's counts: drivers, effort, consistency."""

    drivers: DriverResult | None
    drivers_note: str | None  # why there are no drivers, when there are none
    effort: EffortSummary | None
    flags: tuple[ChannelGap, ...]
    computed_at: datetime
    segments: tuple[SegmentSummary, ...] = ()


def _overview_analytics(
    con: duckdb.DuckDBPyConnection, warehouse: Any, contact_costs: Mapping[str, float]
) -> OverviewAnalytics:
    now = datetime.now(UTC)
    model = touchpoint_model(con, warehouse)
    segments = tuple(segment_summaries(con, warehouse, now=now, contact_costs=contact_costs))
    if not model.touchpoints:
        return OverviewAnalytics(None, "No touchpoints in the log yet.", None, (), now, segments)
    note = None
    try:
        drivers: DriverResult | None = key_drivers(
            warehouse, model, outcome="low_nps", start_at=now - timedelta(days=365)
        )
    except InvalidInput as exc:  # too few answers for a model: say so on the page
        drivers, note = None, exc.message
    effort = effort_summary(warehouse, model, start_at=now - timedelta(days=90), end_at=now)
    flags = channel_consistency(warehouse, model, start_at=now - timedelta(days=90)).flags
    return OverviewAnalytics(drivers, note, effort, flags, now, segments)


def _strongest_drivers(result: DriverResult | None, top: int = 8) -> list[Driver]:
    """The `top` drivers by size of importance, the most harmful first."""
    if result is None:
        return []
    strongest = sorted(result.drivers, key=lambda d: -abs(d.importance))[:top]
    return sorted(strongest, key=lambda d: -d.importance)


def _driver_chart(drivers: list[Driver]) -> str:
    """Drivers of low NPS as signed bars: the NPS points a driver costs through detractors
    (red) or saves (green), the other drivers held equal; "n.s.": not significant."""

    def label(d: Driver) -> str:
        room = 20 if d.significant else 15  # what fits beside the bars
        text = d.label if len(d.label) <= room else d.label[: room - 1] + "…"
        return text if d.significant else f"{text} n.s."

    return _charts.bar_chart(
        [(label(d), -100 * d.coefficient) for d in drivers], signed=True, unit=" pts", width=720
    )


@router.get("/")
def overview(request: Request) -> HTMLResponse:
    viewer = _viewer(request, "analyst")
    stats = log_overview(viewer.con)
    warehouse = viewer.state.warehouse()
    now = datetime.now(UTC)
    kpis = [
        (name, result.overall, _kpi_trend(warehouse, name))
        for name in ("nps", "csat", "ces")
        if (result := kpi(warehouse, name, start_at=now - timedelta(days=90), end_at=None)).overall
    ]
    # Drivers, effort and consistency take seconds: shown at once when remembered, else
    # loaded after the page (htmx, /overview/analytics).
    analytics = _overview_cached(viewer.state, "analytics", None) if stats.events else None
    return _page(
        request,
        viewer,
        "overview.html",
        stats=stats,
        kpis=kpis,
        alerts=alerts(warehouse, now=now)[:8],
        **_analytics_context(analytics),
        channel_chart=_charts.bar_chart(stats.by_channel),
        day_chart=_charts.area_chart(stats.by_day),
        events_chart=_charts.bar_chart(
            [(e if t == "track" else f"{e} ({t})", n) for t, e, n in stats.top_events]
        ),
    )


@router.get("/overview/analytics")
def overview_analytics(request: Request) -> HTMLResponse:
    """The Overview's slower sections: key drivers, effort tiles, consistency flags."""
    viewer = _viewer(request, "analyst")
    warehouse = viewer.state.warehouse()
    analytics = _overview_cached(
        viewer.state,
        "analytics",
        lambda: _overview_analytics(viewer.con, warehouse, viewer.state.settings.contact_costs),
    )
    template = templates.get_template("overview.html")
    context = template.new_context(
        {"request": request, "analytics": analytics, **_analytics_context(analytics)}
    )
    return HTMLResponse("".join(template.blocks["analytics"](context)))


def _kpi_trend(warehouse: Any, kind: str, weeks: int = 13) -> str:
    """The KPI week by week (the last `weeks` weeks with answers), as a small line chart."""
    points = score_trend(warehouse, kind, "week")[-weeks:]  # type: ignore[arg-type]
    if len(points) < 2:
        return ""
    return _charts.line_chart([(p.group[5:], p.value) for p in points], width=240)


def _analytics_context(analytics: OverviewAnalytics | None) -> dict[str, Any]:
    drivers = _strongest_drivers(analytics.drivers if analytics else None)
    return {
        "analytics": analytics,
        "drivers": drivers,
        "driver_chart": _driver_chart(drivers),
        "signals": EFFORT_LABELS,
    }


EFFORT_LABELS = {
    "repeat_contact": "repeat contacts",
    "channel_hop": "channel hops",
    "reidentification": "identified again",
    "slow_resolution": "unresolved > 24 h",
}


# -- customers -----------------------------------------------------------------
@router.get("/customers")
def customers(request: Request, q: str = "") -> HTMLResponse:
    viewer = _viewer(request, "agent")
    extractor = viewer.state.ingestor.extractor
    matches = search_profiles(viewer.con, q, extractor) if q.strip() else []
    if len(matches) == 1 and request.headers.get("HX-Request") is None:
        return RedirectResponse(f"/customers/{matches[0].id}", 303)  # type: ignore[return-value]
    return _page(request, viewer, "customers.html", q=q, matches=matches)


@router.get("/customers/{profile_id}")
def customer(request: Request, profile_id: str) -> HTMLResponse:
    viewer = _viewer(request, "agent")
    person = get_profile(viewer.con, profile_id)
    if person.id != profile_id:
        return RedirectResponse(f"/customers/{person.id}", 303)  # type: ignore[return-value]
    now = datetime.now(UTC)
    _audit(request, viewer, "profile.view", "profile", person.id)
    return _page(
        request,
        viewer,
        "customer.html",
        person=person,
        viewed_by=_viewed_by(request, viewer, person.id),
        recent=recent_activity(viewer.con, person.id, now=now),
        entries=timeline(viewer.con, person.id, limit=PAGE),
        cases=list_cases(viewer.con, person_id=person.id, limit=20),
        answers=answers_of(viewer.state.warehouse(), person.id, limit=5),
        decisions=decisions_of(viewer.con, person.id, limit=8),
        page=PAGE,
        now=now,
        channels=CHANNELS,
        types=EVENT_TYPES,
        filters={"channel": "", "type": ""},
    )


PAGE = 40


@router.get("/customers/{profile_id}/next-best-action")
def customer_next_best_action(request: Request, profile_id: str) -> HTMLResponse:
    """The customer-360 page's next-best-action panel, loaded after the page (it reads the
    person's signals and asks the contact policy: tens of milliseconds)."""
    viewer = _viewer(request, "agent")
    person = canonical_id(viewer.con, profile_id)
    now = datetime.now(UTC)
    _audit(request, viewer, "profile.next_best_action", "profile", person)
    return _page(
        request,
        viewer,
        "_next_best_action.html",
        actions=recommend(viewer.con, person, channel=None, now=now, limit=4),
        tasks=viewer.con.execute(
            "SELECT id, title, body, created_at FROM agent_tasks WHERE person_id = ? "
            "AND status = 'open' ORDER BY created_at DESC LIMIT 5",
            [person],
        ).fetchall(),
        now=now,
    )


def _viewed_by(request: Request, viewer: Viewer, person_id: str) -> list[access.AuditEntry] | None:
    """Who looked at this customer lately: for admins only."""
    if not viewer.may("admin"):
        return None
    request.app.state.audit.flush()
    return access.audit_entries(viewer.con, target=person_id, action="profile.", limit=20)


@router.get("/customers/{profile_id}/timeline")
def customer_timeline(
    request: Request,
    profile_id: str,
    before: str | None = None,
    channel: Annotated[str, Query()] = "",
    type: Annotated[str, Query()] = "",
) -> HTMLResponse:
    viewer = _viewer(request, "agent")
    entries = timeline(
        viewer.con,
        profile_id,
        limit=PAGE,
        before=before,
        channels=[channel] if channel else None,
        types=[type] if type else None,
    )
    return _page(
        request,
        viewer,
        "_timeline_rows.html",
        person_id=profile_id,
        entries=entries,
        page=PAGE,
        now=datetime.now(UTC),
        filters={"channel": channel, "type": type},
    )


# -- settings (admin) ----------------------------------------------------------
@router.get("/settings")
def settings_page(request: Request) -> HTMLResponse:
    return _settings(request, _viewer(request, "admin"))


def _settings(
    request: Request, viewer: Viewer, shown: str | None = None, kind: str | None = None
) -> HTMLResponse:
    con = viewer.con
    failed = con.execute(
        "SELECT id, received_at, source, origin, row_number, errors, payload FROM failed_events "
        "WHERE status = 'failed' ORDER BY id DESC LIMIT 50"
    ).fetchall()
    return _page(
        request,
        viewer,
        "settings.html",
        sources=access.list_sources(con),
        tokens=access.list_tokens(con),
        users=access.list_users(con),
        failed=[_format.failure(row) for row in failed],
        shown=shown,
        shown_kind=kind,
        channels=CHANNELS,
        roles=("agent", "analyst", "admin"),
    )


def _acting(request: Request, role: str, csrf: str) -> Viewer:
    """The signed-in viewer of a form post, with their role and the CSRF token checked."""
    viewer = _viewer(request, role)
    _check_csrf(viewer, csrf)
    return viewer


def _settings_action(request: Request, csrf: str) -> Viewer:
    return _acting(request, "admin", csrf)


def _audit(
    request: Request,
    viewer: Viewer,
    action: str,
    kind: str,
    target: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Record in the audit log what the signed-in person did (e.g. `token.create`); views
    are queued (written within a second), changes written at once."""
    client = request.client.host if request.client else None
    actor, at_once = f"user:{viewer.user.email}", not action.startswith("profile.")
    request.app.state.audit.record(actor, action, kind, target, details, client, at_once=at_once)


def _show_secret(request: Request, viewer: Viewer, secret: str, kind: str) -> HTMLResponse:
    # The new secret is rendered once, in this response, never put in a URL.
    return _settings(request, viewer, shown=secret, kind=kind)


@router.post("/settings/sources")
def create_source(
    request: Request,
    name: Annotated[str, Form()],
    channel: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    viewer = _settings_action(request, csrf)
    _, key = access.add_source(viewer.con, name.strip(), channel)
    _audit(request, viewer, "source.add", "source", name.strip())
    return _show_secret(request, viewer, key, f"write key of source {name.strip()}")


@router.post("/settings/sources/{name}/rotate")
def rotate_source(request: Request, name: str, csrf: Annotated[str, Form()] = "") -> Response:
    viewer = _settings_action(request, csrf)
    key = access.rotate_write_key(viewer.con, name)
    _audit(request, viewer, "source.rotate", "source", name)
    return _show_secret(request, viewer, key, f"new write key of source {name}")


@router.post("/settings/sources/{name}/revoke")
def revoke_source(request: Request, name: str, csrf: Annotated[str, Form()] = "") -> Response:
    viewer = _settings_action(request, csrf)
    access.revoke_source(viewer.con, name)
    _audit(request, viewer, "source.revoke", "source", name)
    return RedirectResponse("/settings#sources", 303)


@router.post("/settings/tokens")
def create_token(
    request: Request,
    name: Annotated[str, Form()],
    role: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    viewer = _settings_action(request, csrf)
    token, secret = access.create_token(viewer.con, name, role)
    _audit(request, viewer, "token.create", "token", token.id, {"name": token.name, "role": role})
    return _show_secret(request, viewer, secret, f"API token {name.strip()} ({role})")


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: str, csrf: Annotated[str, Form()] = "") -> Response:
    viewer = _settings_action(request, csrf)
    access.revoke_token(viewer.con, token_id)
    _audit(request, viewer, "token.revoke", "token", token_id)
    return RedirectResponse("/settings#tokens", 303)


@router.post("/settings/users")
def create_user(
    request: Request,
    email: Annotated[str, Form()],
    role: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    viewer = _settings_action(request, csrf)
    user = access.add_user(viewer.con, email, role, password)
    _audit(request, viewer, "user.add", "user", user.email, {"role": user.role})
    return RedirectResponse("/settings#users", 303)


@router.post("/settings/users/{email}/disable")
def disable_user(request: Request, email: str, csrf: Annotated[str, Form()] = "") -> Response:
    viewer = _settings_action(request, csrf)
    if email == viewer.user.email:
        raise InvalidInput("you cannot disable your own account")
    access.disable_user(viewer.con, email)
    _audit(request, viewer, "user.disable", "user", email)
    return RedirectResponse("/settings#users", 303)


@router.post("/settings/failed-events/replay")
def replay(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    viewer = _settings_action(request, csrf)
    replay_failed(viewer.state.ingestor)
    return RedirectResponse("/settings#failed", 303)


# -- wiring ----------------------------------------------------------------------
class SecurityHeaders:
    """A strict CSP and the usual hardening headers on every web page, error pages and
    static files included; HSTS when served over https. API answers (`/api/`) get
    `nosniff` and `no-store` (they carry personal data); ingestion (`/v1/`) nothing."""

    CSP = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    )
    PERMISSIONS = (
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
        "microphone=(), payment=(), usb=()"
    )
    _PAGE = (
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
        (b"permissions-policy", PERMISSIONS.encode()),
        (b"cross-origin-opener-policy", b"same-origin"),
    )
    _API = ((b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"))

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @classmethod
    def headers_for(cls, scope: Scope) -> dict[str, str]:
        """The headers a web page answered on `scope` carries."""
        return {k.decode(): v.decode() for k, v in cls._page_headers(scope)}

    @classmethod
    def _page_headers(cls, scope: Scope) -> list[tuple[bytes, bytes]]:
        headers = list(cls._PAGE)
        if scope.get("scheme") == "https":
            state = getattr(getattr(scope.get("app"), "state", None), "opencx", None)
            max_age = (
                state.settings.hsts_max_age_s
                if state is not None
                else Settings.model_fields["hsts_max_age_s"].default
            )
            if max_age > 0:
                headers.append((b"strict-transport-security", f"max-age={max_age}".encode()))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        extra = self._API if scope["path"].startswith("/api/") else self._page_headers(scope)

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI) -> None:
    """Add the web app's pages, static files and error pages to `app`."""
    from opencx.web import journeys, policy, segments, voc  # their pages use these helpers

    app.include_router(router)
    app.include_router(journeys.router)
    app.include_router(voc.router)
    app.include_router(segments.router)
    app.include_router(policy.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse(f"/login?next={quote(exc.next_url)}", 303)

    @app.exception_handler(NotAllowed)
    async def not_allowed(request: Request, exc: NotAllowed) -> Response:
        return templates.TemplateResponse(
            request,
            "error.html",
            {"viewer": None, "nav": [], "status": 403, "path": request.url.path,
             "message": f"This page needs the {exc.role} role."},
            status_code=403,
        )  # fmt: skip


def error_page(request: Request, exc: OpenCXError) -> Response:
    """Errors on web pages are pages, not JSON."""
    status = 404 if isinstance(exc, NotFound) else exc.status_code
    return templates.TemplateResponse(
        request,
        "error.html",
        {"viewer": None, "nav": [], "status": status, "message": exc.message,
         "path": request.url.path},
        status_code=status,
    )  # fmt: skip
