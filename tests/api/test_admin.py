"""The admin API: failed events, identity rebuild and split, server stats, for admins only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opencx.api._state import process_memory
from tests.conftest import ApiClient

T1, T2, T3 = "2026-11-01T10:00:00Z", "2026-11-01T10:01:00Z", "2026-11-02T09:00:00Z"
JOURNEY = [  # someone browsed on a shared kiosk (a-1), then signed in there as u-1
    {"type": "page", "anonymousId": "a-1", "name": "Home", "messageId": "m1", "timestamp": T1},
    {"type": "identify", "anonymousId": "a-1", "userId": "u-1", "messageId": "m2",
     "traits": {"email": "jane@example.com"}, "timestamp": T2},
    {"type": "track", "event": "Order Completed", "userId": "u-1", "messageId": "m3",
     "timestamp": T3},
]  # fmt: skip
BAD = [
    {"type": "track", "userId": "u-1", "messageId": "bad-no-event"},
    {"type": "identify", "userId": ["not", "a", "string"], "messageId": "bad-user"},
]
ADMIN_ONLY = [
    ("GET", "/api/v1/failed-events", None),
    ("POST", "/api/v1/identity/rebuild", None),
    ("POST", "/api/v1/identity/split", {"profile_id": "p_x", "identifier": "user_id:u-1"}),
    ("GET", "/api/v1/admin/stats", None),
]


def post_batch(api: ApiClient, *messages: dict[str, Any]) -> dict[str, Any]:
    response = api.client.post("/v1/batch", json={"batch": list(messages)}, headers=api.ingest_auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


def profile_of(api: ApiClient, identifier: str) -> str:
    response = api.client.get(
        "/api/v1/profiles", params={"identifier": identifier}, headers=api.bearer("admin")
    )
    [profile] = response.json()["profiles"]
    return str(profile["id"])


def timeline_ids(api: ApiClient, pid: str) -> list[str]:
    response = api.client.get(f"/api/v1/profiles/{pid}/timeline", headers=api.bearer("admin"))
    return [item["message_id"] for item in response.json()["items"]]


def split(api: ApiClient, profile_id: str, identifier: str) -> Any:
    return api.client.post(
        "/api/v1/identity/split",
        json={"profile_id": profile_id, "identifier": identifier},
        headers=api.bearer("admin"),
    )


# -- roles ---------------------------------------------------------------------------
def test_only_admins_may_use_the_admin_api(api: ApiClient) -> None:
    post_batch(api, *JOURNEY)
    for role in ("agent", "analyst"):
        for method, path, body in ADMIN_ONLY:
            response = api.client.request(method, path, json=body, headers=api.bearer(role))
            assert response.status_code == 403, (role, path)
            error = response.json()["error"]
            assert error["type"] == "Forbidden"
            assert error["message"] == f"this needs the admin role; the token {role!r} is {role}"
    assert api.store.con.execute("SELECT count(*) FROM identity_blocks").fetchone() == (0,)


def test_the_admin_api_needs_a_token(api: ApiClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        for method, path, body in ADMIN_ONLY:
            response = api.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (headers, path)
            assert response.json()["error"]["type"] == "Unauthorized"


# -- failed events -------------------------------------------------------------------
def test_admins_see_failed_events_with_their_errors_and_payload(api: ApiClient) -> None:
    result = post_batch(api, JOURNEY[0], *BAD)
    assert (result["accepted"], result["rejected"]) == (1, 2)
    response = api.client.get("/api/v1/failed-events", headers=api.bearer("admin"))
    assert response.status_code == 200
    failed = response.json()
    assert [f["message_id"] for f in failed] == ["bad-user", "bad-no-event"]  # newest first
    by_id = {f["message_id"]: f for f in failed}
    no_event = by_id["bad-no-event"]
    assert (no_event["source"], no_event["status"]) == ("web", "failed")
    assert no_event["row_number"] is None  # an API event has no file row
    assert [e["field"] for e in no_event["errors"]] == ["event"]
    assert "required for a track call" in no_event["errors"][0]["message"]
    assert json.loads(no_event["payload"]) == BAD[0]
    assert [e["field"] for e in by_id["bad-user"]["errors"]] == ["userId"]
    assert no_event["received_at"] and no_event["origin"]


def test_failed_events_limit_and_status(api: ApiClient) -> None:
    post_batch(api, *BAD, {"type": "alias", "userId": "u", "messageId": "bad-alias"})
    admin = api.bearer("admin")
    one = api.client.get("/api/v1/failed-events", params={"limit": 1}, headers=admin).json()
    assert [f["message_id"] for f in one] == ["bad-alias"]
    failed = api.client.get("/api/v1/failed-events", params={"status": "failed"}, headers=admin)
    assert len(failed.json()) == 3
    replayed = api.client.get("/api/v1/failed-events", params={"status": "replayed"}, headers=admin)
    assert replayed.json() == []
    for params in ({"status": "deleted"}, {"limit": 0}, {"limit": 1001}):
        response = api.client.get("/api/v1/failed-events", params=params, headers=admin)
        assert response.status_code == 422, params


def test_no_failed_events_is_an_empty_list(api: ApiClient) -> None:
    post_batch(api, *JOURNEY)
    response = api.client.get("/api/v1/failed-events", headers=api.bearer("admin"))
    assert response.status_code == 200 and response.json() == []


# -- rebuild -------------------------------------------------------------------------
def test_rebuild_of_an_unchanged_log_moves_nothing(api: ApiClient) -> None:
    post_batch(api, *JOURNEY, {"type": "page", "anonymousId": "someone-else", "messageId": "m4"})
    pid = profile_of(api, "user_id:u-1")
    for _ in range(2):
        response = api.client.post("/api/v1/identity/rebuild", headers=api.bearer("admin"))
        assert response.status_code == 200
        assert response.json() == {
            "profile_id": None,
            "events": 4,
            "identifiers": 4,  # a-1, u-1, jane's email, someone-else
            "profiles": 2,
            "merges": 0,
            "conflicts": 0,
            "events_moved": 0,
        }
    assert profile_of(api, "email:jane@example.com") == pid
    assert timeline_ids(api, pid) == ["m3", "m2", "m1"]


def test_rebuild_counts_merges_and_keeps_the_survivor(api: ApiClient) -> None:
    post_batch(api, {"type": "page", "anonymousId": "laptop", "messageId": "p1", "timestamp": T1})
    post_batch(api, {"type": "page", "anonymousId": "tablet", "messageId": "p2", "timestamp": T2})
    laptop = profile_of(api, "anonymous_id:laptop")
    post_batch(
        api,
        {"type": "identify", "userId": "u-9", "anonymousId": "laptop", "messageId": "i1"},
        {"type": "identify", "userId": "u-9", "anonymousId": "tablet", "messageId": "i2"},
    )
    report = api.client.post("/api/v1/identity/rebuild", headers=api.bearer("admin")).json()
    assert (report["profiles"], report["merges"], report["events_moved"]) == (1, 1, 0)
    assert profile_of(api, "anonymous_id:tablet") == laptop
    # The server keeps resolving new events against the rebuilt graph.
    post_batch(api, {"type": "track", "event": "Bill Paid", "userId": "u-9", "messageId": "t1"})
    assert timeline_ids(api, laptop)[0] == "t1"


# -- split ---------------------------------------------------------------------------
def test_split_moves_an_identifier_and_its_events_to_a_new_profile(api: ApiClient) -> None:
    post_batch(api, *JOURNEY)
    jane = profile_of(api, "user_id:u-1")
    response = split(api, jane, "anonymous_id:a-1")
    assert response.status_code == 200
    report = response.json()
    kiosk = report["profile_id"]
    assert kiosk not in (None, jane)
    assert report["events"] == 3 and report["events_moved"] == 1
    assert profile_of(api, "anonymous_id:a-1") == kiosk
    assert profile_of(api, "email:jane@example.com") == jane
    assert timeline_ids(api, kiosk) == ["m1"]  # the anonymous page view left with it
    assert timeline_ids(api, jane) == ["m3", "m2"]
    people = {
        pid: api.client.get(f"/api/v1/profiles/{pid}", headers=api.bearer("admin")).json()
        for pid in (jane, kiosk)
    }
    assert people[kiosk]["identifiers"] == {"anonymous_id": ["a-1"]}
    assert "anonymous_id" not in people[jane]["identifiers"]


def test_a_split_is_not_undone_by_later_events_or_a_rebuild(api: ApiClient) -> None:
    post_batch(api, *JOURNEY)
    jane = profile_of(api, "user_id:u-1")
    kiosk = split(api, jane, "anonymous_id:a-1").json()["profile_id"]
    again = {"type": "identify", "anonymousId": "a-1", "userId": "u-1", "messageId": "m9",
             "traits": {"email": "jane@example.com"}}  # fmt: skip
    assert post_batch(api, again)["accepted"] == 1
    assert profile_of(api, "user_id:u-1") == jane
    assert profile_of(api, "anonymous_id:a-1") == kiosk
    assert "m9" in timeline_ids(api, jane)  # stored on the more trusted identifier's profile
    rebuilt = api.client.post("/api/v1/identity/rebuild", headers=api.bearer("admin")).json()
    assert rebuilt["events_moved"] == 0 and rebuilt["profiles"] == 2
    assert profile_of(api, "anonymous_id:a-1") == kiosk
    assert profile_of(api, "user_id:u-1") == jane


def test_split_by_a_merged_id_works_on_the_survivor(api: ApiClient) -> None:
    post_batch(api, {"type": "page", "anonymousId": "laptop", "messageId": "p1", "timestamp": T1})
    post_batch(api, {"type": "page", "anonymousId": "tablet", "messageId": "p2", "timestamp": T2})
    laptop, tablet = profile_of(api, "anonymous_id:laptop"), profile_of(api, "anonymous_id:tablet")
    post_batch(
        api,
        {"type": "identify", "userId": "u-9", "anonymousId": "laptop", "messageId": "i1"},
        {"type": "identify", "userId": "u-9", "anonymousId": "tablet", "messageId": "i2"},
    )
    assert profile_of(api, "anonymous_id:tablet") == laptop
    response = split(api, tablet, "anonymous_id:tablet")  # the absorbed id still works
    assert response.status_code == 200
    moved_to = response.json()["profile_id"]
    assert moved_to not in (None, laptop)
    assert profile_of(api, "anonymous_id:tablet") == moved_to
    assert profile_of(api, "user_id:u-9") == laptop


def test_split_errors_say_what_is_wrong_and_change_nothing(api: ApiClient) -> None:
    post_batch(api, *JOURNEY, {"type": "page", "anonymousId": "visitor", "messageId": "v1"})
    jane, visitor = profile_of(api, "user_id:u-1"), profile_of(api, "anonymous_id:visitor")
    cases = [
        ("p_nope", "user_id:u-1", 404, "no profile with id 'p_nope'"),
        (jane, "email:someone@else.com", 404, "has no identifier 'email:someone@else.com'"),
        (jane, "u-1", 400, "must be KIND:VALUE"),
        (jane, "phone:not a phone", 400, "is not a usable phone"),
        (visitor, "anonymous_id:visitor", 409, "is the only identifier"),
    ]
    for profile, identifier, status, complaint in cases:
        response = split(api, profile, identifier)
        assert response.status_code == status, (profile, identifier)
        assert complaint in response.json()["error"]["message"]
    assert api.store.con.execute("SELECT count(*) FROM identity_blocks").fetchone() == (0,)
    assert profile_of(api, "anonymous_id:a-1") == jane  # nothing moved
    assert timeline_ids(api, jane) == ["m3", "m2", "m1"]


def test_split_needs_a_profile_and_an_identifier(api: ApiClient) -> None:
    response = api.client.post(
        "/api/v1/identity/split", json={"profile_id": "p_x"}, headers=api.bearer("admin")
    )
    assert response.status_code == 422


# -- server stats --------------------------------------------------------------------
def test_stats_show_the_processes_memory_duckdbs_share_and_the_writers_state(
    api: ApiClient,
) -> None:
    post_batch(api, *JOURNEY, *BAD)
    response = api.client.get("/api/v1/admin/stats", headers=api.bearer("admin"))
    assert response.status_code == 200
    stats = response.json()
    process = stats["process"]
    assert 0 < process["rss_bytes"] <= process["peak_rss_bytes"]
    duckdb = stats["duckdb"]
    limit = api.store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert duckdb["memory_limit"] == limit
    assert duckdb["memory_bytes"] == sum(t["memory_bytes"] for t in duckdb["tags"]) > 0
    assert {"BASE_TABLE", "HASH_TABLE"} <= {t["tag"] for t in duckdb["tags"]}
    in_memory = {"file_bytes": 0, "used_bytes": 0, "wal_bytes": 0, "block_size": 0}
    assert stats["database"] == in_memory
    assert stats["ingestion"] == {
        "backlog": 0,
        "max_queued_events": 200_000,
        "flushes": 1,
        "dedup_index_entries": 3,  # the three stored events; failures are not indexed
        "dedup_index_bytes": 24,
        "identifiers": 3,  # a-1, u-1, jane's email
    }


def test_process_memory_without_proc_still_has_the_peak(tmp_path: Path) -> None:
    with_proc = process_memory()
    without = process_memory(tmp_path / "no-such-status")
    assert without.rss_bytes is None
    assert without.peak_rss_bytes is not None and without.peak_rss_bytes > 0
    assert with_proc.rss_bytes is not None and with_proc.rss_bytes > 0
