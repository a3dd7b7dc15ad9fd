"""Who looked at which customer, and who changed what: recorded on every door that reads
a profile or changes something, and shown to admins (API, customer-360 page, CLI)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from opencx.access import add_user, audit_entries
from opencx.cli import app as cli_app
from opencx.ingest import Ingestor, SourceContext
from opencx.profiles import refresh_profiles
from opencx.store import Store
from tests.conftest import ApiClient

PASSWORD = "correct horse battery"
JANE = [
    {"type": "identify", "userId": "u-1", "messageId": "m1",
     "traits": {"email": "jane@example.com", "name": "Jane Doe"}},
    {"type": "track", "event": "Order Completed", "userId": "u-1", "messageId": "m2"},
]  # fmt: skip


def jane(api: ApiClient) -> str:
    response = api.client.post("/v1/batch", json={"batch": JANE}, headers=api.ingest_auth)
    assert response.status_code == 200
    found = api.client.get("/api/v1/profiles", params={"identifier": "email:jane@example.com"},
                           headers=api.bearer("admin"))  # fmt: skip
    return str(found.json()["profiles"][0]["id"])


def entries(api: ApiClient, **query: Any) -> list[dict[str, Any]]:
    response = api.client.get("/api/v1/audit", params=query, headers=api.bearer("admin"))
    assert response.status_code == 200, response.text
    return list(response.json())


def test_every_profile_read_is_recorded_with_who_and_from_where(api: ApiClient) -> None:
    pid = jane(api)
    agent = api.bearer("agent")
    assert api.client.get(f"/api/v1/profiles/{pid}", headers=agent).status_code == 200
    assert api.client.get(f"/api/v1/profiles/{pid}/timeline", headers=agent).status_code == 200
    nba = api.client.get(f"/api/v1/profiles/{pid}/next-best-action", headers=agent)
    assert nba.status_code == 200
    seen = [(e["actor"], e["action"], e["target"], e["client"]) for e in entries(api, person=pid)]
    assert seen == [
        ("token:agent", "profile.next_best_action", pid, "testclient"),
        ("token:agent", "profile.timeline", pid, "testclient"),
        ("token:agent", "profile.view", pid, "testclient"),
        ("token:admin", "profile.lookup", pid, "testclient"),
    ]
    lookup = entries(api, action="profile.lookup")[0]
    assert lookup["details"]["by"] == "email"
    assert "jane@example.com" not in str(entries(api))  # identifiers are not copied in


def test_a_read_that_fails_is_not_a_view(api: ApiClient) -> None:
    jane(api)
    missing = api.client.get("/api/v1/profiles/p_nobody", headers=api.bearer("agent"))
    assert missing.status_code == 404
    assert entries(api, actor="token:agent") == []


def test_changes_are_recorded_when_they_succeed_only(api: ApiClient) -> None:
    admin = api.bearer("admin")
    policy = api.client.get("/api/v1/policy", headers=admin).text
    good = api.client.put("/api/v1/policy", content=policy, headers=admin)
    assert good.status_code == 200, good.text
    bad = api.client.put("/api/v1/policy", content="quiet_hours: [[[", headers=admin)
    assert bad.status_code == 400
    changes = entries(api, action="api:PUT /api/v1/policy")
    assert [(e["actor"], e["target_kind"], e["target"]) for e in changes] == [
        ("token:admin", "route", "/api/v1/policy")
    ]
    assert changes[0]["details"]["token_id"].startswith("t_")
    retried = api.client.delete("/api/v1/triggers/nope", headers=admin)
    assert retried.status_code == 404
    assert entries(api, action="api:DELETE /api/v1/triggers/{trigger_id}") == []


def test_the_audit_api_filters_and_is_for_admins(api: ApiClient) -> None:
    pid = jane(api)
    api.client.get(f"/api/v1/profiles/{pid}", headers=api.bearer("agent"))
    assert [e["action"] for e in entries(api, actor="token:agent")] == ["profile.view"]
    assert entries(api, person=pid, limit=1)[0]["action"] == "profile.view"
    assert entries(api, person="p_erased_long_ago") == []  # not an error: erased people
    for role in ("agent", "analyst"):
        assert api.client.get("/api/v1/audit", headers=api.bearer(role)).status_code == 403


# -- the web app and the CLI -----------------------------------------------------------
def _web(store: Store, client: TestClient, email: str) -> str:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    data = {"email": email, "password": PASSWORD, "csrf": csrf.group(1)}
    assert client.post("/login", data=data, follow_redirects=False).status_code == 303
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/customers").text)
    assert token
    return token.group(1)


def test_customer_360_views_are_recorded_and_admins_see_who_looked(
    api: ApiClient,
) -> None:
    pid = jane(api)
    add_user(api.store.con, "agent@example.com", "agent", PASSWORD)
    add_user(api.store.con, "boss@example.com", "admin", PASSWORD)
    refresh_profiles(api.store.con)
    agent = TestClient(api.client.app)
    _web(api.store, agent, "agent@example.com")
    page = agent.get(f"/customers/{pid}")
    assert page.status_code == 200 and "Who looked at this customer" not in page.text
    boss = TestClient(api.client.app)
    csrf = _web(api.store, boss, "boss@example.com")
    page = boss.get(f"/customers/{pid}")
    section = page.text[page.text.index("Who looked at this customer") :]
    assert "user:agent@example.com" in section and "user:boss@example.com" in section
    assert [e.actor for e in audit_entries(api.store.con, target=pid, action="profile.view")] == [
        "user:boss@example.com", "user:agent@example.com",
    ]  # fmt: skip
    # Settings changes made in the web app are recorded too.
    boss.post("/settings/tokens", data={"name": "crm", "role": "agent", "csrf": csrf})
    [created] = audit_entries(api.store.con, action="token.create")
    assert (created.actor, created.details) == ("user:boss@example.com",
                                                {"name": "crm", "role": "agent"})  # fmt: skip


def test_the_cli_shows_the_audit_log_of_a_customer(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    with Store(db) as store:
        Ingestor(store, _settings(db)).ingest(JANE, SourceContext("web", "web"))
        pid = store.con.execute("SELECT profile_id FROM identities LIMIT 1").fetchone()[0]  # type: ignore[index]
        from opencx.access import record

        record(store.con, "user:ann@example.com", "profile.view", "profile", pid, client="10.1.2.3")
        record(store.con, "token:crm", "profile.view", "profile", "p_someone_else")
    runner = CliRunner()
    result = runner.invoke(
        cli_app, ["audit", "--person", "email:jane@example.com", "--db", str(db), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1 and '"actor":"user:ann@example.com"' in result.output
    table = runner.invoke(cli_app, ["audit", "--actor", "token:crm", "--db", str(db)])
    assert table.exit_code == 0 and "token:crm" in table.output
    assert "ann@example.com" not in table.output
    bad = runner.invoke(cli_app, ["audit", "--since", "yesterday", "--db", str(db)])
    assert bad.exit_code == 2 and "--since must be an ISO 8601 time" in bad.output


def _settings(db: Path) -> Any:
    from opencx.config import load_settings

    return load_settings(db=db, profiles_refresh_s=0)
