"""Security headers on every page, error page and static file; CORS only for ingestion."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from opencx.access import add_source, add_user, create_token
from opencx.api import create_app
from opencx.config import Settings
from opencx.store import Store
from opencx.web.app import SecurityHeaders
from tests.conftest import basic_auth

PASSWORD = "correct horse battery"
ORIGIN = "https://shop.example.com"


@pytest.fixture
def web(settings: Settings) -> Iterator[tuple[TestClient, str, str]]:
    tuned = settings.model_copy(update={"cors_origins": [ORIGIN], "hsts_max_age_s": 600})
    with Store() as store:
        add_user(store.con, "agent@example.com", "agent", PASSWORD)
        _, key = add_source(store.con, "web", "web")
        _, token = create_token(store.con, "t", "admin")
        with TestClient(create_app(tuned, store), raise_server_exceptions=False) as client:
            yield client, key, token


def sign_in(client: TestClient) -> None:
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf
    data = {"email": "agent@example.com", "password": PASSWORD, "csrf": csrf.group(1)}
    assert client.post("/login", data=data, follow_redirects=False).status_code == 303


def assert_hardened(response: object, where: str) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    csp = headers["content-security-policy"]
    strict = ("default-src 'self'", "script-src 'self'", "style-src 'self'",
              "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'")  # fmt: skip
    for directive in strict:
        assert directive in csp, (where, directive)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, where
    assert headers["x-content-type-options"] == "nosniff", where
    assert headers["x-frame-options"] == "DENY", where
    assert headers["referrer-policy"] == "same-origin", where
    assert "camera=()" in headers["permissions-policy"], where
    assert "strict-transport-security" not in headers, where  # plain http: never


def test_pages_error_pages_and_static_files_carry_the_headers(
    web: tuple[TestClient, str, str],
) -> None:
    client, _, _ = web
    assert_hardened(client.get("/login"), "sign-in page")
    assert_hardened(client.get("/customers", follow_redirects=False), "redirect to sign-in")
    assert_hardened(client.get("/s/not-a-token"), "survey page, unknown token")
    assert_hardened(client.get("/static/opencx.css"), "static file")
    assert_hardened(client.get("/static/missing.js"), "missing static file")
    assert_hardened(client.get("/no/such/page"), "unknown page")
    sign_in(client)
    assert_hardened(client.get("/customers"), "customers")
    assert_hardened(client.get("/customers/p_missing"), "404 page")
    assert_hardened(client.get("/settings"), "403 page")
    assert_hardened(client.post("/cases/x", data={"csrf": "forged"}), "400 page")


def test_an_unexpected_error_is_a_page_with_the_headers_too(
    web: tuple[TestClient, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _, token = web
    sign_in(client)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("opencx.web.app.search_profiles", broken)
    page = client.get("/customers", params={"q": "jane"})
    assert page.status_code == 500
    assert_hardened(page, "500 page")
    assert "a bug" not in page.text and "internal error" in page.text
    monkeypatch.setattr("opencx.api.profiles.find_profiles", broken)
    api = client.get("/api/v1/profiles", params={"identifier": "email:a@b.co"},
                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert api.status_code == 500
    error = {"type": "OpenCXError", "message": "internal error: the server log has the details"}
    assert api.json() == {"error": error}


def test_hsts_is_sent_over_https_only_and_can_be_turned_off(
    web: tuple[TestClient, str, str], settings: Settings
) -> None:
    client, _, _ = web
    secure = TestClient(client.app, base_url="https://testserver")
    assert secure.get("/login").headers["strict-transport-security"] == "max-age=600"
    assert "strict-transport-security" not in client.get("/login").headers
    state = client.app.state.opencx  # type: ignore[attr-defined]
    state.settings = state.settings.model_copy(update={"hsts_max_age_s": 0})
    assert "strict-transport-security" not in secure.get("/login").headers
    assert SecurityHeaders.headers_for({"scheme": "https"})["strict-transport-security"] == (
        f"max-age={Settings.model_fields['hsts_max_age_s'].default}"
    )


def test_api_answers_are_not_cached_nor_sniffed_and_ingestion_is_left_alone(
    web: tuple[TestClient, str, str],
) -> None:
    client, key, token = web
    api = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert api.headers["cache-control"] == "no-store"
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers
    ingest = client.post("/v1/track", json={"event": "E", "userId": "u"}, headers=basic_auth(key))
    assert ingest.status_code == 200
    assert "cache-control" not in ingest.headers and "content-security-policy" not in ingest.headers


# -- CORS -----------------------------------------------------------------------------
def preflight(client: TestClient, path: str, origin: str) -> object:
    return client.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    })  # fmt: skip


def test_cors_allows_the_configured_origins_on_ingestion_only(
    web: tuple[TestClient, str, str],
) -> None:
    client, key, token = web
    allowed = preflight(client, "/v1/batch", ORIGIN)
    assert allowed.status_code == 200  # type: ignore[attr-defined]
    assert allowed.headers["access-control-allow-origin"] == ORIGIN  # type: ignore[attr-defined]
    sent = client.post("/v1/t", json={"writeKey": key, "event": "E", "anonymousId": "a"},
                       headers={"Origin": ORIGIN})  # fmt: skip
    assert sent.status_code == 200 and sent.headers["access-control-allow-origin"] == ORIGIN
    # Another origin gets no CORS header: the browser keeps its page from sending.
    for response in (
        preflight(client, "/v1/batch", "https://evil.example"),
        client.post("/v1/t", json={"writeKey": key, "event": "E", "anonymousId": "a"},
                    headers={"Origin": "https://evil.example"}),
    ):  # fmt: skip
        assert "access-control-allow-origin" not in response.headers  # type: ignore[attr-defined]
    # The read API and the web app never answer CORS, even to a configured origin.
    bearer = {"Authorization": f"Bearer {token}", "Origin": ORIGIN}
    for response in (
        preflight(client, "/api/v1/cases", ORIGIN),
        client.get("/api/v1/cases", headers=bearer),
        preflight(client, "/login", ORIGIN),
        client.get("/login", headers={"Origin": ORIGIN}),
    ):
        assert not any(h.startswith("access-control-") for h in response.headers)  # type: ignore[attr-defined]


def test_without_configured_origins_nothing_answers_cors(settings: Settings) -> None:
    with Store() as store, TestClient(create_app(settings, store)) as client:
        response = preflight(client, "/v1/batch", ORIGIN)
        assert "access-control-allow-origin" not in response.headers  # type: ignore[attr-defined]
