"""Doors of the web app: sign-in, CSRF on every form, roles, search."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from opencx.access import add_user
from opencx.api import create_app
from opencx.config import Settings
from opencx.ingest import Ingestor, SourceContext
from opencx.profiles import refresh_profiles
from opencx.store import Store
from opencx.web.app import router

PASSWORD = "correct horse battery"


@pytest.fixture
def web(settings: Settings) -> Iterator[TestClient]:
    with Store() as store:
        add_user(store.con, "admin@example.com", "admin", PASSWORD)
        add_user(store.con, "agent@example.com", "agent", PASSWORD)
        Ingestor(store, settings).ingest(
            [
                {"type": "identify", "userId": "u-1", "anonymousId": "a-1", "messageId": "m1",
                 "traits": {"email": "jane@example.com", "phone": "+15551234567",
                            "name": "Jane Doe"}},
                {"type": "page", "anonymousId": "a-1", "name": "Plans", "messageId": "m2"},
                {"type": "track", "event": "Call Started", "messageId": "m3",
                 "context": {"channel": "phone", "traits": {"phone": "555.123.4567"}}},
            ],
            SourceContext("web", "web"),
        )  # fmt: skip
        refresh_profiles(store.con)
        with TestClient(create_app(settings, store)) as client:
            yield client


def sign_in(client: TestClient, email: str) -> str:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf": csrf.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    settings_or_search = client.get("/customers")
    token = re.search(r'name="csrf" value="([^"]+)"', settings_or_search.text)
    assert token
    return token.group(1)


def _paths(method: str) -> list[str]:
    return [
        re.sub(r"\{[^}]+\}", "x", route.path)
        for route in router.routes
        if isinstance(route, APIRoute) and method in route.methods and route.path != "/login"
    ]


def test_every_page_but_sign_in_redirects_when_signed_out(web: TestClient) -> None:
    for path in _paths("GET"):
        response = web.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path
    assert web.get("/login").status_code == 200


def test_every_form_rejects_a_missing_or_wrong_csrf_token(web: TestClient) -> None:
    sign_in(web, "admin@example.com")
    for path in _paths("POST"):
        for token in (None, "forged"):
            data = {"name": "n", "channel": "web", "role": "agent", "email": "x@y.io",
                    "password": "long enough pw"}  # fmt: skip
            if token:
                data["csrf"] = token
            response = web.post(path, data=data, follow_redirects=False)
            assert response.status_code == 400, (path, token, response.status_code)
    # Nothing was created by the rejected forms.
    assert "x@y.io" not in web.get("/settings").text


def test_sign_in_form_needs_its_csrf_token(web: TestClient) -> None:
    web.get("/login")
    response = web.post(
        "/login", data={"email": "admin@example.com", "password": PASSWORD, "csrf": "forged"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303
    assert "error=" in response.headers["location"]
    assert web.get("/", follow_redirects=False).status_code == 303


def test_wrong_password_does_not_sign_in(web: TestClient) -> None:
    page = web.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    response = web.post(
        "/login", data={"email": "admin@example.com", "password": "nope", "csrf": csrf.group(1)},
        follow_redirects=False,
    )  # fmt: skip
    assert "error=" in response.headers["location"]
    assert web.get("/customers", follow_redirects=False).status_code == 303


def test_agent_gets_403_on_admin_pages_and_forms(web: TestClient) -> None:
    csrf = sign_in(web, "agent@example.com")
    assert web.get("/settings").status_code == 403
    assert web.get("/").status_code == 403  # analytics need the analyst role
    response = web.post("/settings/tokens", data={"name": "t", "role": "admin", "csrf": csrf})
    assert response.status_code == 403
    assert web.get("/customers").status_code == 200


def test_admin_creates_a_source_and_sees_its_key_once(web: TestClient) -> None:
    csrf = sign_in(web, "admin@example.com")
    response = web.post("/settings/sources", data={"name": "kiosk", "channel": "store",
                                                   "csrf": csrf})  # fmt: skip
    key = re.search(r'<code class="big">(wk_[^<]+)</code>', response.text)
    assert key
    assert key.group(1) not in web.get("/settings").text


def test_phone_written_differently_finds_the_customer(web: TestClient) -> None:
    sign_in(web, "agent@example.com")
    response = web.get("/customers", params={"q": "(555) 123-4567"}, follow_redirects=False)
    assert response.status_code == 303
    page = web.get(response.headers["location"])
    assert "Jane Doe" in page.text
    assert "Call Started" in page.text and "Plans" in page.text  # phone and web, one timeline


def test_stored_markup_in_traits_renders_inert(web: TestClient, settings: Settings) -> None:
    sign_in(web, "agent@example.com")
    state = web.app.state.opencx  # type: ignore[attr-defined]
    state.ingestor.ingest(
        [{"type": "identify", "userId": "u-1", "messageId": "x1",
          "traits": {"name": "<script>alert(1)</script>"}}],
        SourceContext("web", "web"),
    )  # fmt: skip
    response = web.get("/customers", params={"q": "u-1"})
    page = web.get(response.url) if response.status_code != 200 else response
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


# -- overview: drivers, effort, consistency ------------------------------------------
@pytest.fixture
def analytics_web(settings: Settings) -> Iterator[TestClient]:
    """A log where a failed app password reset makes detractors and the app's CES lags."""
    from datetime import UTC, datetime

    from tests.journeys.conftest import T0, write_events

    now = (datetime.now(UTC) - T0).total_seconds() / 3600  # write_events' hours for "now"
    rows: list[tuple] = []  # type: ignore[type-arg]
    for i in range(120):
        person, reset = f"p{i}", i % 2 == 0
        rows.append((person, now - 240, "Account Login", "web"))
        if i % 3 == 0:
            rows.append((person, now - 230, "Bill Viewed", "app"))
        if reset:
            rows.append((person, now - 220, "Password Reset Failed", "app"))
            if i % 4 == 0:  # half of them call: a channel hop, not the same people
                rows.append((person, now - 219.5, "Call Started", "phone", {"topic": "pw"}))
        happy = (i % 10 == 0) if reset else (i % 10 != 1)
        rows.append((person, now - 120, "Survey Responded", "email",
                     {"survey_type": "nps", "score": 9 if happy else 2}))  # fmt: skip
        touchpoint = "password_reset_failed@app" if i < 60 else "call_started@phone"
        rows.append((person, now - 100, "Survey Responded", "email",
                     {"survey_type": "ces", "score": 2 if i < 60 else 6,
                      "touchpoint": touchpoint}))  # fmt: skip
    with Store() as store:
        add_user(store.con, "analyst@example.com", "analyst", PASSWORD)
        write_events(store, rows)
        refresh_profiles(store.con)
        with TestClient(create_app(settings, store)) as client:
            yield client


def test_overview_loads_drivers_effort_and_consistency_after_the_page(
    analytics_web: TestClient,
) -> None:
    sign_in(analytics_web, "analyst@example.com")
    page = analytics_web.get("/")
    assert page.status_code == 200
    assert 'hx-get="/overview/analytics"' in page.text and 'id="drivers"' not in page.text
    part = analytics_web.get("/overview/analytics")
    assert part.status_code == 200 and "<html" not in part.text
    drivers = part.text[part.text.index('id="drivers"') : part.text.index('id="effort"')]
    assert '<svg class="chart"' in drivers
    # The failed reset raises detractors: the first (most harmful) bar, in red, significant.
    first = re.search(r'class="lbl">([^<]+)</text><rect [^>]*fill="([^"]+)"', drivers)
    assert first and first.groups() == ("Password Reset Fail…", "#dc2626")
    assert "n.s." in drivers  # the unrelated bill view is marked not significant
    assert 'class="not-significant"><strong>Bill Viewed (app)' in drivers
    effort = part.text[part.text.index('id="effort"') : part.text.index('id="consistency"')]
    assert re.search(r'<span class="num">30</span><span>channel hops</span>', effort)
    assert (
        "CES for service in app is 2.0 vs 6.0 on the other channels (p &lt; 0.001, 60 answers)"
        in part.text
    )
    # Remembered for a few minutes: the page now shows the sections at once.
    again = analytics_web.get("/")
    assert 'id="drivers"' in again.text and 'hx-get="/overview/analytics"' not in again.text


def test_overview_analytics_need_the_analyst_role(web: TestClient) -> None:
    sign_in(web, "agent@example.com")
    assert web.get("/overview/analytics").status_code == 403
