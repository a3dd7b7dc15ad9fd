"""Privacy API: admin only; erase and export on a running server; replays dropped over HTTP."""

from __future__ import annotations

import io
import zipfile

import httpx
import orjson

from tests.conftest import ApiClient, LiveServer, basic_auth
from tests.privacy.conftest import XAVIER_SENT, XAVIER_VALUES, bianca_events, xavier_events


def _send(api: ApiClient, batch: list[dict[str, object]]) -> dict[str, object]:
    response = api.client.post("/v1/batch", json={"batch": batch}, headers=api.ingest_auth)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _all_text(api: ApiClient) -> str:
    """Every row of every base table, as one lower-cased text."""
    con = api.store.con
    tables = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        "AND table_schema = 'main' AND table_catalog = current_database()"
    ).fetchall()
    parts = []
    for (table,) in tables:
        rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
        parts.append(repr(rows))
    return "\n".join(parts).lower()


def test_privacy_endpoints_are_for_admins_only(api: ApiClient) -> None:
    for role in ("agent", "analyst"):
        headers = api.bearer(role)
        body = {"identifier": "email:a@b.com"}
        assert (
            api.client.post("/api/v1/privacy/erase", json=body, headers=headers).status_code == 403
        )
        assert (
            api.client.get(
                "/api/v1/privacy/export", params={"identifier": "email:a@b.com"}, headers=headers
            ).status_code
            == 403
        )
    assert api.client.post("/api/v1/privacy/erase", json={"identifier": "x"}).status_code == 401


def test_erase_through_the_api_then_replays_are_dropped(api: ApiClient) -> None:
    assert _send(api, [*xavier_events(), *bianca_events()])["accepted"] == 8
    admin = api.bearer("admin")
    text = _all_text(api)
    assert all(v.lower() in text for v in XAVIER_VALUES)

    response = api.client.post(
        "/api/v1/privacy/erase",
        json={"identifier": f"email:{XAVIER_SENT[0]}", "reason": "GDPR request"},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["verified"] is True and report["removed"]["events"] == 5

    replay = _send(api, xavier_events())
    assert (replay["accepted"], replay["rejected"]) == (5, 0)
    text = _all_text(api)
    assert [v for v in [*XAVIER_SENT, *XAVIER_VALUES] if v.lower() in text] == []
    assert "bianca@example.org" in text  # others untouched
    listed = api.client.get("/api/v1/privacy/suppressions", headers=admin).json()
    assert sum(s["dropped"] for s in listed) >= 5
    assert {s["kind"] for s in listed} == {"email", "phone", "user_id", "anonymous_id"}


def test_export_through_the_api(api: ApiClient) -> None:
    _send(api, [*xavier_events(), *bianca_events()])
    response = api.client.get(
        "/api/v1/privacy/export",
        params={"identifier": f"phone:{XAVIER_SENT[1]}"},
        headers=api.bearer("admin"),
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        person = orjson.loads(archive.read("person.json"))
        assert "events.csv" in archive.namelist()
    assert {e["message_id"] for e in person["events"]} == {"xq-1", "xq-2", "xq-2b", "xq-3", "xq-4"}
    assert "bianca@example.org" not in response.content.decode("latin-1")


def test_unknown_person_is_404_and_bad_identifier_400(api: ApiClient) -> None:
    admin = api.bearer("admin")
    missing = api.client.post(
        "/api/v1/privacy/erase", json={"identifier": "p_00000000deadbeef"}, headers=admin
    )
    assert missing.status_code == 404
    bad = api.client.post("/api/v1/privacy/erase", json={"identifier": "nokind"}, headers=admin)
    assert bad.status_code == 400 and "KIND:VALUE" in bad.json()["error"]["message"]


def test_purge_and_anonymise_through_the_api(api: ApiClient) -> None:
    _send(api, [*xavier_events(), *bianca_events()])
    admin = api.bearer("admin")
    dry = api.client.post(
        "/api/v1/privacy/purge",
        json={"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z", "dry_run": True},
        headers=admin,
    )
    assert dry.status_code == 200 and dry.json()["events"] == 8
    naive = api.client.post(
        "/api/v1/privacy/purge",
        json={"start": "2000-01-01T00:00:00", "end": "2100-01-01T00:00:00Z"},
        headers=admin,
    )
    assert naive.status_code in (400, 422)
    anonymised = api.client.post(
        "/api/v1/privacy/anonymise", json={"identifier": "email:bianca@example.org"}, headers=admin
    )
    assert anonymised.status_code == 200 and anonymised.json()["rewritten"]["events"] == 3


def test_erase_on_a_live_server(live_server: LiveServer) -> None:
    auth = basic_auth(live_server.write_key)
    admin = {"Authorization": f"Bearer {live_server.admin_token}"}
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        sent = client.post("/v1/batch", json={"batch": xavier_events()}, headers=auth)
        assert sent.status_code == 200 and sent.json()["accepted"] == 5
        erased = client.post(
            "/api/v1/privacy/erase", json={"identifier": f"user_id:{XAVIER_SENT[2]}"}, headers=admin
        )
        assert erased.status_code == 200 and erased.json()["verified"] is True
        again = client.post("/v1/batch", json={"batch": xavier_events()}, headers=auth)
        assert again.status_code == 200 and again.json()["accepted"] == 5
        found = client.get(
            "/api/v1/profiles", params={"identifier": f"email:{XAVIER_SENT[0]}"}, headers=admin
        )
        assert found.status_code == 200 and found.json()["profiles"] == []
        listed = client.get("/api/v1/privacy/suppressions", headers=admin).json()
        assert {s["kind"]: s["dropped"] for s in listed}["user_id"] == 4
