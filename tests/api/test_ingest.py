"""The Segment-compatible ingestion endpoints, over HTTP."""

from __future__ import annotations

import gzip
import json
from typing import Any

import orjson
from fastapi.testclient import TestClient

from opencx.access import add_source
from opencx.api import create_app
from opencx.config import Settings, load_settings
from opencx.store import Store
from tests.conftest import ApiClient, basic_auth


def count(api: ApiClient, sql: str = "SELECT count(*) FROM events") -> int:
    return int(api.store.con.execute(sql).fetchall()[0][0])


def batch(*messages: dict[str, Any], **extra: Any) -> bytes:
    return orjson.dumps({"batch": list(messages), **extra})


VALID = {"type": "track", "event": "Plan Selected", "userId": "u-1", "messageId": "ok-1"}


def test_mixed_batch_stores_exactly_the_valid_events(api: ApiClient) -> None:
    body = batch(
        VALID,
        {"type": "track", "userId": "u-1", "messageId": "bad-no-event"},
        {"type": "page", "anonymousId": "a-1", "name": "Home", "messageId": "ok-2"},
        {"type": "identify", "userId": ["not", "a", "string"], "messageId": "bad-user"},
        {"type": "track", "event": "X", "messageId": "bad-ts", "userId": "u",
         "timestamp": "yesterday"},
    )  # fmt: skip
    response = api.client.post("/v1/batch", content=body, headers=api.ingest_auth)
    assert response.status_code == 200
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (2, 3)
    assert {e["index"] for e in result["errors"]} == {1, 3, 4}
    stored = {m for (m,) in api.store.con.execute("SELECT message_id FROM events").fetchall()}
    assert stored == {"ok-1", "ok-2"}
    failed = dict(api.store.con.execute("SELECT message_id, errors FROM failed_events").fetchall())
    assert set(failed) == {"bad-no-event", "bad-user", "bad-ts"}
    assert json.loads(failed["bad-user"])[0]["field"] == "userId"
    assert json.loads(failed["bad-ts"])[0]["field"] == "timestamp"
    payload = api.store.con.execute(
        "SELECT payload FROM failed_events WHERE message_id = 'bad-no-event'"
    ).fetchall()[0][0]
    assert json.loads(payload) == {"type": "track", "userId": "u-1", "messageId": "bad-no-event"}


def test_same_batch_twice_is_stored_once(api: ApiClient) -> None:
    body = batch(VALID, {**VALID, "messageId": "ok-2"})
    first = api.client.post("/v1/batch", content=body, headers=api.ingest_auth).json()
    second = api.client.post("/v1/batch", content=body, headers=api.ingest_auth).json()
    assert (first["accepted"], second["accepted"], second["duplicates"]) == (2, 0, 2)
    assert count(api) == 2


def test_every_single_message_endpoint_and_short_form(api: ApiClient) -> None:
    calls = {
        "track": {"event": "Bill Paid"}, "identify": {"traits": {"email": "j@x.io"}},
        "page": {"name": "Home"}, "screen": {"name": "Usage"}, "group": {"groupId": "g-1"},
        "alias": {"previousId": "a-9"},
    }  # fmt: skip
    n = 0
    for kind, fields in calls.items():
        for path in (kind, kind[0]):
            n += 1
            body = {"userId": "u-7", "messageId": f"{path}-{n}", **fields}
            response = api.client.post(f"/v1/{path}", json=body, headers=api.ingest_auth)
            assert response.status_code == 200, (path, response.text)
            assert response.json()["accepted"] == 1, (path, response.json())
    types = dict(api.store.con.execute("SELECT type, count(*) FROM events GROUP BY 1").fetchall())
    assert types == {kind: 2 for kind in calls}


def test_write_key_in_body_gzip_and_text_plain(api: ApiClient) -> None:
    body = gzip.compress(batch(VALID, writeKey=api.write_key))
    response = api.client.post(
        "/v1/b", content=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
    )  # fmt: skip
    assert response.status_code == 200 and response.json()["accepted"] == 1


def test_bad_write_key_is_refused_and_nothing_stored(api: ApiClient) -> None:
    for headers in ({}, basic_auth("wk_wrong")):
        response = api.client.post("/v1/batch", content=batch(VALID), headers=headers)
        assert response.status_code == 401
        assert "write key" in response.json()["error"]["message"]
    assert count(api) == 0


def test_malformed_body_is_refused_and_kept(api: ApiClient) -> None:
    response = api.client.post("/v1/batch", content=b'{"batch": [', headers=api.ingest_auth)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]
    assert count(api, "SELECT count(*) FROM failed_events WHERE payload = '{\"batch\": ['") == 1
    response = api.client.post("/v1/batch", json={"events": []}, headers=api.ingest_auth)
    assert response.status_code == 400 and "'batch'" in response.json()["error"]["message"]


def test_size_limits(api: ApiClient) -> None:
    big = {**VALID, "properties": {"blob": "x" * 600_000}}
    response = api.client.post("/v1/batch", content=batch(big), headers=api.ingest_auth)
    assert response.status_code == 413
    many = [{**VALID, "messageId": f"m{i}"} for i in range(2501)]
    response = api.client.post("/v1/batch", content=batch(*many), headers=api.ingest_auth)
    assert response.status_code == 413 and "2500" in response.json()["error"]["message"]
    one = {**VALID, "properties": {"blob": "x" * 40_000}}
    response = api.client.post("/v1/track", json=one, headers=api.ingest_auth)
    assert response.status_code == 413
    # In a batch, an over-size event is rejected on its own; its sibling is stored.
    response = api.client.post(
        "/v1/batch", content=batch(one, {**VALID, "messageId": "small"}), headers=api.ingest_auth
    )
    assert response.json()["accepted"] == 1 and response.json()["rejected"] == 1
    assert count(api) == 1


def test_overload_answers_429_with_retry_after(settings: Settings) -> None:
    busy = load_settings(db=settings.db, profiles_refresh_s=0, max_queued_events=-1)
    with Store() as store:
        _, key = add_source(store.con, "web", "web")
        with TestClient(create_app(busy, store)) as client:
            response = client.post("/v1/batch", content=batch(VALID), headers=basic_auth(key))
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"
        assert store.con.execute("SELECT count(*) FROM events").fetchall() == [(0,)]


def test_cors_preflight_only_for_configured_origins(settings: Settings) -> None:
    shop = load_settings(
        db=settings.db, profiles_refresh_s=0, cors_origins=["https://shop.example"]
    )
    with Store() as store, TestClient(create_app(shop, store)) as client:
        asked = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}  # fmt: skip
        allowed = client.options("/v1/t", headers={"Origin": "https://shop.example", **asked})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        refused = client.options("/v1/t", headers={"Origin": "https://evil.example", **asked})
        assert "access-control-allow-origin" not in refused.headers


def test_sdk_metrics_endpoint_stores_nothing(api: ApiClient) -> None:
    response = api.client.post("/v1/m", content=b'{"series": []}')
    assert response.status_code == 200
    assert count(api) == 0 and count(api, "SELECT count(*) FROM failed_events") == 0


def test_openapi_lists_ingestion_and_read_api(api: ApiClient) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    assert "/v1/batch" in paths and "/v1/track" in paths and "/api/v1/profiles" in paths
