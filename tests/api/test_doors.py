"""Every door of the server, declared: who may pass each route, proven route by route.

A route that is not in DOORS fails `test_every_route_is_a_declared_door`, so a new
endpoint or page cannot ship without saying who may use it (and docs/security.md, which
`test_the_security_report_lists_every_door` keeps equal to this table).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from opencx.access import add_source, add_user, create_token, revoke_source
from opencx.api import create_app
from opencx.config import Settings
from opencx.store import Store
from tests.conftest import ROOT, basic_auth

PUBLIC = "public"
INVITATION = "invitation token"  # the token in the path is the credential
WRITE_KEY = "write key"
ROLES = ("agent", "analyst", "admin")
INGESTION = ("batch", "b", "track", "t", "identify", "i", "page", "p", "screen", "s", "group",
             "g", "alias", "a")  # fmt: skip

# (method, path) -> who may pass: PUBLIC, INVITATION, WRITE_KEY, "token:ROLE" (API token
# of that role or a stronger one) or "session:ROLE" (signed in to the web app).
DOORS: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,  # probes: liveness and readiness, no data in either
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/static"): PUBLIC,
    # ingestion: a source's write key, which can only write to that source
    **{("POST", f"/v1/{p}"): WRITE_KEY for p in INGESTION},
    ("POST", "/v1/m"): PUBLIC,  # analytics-next's own delivery metrics: read and dropped
    # read API
    ("GET", "/api/v1/profiles"): "token:agent",
    ("GET", "/api/v1/profiles/{profile_id}"): "token:agent",
    ("GET", "/api/v1/profiles/{profile_id}/timeline"): "token:agent",
    ("GET", "/api/v1/profiles/{profile_id}/next-best-action"): "token:agent",
    ("GET", "/api/v1/cases"): "token:agent",
    ("GET", "/api/v1/cases/{case_id}"): "token:agent",
    ("PATCH", "/api/v1/cases/{case_id}"): "token:agent",
    ("GET", "/api/v1/cases/metrics"): "token:analyst",
    ("POST", "/api/v1/surveys/{survey_id}/invitations"): "token:agent",
    ("GET", "/api/v1/tasks"): "token:agent",
    ("POST", "/api/v1/tasks/{task_id}/done"): "token:agent",
    # analytics and configuration
    ("POST", "/api/v1/journeys/funnel"): "token:analyst",
    ("GET", "/api/v1/journeys/paths"): "token:analyst",
    ("GET", "/api/v1/journeys/transitions"): "token:analyst",
    ("GET", "/api/v1/journeys/cohorts"): "token:analyst",
    ("GET", "/api/v1/journeys/diagnostics"): "token:analyst",
    ("GET", "/api/v1/journeys/touchpoints"): "token:analyst",
    ("PUT", "/api/v1/journeys/touchpoints"): "token:admin",
    ("GET", "/api/v1/journeys/designs"): "token:analyst",
    ("PUT", "/api/v1/journeys/designs"): "token:analyst",
    ("GET", "/api/v1/journeys/designs/{name}/actual"): "token:analyst",
    ("GET", "/api/v1/surveys"): "token:analyst",
    ("PUT", "/api/v1/surveys"): "token:analyst",
    ("POST", "/api/v1/surveys/{survey_id}/run"): "token:analyst",
    ("GET", "/api/v1/metrics/alerts"): "token:analyst",
    ("GET", "/api/v1/metrics/consistency"): "token:analyst",
    ("GET", "/api/v1/metrics/{name}"): "token:analyst",
    ("GET", "/api/v1/triggers"): "token:analyst",
    ("PUT", "/api/v1/triggers"): "token:admin",
    ("GET", "/api/v1/triggers/{trigger_id}"): "token:analyst",
    ("DELETE", "/api/v1/triggers/{trigger_id}"): "token:admin",
    ("GET", "/api/v1/actions"): "token:analyst",
    ("PUT", "/api/v1/actions"): "token:admin",
    ("GET", "/api/v1/policy"): "token:analyst",
    ("PUT", "/api/v1/policy"): "token:admin",
    ("POST", "/api/v1/policy/simulate"): "token:analyst",
    ("GET", "/api/v1/decisions"): "token:analyst",
    ("GET", "/api/v1/decisions/summary"): "token:analyst",
    ("GET", "/api/v1/outbox"): "token:analyst",
    ("POST", "/api/v1/outbox/{item_id}/retry"): "token:admin",
    # administration
    ("GET", "/api/v1/failed-events"): "token:admin",
    ("POST", "/api/v1/identity/rebuild"): "token:admin",
    ("POST", "/api/v1/identity/split"): "token:admin",
    ("POST", "/api/v1/admin/backup"): "token:admin",
    ("POST", "/api/v1/admin/export"): "token:admin",
    ("GET", "/api/v1/admin/stats"): "token:admin",
    ("GET", "/api/v1/audit"): "token:admin",
    ("POST", "/api/v1/privacy/erase"): "token:admin",
    ("POST", "/api/v1/privacy/anonymise"): "token:admin",
    ("POST", "/api/v1/privacy/purge"): "token:admin",
    ("GET", "/api/v1/privacy/export"): "token:admin",
    ("GET", "/api/v1/privacy/suppressions"): "token:admin",
    # the embeddable survey answer API
    ("GET", "/api/v1/survey-invitations/{token}"): INVITATION,
    ("POST", "/api/v1/survey-invitations/{token}"): INVITATION,
    # web app
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): "session:agent",
    ("GET", "/"): "session:analyst",
    ("GET", "/overview/analytics"): "session:analyst",
    ("GET", "/customers"): "session:agent",
    ("GET", "/customers/{profile_id}"): "session:agent",
    ("GET", "/customers/{profile_id}/timeline"): "session:agent",
    ("GET", "/customers/{profile_id}/next-best-action"): "session:agent",
    ("GET", "/cases"): "session:agent",
    ("GET", "/cases/{case_id}"): "session:agent",
    ("POST", "/cases/{case_id}"): "session:agent",
    ("GET", "/journeys"): "session:analyst",
    ("GET", "/journeys/diagnostics"): "session:analyst",
    ("GET", "/journeys/flows"): "session:analyst",
    ("GET", "/journeys/designs"): "session:analyst",
    ("POST", "/journeys/designs"): "session:analyst",
    ("POST", "/journeys/touchpoints"): "session:admin",
    ("GET", "/voc"): "session:analyst",
    ("POST", "/voc/surveys"): "session:analyst",
    ("POST", "/voc/themes"): "session:analyst",
    ("GET", "/segments"): "session:analyst",
    ("POST", "/segments"): "session:analyst",
    ("POST", "/segments/refresh"): "session:analyst",
    ("GET", "/policy"): "session:analyst",
    ("POST", "/policy"): "session:admin",
    ("POST", "/policy/simulate"): "session:analyst",
    ("POST", "/policy/triggers"): "session:admin",
    ("POST", "/policy/triggers/{trigger_id}/delete"): "session:admin",
    ("POST", "/policy/outbox/{item_id}/retry"): "session:admin",
    ("GET", "/settings"): "session:admin",
    ("POST", "/settings/sources"): "session:admin",
    ("POST", "/settings/sources/{name}/rotate"): "session:admin",
    ("POST", "/settings/sources/{name}/revoke"): "session:admin",
    ("POST", "/settings/tokens"): "session:admin",
    ("POST", "/settings/tokens/{token_id}/revoke"): "session:admin",
    ("POST", "/settings/users"): "session:admin",
    ("POST", "/settings/users/{email}/disable"): "session:admin",
    ("POST", "/settings/failed-events/replay"): "session:admin",
    # hosted survey pages (the invitation token) and public feedback forms (the survey id)
    ("GET", "/s/{token}"): INVITATION,
    ("POST", "/s/{token}"): INVITATION,
    ("GET", "/s/{token}/brand.css"): INVITATION,
    ("GET", "/f/{survey_id}"): PUBLIC,
    ("POST", "/f/{survey_id}"): PUBLIC,
    ("GET", "/f/{survey_id}/brand.css"): PUBLIC,
}
PASSWORD = "correct horse battery"


def routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app answers (HEAD follows GET; a mount is one GET door)."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        methods = getattr(route.original_route, "methods", None) or {"GET"}
        found |= {(m, str(route.path)) for m in methods if m != "HEAD"}
    return found


def concrete(path: str) -> str:
    """A path with made-up values for its parameters (static: a file that exists)."""
    if path == "/static":
        return "/static/htmx.min.js"
    return re.sub(r"\{[^}]+\}", "x-unknown", path)


def form_fields(app: FastAPI) -> dict[tuple[str, str], list[str]]:
    """The form fields each web form takes (filled in, so that its door is what answers:
    a form missing a required field is refused with 422 before any handler runs)."""
    fields: dict[tuple[str, str], list[str]] = {}
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route.original_route, "dependant", None)
        for method in getattr(route.original_route, "methods", None) or ():
            if dependant is not None and not str(route.path).startswith(("/api/", "/v1/")):
                fields[(method, str(route.path))] = [p.alias for p in dependant.body_params]
    return fields


@dataclass
class Doors:
    app: FastAPI
    anonymous: TestClient
    write_key: str
    tokens: dict[str, str]
    sessions: dict[str, TestClient]

    def call(self, client: TestClient, method: str, path: str, **kwargs: object) -> int:
        fields = form_fields(self.app).get((method, path))
        if fields:  # a web form: every field filled in (`days` is a number)
            kwargs["data"] = {f: "1" if f == "days" else "x" for f in fields}
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["json"] = {}
        response = client.request(method, concrete(path), follow_redirects=False, **kwargs)
        return int(response.status_code) if not _to_login(response) else 303


def _to_login(response: object) -> bool:
    location = getattr(response, "headers", {}).get("location", "")
    return getattr(response, "status_code", 0) == 303 and location.startswith("/login")


@pytest.fixture(scope="module")
def doors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doors]:
    settings = Settings(
        db=tmp_path_factory.mktemp("doors") / "doors.duckdb", profiles_refresh_s=0,
        voc_every_s=0, orchestrate_every_s=0, segments_every_s=0,
    )  # fmt: skip
    with Store() as store:
        _, key = add_source(store.con, "web", "web")
        tokens = {role: create_token(store.con, role, role)[1] for role in ROLES}
        for role in ROLES:
            add_user(store.con, f"{role}@example.com", role, PASSWORD)
        app = create_app(settings, store)
        with TestClient(app) as anonymous:
            sessions = {}
            for role in ROLES:
                client = TestClient(app)
                page = client.get("/login")
                csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
                assert csrf
                signed = client.post(
                    "/login",
                    data={"email": f"{role}@example.com", "password": PASSWORD,
                          "csrf": csrf.group(1)},
                    follow_redirects=False,
                )  # fmt: skip
                assert signed.status_code == 303 and "error" not in signed.headers["location"]
                sessions[role] = client
            yield Doors(app, anonymous, key, tokens, sessions)


def _doors(kind: str) -> list[tuple[str, str]]:
    return sorted(door for door, who in DOORS.items() if who.startswith(kind))


def test_every_route_is_a_declared_door(doors: Doors) -> None:
    served = routes(doors.app)
    undeclared = sorted(served - DOORS.keys())
    assert undeclared == [], f"declare who may pass these routes in DOORS: {undeclared}"
    assert sorted(DOORS.keys() - served) == [], "DOORS lists routes the app does not have"


def test_without_credentials_every_closed_door_says_so(doors: Doors) -> None:
    for method, path in _doors("token:") + _doors(WRITE_KEY):
        assert doors.call(doors.anonymous, method, path) == 401, (method, path)
    for method, path in _doors("session:"):
        assert doors.call(doors.anonymous, method, path) == 303, (method, path)


def test_public_doors_need_nothing_and_find_nothing_with_made_up_tokens(doors: Doors) -> None:
    for method, path in _doors(PUBLIC) + _doors(INVITATION):
        status = doors.call(doors.anonymous, method, path)
        if (method, path) == ("POST", "/login"):  # a failed sign-in goes back to the form
            assert status == 303
            continue
        assert status not in (401, 403, 303), (method, path, status)
        assert status < 500, (method, path, status)
    for method, path in _doors(INVITATION):
        assert doors.call(doors.anonymous, method, path) in (400, 404, 422), (method, path)


def test_a_write_key_opens_no_door_but_ingestion(doors: Doors) -> None:
    key = basic_auth(doors.write_key)
    for method, path in _doors("token:"):
        assert doors.call(doors.anonymous, method, path, headers=key) == 401, (method, path)
    for method, path in _doors("session:"):
        assert doors.call(doors.anonymous, method, path, headers=key) == 303, (method, path)
    # ... and a token or a session is not a write key.
    for method, path in _doors(WRITE_KEY):
        bearer = {"Authorization": f"Bearer {doors.tokens['admin']}"}
        assert doors.call(doors.anonymous, method, path, headers=bearer) == 401, (method, path)
        assert doors.call(doors.sessions["admin"], method, path) == 401, (method, path)


def test_a_write_key_writes_only_to_its_own_source(settings: Settings) -> None:
    with Store() as store:
        _, shop = add_source(store.con, "shop", "web")
        _, calls_key = add_source(store.con, "calls", "phone")
        with TestClient(create_app(settings, store)) as client:
            spoof = {"type": "track", "event": "E", "userId": "u", "messageId": "m-1",
                     "context": {"channel": "phone", "source": "calls"},
                     "source": "calls", "writeKey": calls_key}  # fmt: skip
            sent = client.post("/v1/batch", json={"batch": [spoof]}, headers=basic_auth(shop))
            assert sent.status_code == 200 and sent.json()["accepted"] == 1
            stored = store.con.execute("SELECT source FROM events").fetchall()
            assert stored == [("shop",)]
            revoke_source(store.con, "shop")
            # The server remembers keys for a few seconds; forget them now.
            client.app.state.opencx._sources.clear()  # type: ignore[attr-defined]
            again = client.post("/v1/batch", json={"batch": [spoof]}, headers=basic_auth(shop))
            assert again.status_code == 401


def test_tokens_pass_only_the_doors_of_their_role(doors: Doors) -> None:
    for (method, path), who in DOORS.items():
        if not who.startswith("token:"):
            continue
        needed = ROLES.index(who.partition(":")[2])
        for rank, role in enumerate(ROLES):
            bearer = {"Authorization": f"Bearer {doors.tokens[role]}"}
            if rank < needed:
                assert doors.call(doors.anonymous, method, path, headers=bearer) == 403, (
                    method, path, role,
                )  # fmt: skip
            elif method == "GET":  # passing a write door would change things: GETs only
                status = doors.call(doors.anonymous, method, path, headers=bearer)
                assert status not in (401, 403), (method, path, role, status)


def test_sessions_pass_only_the_pages_of_their_role(doors: Doors) -> None:
    for (method, path), who in DOORS.items():
        if not who.startswith("session:"):
            continue
        needed = ROLES.index(who.partition(":")[2])
        for rank, role in enumerate(ROLES):
            client = doors.sessions[role]
            if rank < needed:
                assert doors.call(client, method, path) == 403, (method, path, role)
            elif method == "GET":
                status = doors.call(client, method, path)
                assert status not in (401, 403, 303), (method, path, role, status)


def test_there_are_no_default_credentials(tmp_path: object) -> None:
    with Store() as store:
        for table in ("users", "tokens", "sources", "sessions"):
            assert store.con.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


# -- the report ---------------------------------------------------------------------
PROOF = {
    PUBLIC: "answers without credentials",
    INVITATION: "answers without credentials; a made-up token finds nothing (4xx)",
    WRITE_KEY: "no key: 401; a token, a session: 401",
    "token": "no token, a write key: 401; a weaker role: 403",
    "session": "signed out, a write key: to /login; a weaker role: 403",
}


def door_rows() -> list[str]:
    """The endpoint table of docs/security.md, one row per door, in path order."""
    rows = []
    for (method, path), who in sorted(DOORS.items(), key=lambda d: (d[0][1], d[0][0])):
        proof = PROOF.get(who) or PROOF[who.partition(":")[0]]
        rows.append(f"| `{method} {path}` | {who} | {proof} |")
    return rows


def test_the_security_report_lists_every_cli_command() -> None:
    from opencx.cli import app
    from tests.test_docs import _commands

    text = (ROOT / "docs" / "security.md").read_text()
    assert [c for c in _commands(app) if f"`opencx {c}`" not in text] == []


def test_the_security_report_lists_every_door() -> None:
    text = (ROOT / "docs" / "security.md").read_text()
    documented = [line for line in text.splitlines() if re.match(r"^\| `[A-Z]+ /", line)]
    expected = door_rows()
    missing = [row for row in expected if row not in documented]
    stale = [row for row in documented if row not in expected]
    assert (missing, stale) == ([], []), "docs/security.md's door table is out of date:\n" + (
        "\n".join(expected)
    )
