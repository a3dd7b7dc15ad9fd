"""The read API: tokens and roles, lookups by identifier, profiles and the timeline."""

from __future__ import annotations

from typing import Any

import pytest

from opencx.access import create_token, revoke_token
from tests.conftest import ApiClient

T1, T2, T3 = "2026-11-01T10:00:00Z", "2026-11-01T10:01:00Z", "2026-11-02T09:00:00Z"
CALLER = {"channel": "phone", "traits": {"email": "jane@example.com", "phone": "+15551234567"}}
JOURNEY = [
    {"type": "page", "anonymousId": "a-1", "name": "Home", "messageId": "m1", "timestamp": T1},
    {"type": "identify", "anonymousId": "a-1", "userId": "u-1", "messageId": "m2",
     "traits": {"email": "Jane@Example.com", "plan": "basic"}, "timestamp": T2},
    {"type": "track", "event": "Call Started", "messageId": "m3", "timestamp": T2,
     "context": CALLER, "properties": {"topic": "billing"}},
    {"type": "identify", "userId": "u-1", "messageId": "m4", "traits": {"plan": "pro"},
     "timestamp": T3},
]  # fmt: skip
NEWEST_FIRST = ["m4", "m3", "m2", "m1"]


def ingest(api: ApiClient, *messages: dict[str, Any]) -> None:
    response = api.client.post("/v1/batch", json={"batch": list(messages)}, headers=api.ingest_auth)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(messages), response.json()


def lookup(api: ApiClient, identifier: str, role: str = "agent") -> Any:
    return api.client.get(
        "/api/v1/profiles", params={"identifier": identifier}, headers=api.bearer(role)
    )


def load(api: ApiClient) -> str:
    ingest(api, *JOURNEY)
    response = lookup(api, "phone:(555) 123-4567")
    assert response.status_code == 200
    body = response.json()
    assert body["identifier"] == "phone:+15551234567"
    [profile] = body["profiles"]
    return str(profile["id"])


def page(api: ApiClient, pid: str, **params: Any) -> Any:
    return api.client.get(
        f"/api/v1/profiles/{pid}/timeline", params=params, headers=api.bearer("agent")
    )


# -- lookups -------------------------------------------------------------------------
def test_every_identifier_typed_any_way_finds_the_profile(api: ApiClient) -> None:
    pid = load(api)
    typed = [
        "phone:+15551234567", "phone:555-123-4567", "phone:+1 (555) 123 4567",
        "email:JANE@example.com", "email: jane@example.com ", "EMAIL:jane@example.com",
        "user_id:u-1", "anonymous_id:a-1",
    ]  # fmt: skip
    for identifier in typed:
        response = lookup(api, identifier)
        assert response.status_code == 200, identifier
        [profile] = response.json()["profiles"]
        assert (profile["id"], profile["event_count"]) == (pid, 4), identifier


def test_a_lookup_without_a_match_is_an_empty_list(api: ApiClient) -> None:
    load(api)
    response = lookup(api, "email:Nobody@Example.com")
    assert response.status_code == 200
    assert response.json() == {"identifier": "email:nobody@example.com", "profiles": []}


def test_a_bad_identifier_is_a_400_that_says_why(api: ApiClient) -> None:
    cases = [
        ("jane", "must be KIND:VALUE"),
        ("email:", "must be KIND:VALUE"),
        ("email:not-an-email", "is not a usable email"),
        ("phone:call me", "is not a usable phone"),
        ("user_id:null", "is not a usable user_id"),  # a blocked value
    ]
    for identifier, complaint in cases:
        response = lookup(api, identifier)
        assert response.status_code == 400, identifier
        error = response.json()["error"]
        assert error["type"] == "InvalidInput"
        assert complaint in error["message"] and repr(identifier) in error["message"]


@pytest.mark.parametrize(
    "identifier",
    [
        ":jane@example.com",
        "emial:jane@example.com",
    ],
)
def test_an_unknown_identifier_kind_is_a_400(api: ApiClient, identifier: str) -> None:
    response = lookup(api, identifier)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert repr(identifier) in message and "email" in message and "user_id" in message


def test_a_lookup_needs_an_identifier(api: ApiClient) -> None:
    response = api.client.get("/api/v1/profiles", headers=api.bearer("agent"))
    assert response.status_code == 422


# -- one profile ---------------------------------------------------------------------
def test_a_profile_has_identifiers_merged_traits_and_activity(api: ApiClient) -> None:
    pid = load(api)
    response = api.client.get(f"/api/v1/profiles/{pid}", headers=api.bearer("agent"))
    assert response.status_code == 200
    profile = response.json()
    assert profile["id"] == pid
    assert profile["identifiers"] == {
        "anonymous_id": ["a-1"],
        "user_id": ["u-1"],
        "email": ["jane@example.com"],
        "phone": ["+15551234567"],
    }
    assert profile["traits"] == {
        "email": "jane@example.com",  # the call's context.traits are newer than the identify's
        "plan": "pro",  # newest wins
        "phone": "+15551234567",
    }
    assert profile["first_seen"].startswith("2026-11-01T10:00:00")
    assert profile["last_seen"].startswith("2026-11-02T09:00:00")
    assert profile["channels"] == ["phone", "web"] and profile["sources"] == ["web"]
    assert profile["event_count"] == 4
    assert profile["counts_by_type"] == {"identify": 2, "page": 1, "track": 1}
    assert profile["merged_ids"] == []


def test_a_merged_profile_id_answers_with_the_survivor(api: ApiClient) -> None:
    ingest(api, {"type": "page", "anonymousId": "laptop", "messageId": "p1", "timestamp": T1})
    ingest(api, {"type": "page", "anonymousId": "tablet", "messageId": "p2", "timestamp": T2})
    [laptop] = lookup(api, "anonymous_id:laptop").json()["profiles"]
    [tablet] = lookup(api, "anonymous_id:tablet").json()["profiles"]
    assert laptop["id"] != tablet["id"]
    ingest(
        api,
        {"type": "identify", "userId": "u-9", "anonymousId": "laptop", "messageId": "i1"},
        {"type": "identify", "userId": "u-9", "anonymousId": "tablet", "messageId": "i2"},
    )
    old = api.client.get(f"/api/v1/profiles/{tablet['id']}", headers=api.bearer("agent")).json()
    assert old["id"] == laptop["id"] and old["merged_ids"] == [tablet["id"]]
    assert old["event_count"] == 4
    items = page(api, tablet["id"]).json()
    assert items["profile_id"] == laptop["id"]
    assert [i["message_id"] for i in items["items"]] == ["i2", "i1", "p2", "p1"]
    empty = page(api, tablet["id"], channel="store").json()
    assert empty == {"profile_id": laptop["id"], "items": [], "next_before": None}


def test_an_unknown_profile_is_a_404_with_a_json_message(api: ApiClient) -> None:
    load(api)
    for path in ("/api/v1/profiles/p_nope", "/api/v1/profiles/p_nope/timeline"):
        response = api.client.get(path, headers=api.bearer("agent"))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {
            "error": {"type": "NotFound", "message": "no profile with id 'p_nope'"}
        }


# -- the timeline ----------------------------------------------------------------------
def test_timeline_pages_cover_every_event_once_newest_first(api: ApiClient) -> None:
    pid = load(api)
    for limit in (1, 2, 3, 4, 5):
        seen: list[str] = []
        before: str | None = None
        for _ in range(10):
            params: dict[str, Any] = {"limit": limit, **({"before": before} if before else {})}
            response = page(api, pid, **params)
            assert response.status_code == 200
            body = response.json()
            assert body["profile_id"] == pid and len(body["items"]) <= limit
            seen += [item["message_id"] for item in body["items"]]
            before = body["next_before"]
            if before is None:
                break
        assert seen == NEWEST_FIRST, limit


def test_timeline_entries_carry_the_interaction(api: ApiClient) -> None:
    pid = load(api)
    items = page(api, pid).json()["items"]
    call = next(i for i in items if i["message_id"] == "m3")
    assert (call["type"], call["event"], call["channel"], call["source"]) == (
        "track", "Call Started", "phone", "web"
    )  # fmt: skip
    assert call["properties"] == {"topic": "billing"}
    assert call["timestamp"].startswith("2026-11-01T10:01:00")
    home = next(i for i in items if i["message_id"] == "m1")
    assert home["type"] == "page" and home["channel"] == "web"


def test_timeline_filters_by_channel_and_type(api: ApiClient) -> None:
    pid = load(api)
    ids = lambda response: [i["message_id"] for i in response.json()["items"]]  # noqa: E731
    assert ids(page(api, pid, channel="phone")) == ["m3"]
    assert ids(page(api, pid, type="identify")) == ["m4", "m2"]
    assert ids(page(api, pid, type=["page", "track"])) == ["m3", "m1"]
    assert ids(page(api, pid, channel="web", type="page")) == ["m1"]
    assert ids(page(api, pid, before="2026-11-01T10:01:00Z")) == ["m1"]


def test_timeline_limit_out_of_bounds_is_refused(api: ApiClient) -> None:
    pid = load(api)
    for limit in (0, -3, 501, "many"):
        assert page(api, pid, limit=limit).status_code == 422, limit
    assert len(page(api, pid, limit=500).json()["items"]) == 4


def test_a_bad_cursor_is_a_400(api: ApiClient) -> None:
    pid = load(api)
    response = page(api, pid, before="last tuesday")
    assert response.status_code == 400
    assert "before must be a timeline cursor" in response.json()["error"]["message"]


# -- tokens and roles ----------------------------------------------------------------
def test_no_or_a_bad_token_is_a_401(api: ApiClient) -> None:
    pid = load(api)
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Token {api.tokens['admin']}"},
    ):
        for path in (f"/api/v1/profiles/{pid}", f"/api/v1/profiles/{pid}/timeline"):
            response = api.client.get(path, headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"]["type"] == "Unauthorized"
        response = api.client.get(
            "/api/v1/profiles", params={"identifier": "user_id:u-1"}, headers=headers
        )
        assert response.status_code == 401


def test_a_write_key_is_not_an_api_token(api: ApiClient) -> None:
    pid = load(api)
    as_basic = api.client.get(f"/api/v1/profiles/{pid}", headers=api.ingest_auth)
    as_bearer = api.client.get(
        f"/api/v1/profiles/{pid}", headers={"Authorization": f"Bearer {api.write_key}"}
    )
    assert (as_basic.status_code, as_bearer.status_code) == (401, 401)


def test_a_revoked_token_is_refused(api: ApiClient) -> None:
    pid = load(api)
    token, secret = create_token(api.store.con, "leaver", "admin")
    revoke_token(api.store.con, token.id)
    response = api.client.get(
        f"/api/v1/profiles/{pid}", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 401
    assert "not valid" in response.json()["error"]["message"]


def test_every_role_can_read_profiles(api: ApiClient) -> None:
    pid = load(api)
    for role in ("agent", "analyst", "admin"):
        for path in (f"/api/v1/profiles/{pid}", f"/api/v1/profiles/{pid}/timeline"):
            assert api.client.get(path, headers=api.bearer(role)).status_code == 200, role
        assert lookup(api, "user_id:u-1", role).status_code == 200


def test_the_openapi_document_lists_the_read_api(api: ApiClient) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/profiles", "/api/v1/profiles/{profile_id}",
            "/api/v1/profiles/{profile_id}/timeline"} <= set(paths)  # fmt: skip
