"""The read API: tokens and roles, lookups by identifier, the timeline."""

from __future__ import annotations

from tests.conftest import ApiClient

T1, T2 = "2026-11-01T10:00:00Z", "2026-11-01T10:01:00Z"
CALLER = {"channel": "phone", "traits": {"email": "jane@example.com", "phone": "+15551234567"}}
JOURNEY = [
    {"type": "page", "anonymousId": "a-1", "name": "Home", "messageId": "m1", "timestamp": T1},
    {"type": "identify", "anonymousId": "a-1", "userId": "u-1", "messageId": "m2",
     "traits": {"email": "Jane@Example.com", "plan": "basic"}, "timestamp": T2},
    {"type": "track", "event": "Call Started", "messageId": "m3", "timestamp": T2,
     "context": CALLER},
    {"type": "identify", "userId": "u-1", "messageId": "m4", "traits": {"plan": "pro"},
     "timestamp": "2026-11-02T09:00:00Z"},
]  # fmt: skip


def load(api: ApiClient) -> str:
    response = api.client.post("/v1/batch", json={"batch": JOURNEY}, headers=api.ingest_auth)
    assert response.json()["accepted"] == 4
    by_phone = {"identifier": "phone:(555) 123-4567"}
    found = api.client.get("/api/v1/profiles", params=by_phone, headers=api.bearer("agent"))
    assert found.status_code == 200
    [profile] = found.json()["profiles"]
    return str(profile["id"])


def test_profile_by_any_identifier_with_merged_traits(api: ApiClient) -> None:
    pid = load(api)
    profile = api.client.get(f"/api/v1/profiles/{pid}", headers=api.bearer("agent")).json()
    assert profile["identifiers"]["email"] == ["jane@example.com"]
    assert profile["traits"]["plan"] == "pro"  # newest wins
    assert profile["channels"] == ["phone", "web"]
    for identifier in ("email:JANE@example.com", "user_id:u-1", "anonymous_id:a-1"):
        response = api.client.get(
            "/api/v1/profiles", params={"identifier": identifier}, headers=api.bearer("agent")
        )
        assert [p["id"] for p in response.json()["profiles"]] == [pid]


def test_timeline_pages_newest_first_without_gaps(api: ApiClient) -> None:
    pid = load(api)
    seen, before = [], None
    for _ in range(5):
        params = {"limit": 1, **({"before": before} if before else {})}
        page = api.client.get(
            f"/api/v1/profiles/{pid}/timeline", params=params, headers=api.bearer("agent")
        ).json()
        seen += [item["message_id"] for item in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == ["m4", "m3", "m2", "m1"]


def test_tokens_and_roles(api: ApiClient) -> None:
    pid = load(api)
    assert api.client.get(f"/api/v1/profiles/{pid}").status_code == 401
    bad = api.client.get(f"/api/v1/profiles/{pid}", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert api.client.get("/api/v1/failed-events", headers=api.bearer("agent")).status_code == 403
    assert (
        api.client.post("/api/v1/identity/rebuild", headers=api.bearer("analyst")).status_code
        == 403
    )
    assert api.client.get("/api/v1/failed-events", headers=api.bearer("admin")).status_code == 200


def test_unknown_profile_and_bad_identifier(api: ApiClient) -> None:
    missing = api.client.get("/api/v1/profiles/p_nope", headers=api.bearer("agent"))
    assert missing.status_code == 404 and "p_nope" in missing.json()["error"]["message"]
    bad = api.client.get(
        "/api/v1/profiles", params={"identifier": "jane"}, headers=api.bearer("agent")
    )
    assert bad.status_code == 400 and "KIND:VALUE" in bad.json()["error"]["message"]


def test_split_over_the_api_keeps_people_apart(api: ApiClient) -> None:
    pid = load(api)
    admin = api.bearer("admin")
    report = api.client.post(
        "/api/v1/identity/split", json={"profile_id": pid, "identifier": "anonymous_id:a-1"},
        headers=admin,
    ).json()  # fmt: skip
    kiosk = report["profile_id"]
    assert kiosk not in (None, pid)
    # A later event carrying both identifiers does not merge them again.
    again = {"type": "identify", "anonymousId": "a-1", "userId": "u-1", "messageId": "m9"}
    api.client.post("/v1/batch", json={"batch": [again]}, headers=api.ingest_auth)
    jane = api.client.get("/api/v1/profiles", params={"identifier": "user_id:u-1"}, headers=admin)
    anon = api.client.get(
        "/api/v1/profiles", params={"identifier": "anonymous_id:a-1"}, headers=admin
    )
    assert jane.json()["profiles"][0]["id"] == pid
    assert anon.json()["profiles"][0]["id"] == kiosk
    rebuilt = api.client.post("/api/v1/identity/rebuild", headers=admin).json()
    assert rebuilt["events_moved"] == 0
