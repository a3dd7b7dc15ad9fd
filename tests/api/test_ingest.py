"""The Segment-compatible ingestion endpoints, over HTTP, checked on what is stored."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from opencx.access import add_source
from opencx.api import create_app
from opencx.config import Settings, load_settings
from opencx.store import Store
from tests.conftest import ApiClient, basic_auth

Event = Callable[..., dict[str, Any]]


def batch(*messages: Any, **extra: Any) -> bytes:
    return orjson.dumps({"batch": list(messages), **extra})


def count(store: Store, table: str = "events") -> int:
    return int(store.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def stored_ids(store: Store) -> set[str]:
    return {m for (m,) in store.con.execute("SELECT message_id FROM events").fetchall()}


@contextmanager
def server(settings: Settings, **overrides: Any) -> Iterator[tuple[TestClient, Store, str]]:
    """An app with its own in-memory store, one `web` source and these settings changed."""
    changed = load_settings(db=settings.db, profiles_refresh_s=0, **overrides)
    with Store() as store:
        _, key = add_source(store.con, "web", "web")
        with TestClient(create_app(changed, store)) as client:
            yield client, store, key


# -- the endpoints ----------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/batch", "/v1/b"])
def test_a_batch_is_stored(api: ApiClient, event: Event, path: str) -> None:
    messages = [
        event(type="page", name="Plans", anonymousId="a-1"),
        event(type="identify", userId="u-1", anonymousId="a-1", traits={"email": "j@x.io"}),
        event(event="Plan Selected", userId="u-1", properties={"plan": "gold"}),
    ]
    response = api.client.post(path, content=batch(*messages), headers=api.ingest_auth)
    assert response.status_code == 200
    assert response.json() == {"success": True, "accepted": 3, "duplicates": 0, "rejected": 0}
    rows = api.store.con.execute(
        "SELECT type, event, channel, source, properties->>'$.plan' FROM events ORDER BY seq"
    ).fetchall()
    assert rows == [
        ("page", "Plans", "web", "web", None),
        ("identify", None, "web", "web", None),
        ("track", "Plan Selected", "web", "web", "gold"),
    ]
    people = api.store.con.execute("SELECT DISTINCT person_id FROM resolved_events").fetchall()
    assert len(people) == 1


SINGLE = {
    "track": ({"event": "Bill Paid"}, "event", "Bill Paid"),
    "identify": ({"traits": {"email": "j@x.io"}}, "identifiers", ["user_id:u-7", "email:j@x.io"]),
    "page": ({"name": "Home"}, "event", "Home"),
    "screen": ({"name": "Usage"}, "event", "Usage"),
    "group": ({"groupId": "g-1"}, "group_id", "g-1"),
    "alias": ({"previousId": "a-9"}, "previous_id", "a-9"),
}


@pytest.mark.parametrize("kind", list(SINGLE))
def test_every_single_message_endpoint_and_its_short_form(api: ApiClient, kind: str) -> None:
    fields, column, value = SINGLE[kind]
    # analytics-next posts typed messages to /v1/t, /v1/i, ...; the HTTP API needs no type.
    calls = {
        f"/v1/{kind[0]}": {"type": kind, "messageId": f"ajs-next-1700000000000-{kind}"},
        f"/v1/{kind}": {"messageId": f"http-{kind}"},
    }
    for path, extra in calls.items():
        body = {"userId": "u-7", **fields, **extra}
        response = api.client.post(path, content=orjson.dumps(body), headers=api.ingest_auth)
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 1, path
    rows = api.store.con.execute(f"SELECT type, user_id, {column} FROM events").fetchall()
    assert rows == [(kind, "u-7", value)] * 2


def test_a_single_endpoint_refuses_an_invalid_message_with_200_and_keeps_it(
    api: ApiClient,
) -> None:
    body = {"userId": "u-7", "messageId": "no-event"}
    response = api.client.post("/v1/t", json=body, headers=api.ingest_auth)
    assert response.status_code == 200
    assert response.json()["rejected"] == 1
    assert response.json()["errors"][0]["errors"][0]["field"] == "event"
    assert count(api.store) == 0
    [(payload,)] = api.store.con.execute("SELECT payload FROM failed_events").fetchall()
    assert json.loads(payload) == body


# -- authentication ------------------------------------------------------------------------
def test_basic_auth_with_the_write_key_as_user_name(api: ApiClient, event: Event) -> None:
    token = base64.b64encode(f"{api.write_key}:".encode()).decode()
    for path, body in (("/v1/batch", batch(event())), ("/v1/t", orjson.dumps(event()))):
        response = api.client.post(path, content=body, headers={"Authorization": f"Basic {token}"})
        assert response.status_code == 200 and response.json()["accepted"] == 1
    assert count(api.store) == 2


def test_write_key_in_the_body(api: ApiClient, event: Event) -> None:
    response = api.client.post("/v1/batch", content=batch(event(), writeKey=api.write_key))
    assert response.status_code == 200 and response.json()["accepted"] == 1
    single = {**event(type="page", name="Home"), "writeKey": api.write_key}
    response = api.client.post("/v1/p", content=orjson.dumps(single))
    assert response.status_code == 200 and response.json()["accepted"] == 1
    assert count(api.store) == 2


@pytest.mark.parametrize(
    ("headers", "extra", "says"),
    [
        ({}, {}, "a write key is required"),
        (basic_auth("wk_wrong"), {}, "the write key is not valid"),
        ({}, {"writeKey": "wk_wrong"}, "the write key is not valid"),
        ({"Authorization": "Basic !!not-base64!!"}, {}, "not valid Basic credentials"),
        ({"Authorization": "Bearer wk_wrong"}, {}, "a write key is required"),
    ],
    ids=["missing", "wrong-basic", "wrong-body", "garbled", "bearer"],
)
def test_a_wrong_or_missing_write_key_is_refused_and_nothing_stored(
    api: ApiClient, event: Event, headers: dict[str, str], extra: dict[str, str], says: str
) -> None:
    bodies = {
        "/v1/batch": batch(event(), **extra),
        "/v1/track": orjson.dumps({**event(), **extra}),
    }
    for path, body in bodies.items():
        response = api.client.post(path, content=body, headers=headers)
        assert response.status_code == 401, path
        assert says in response.json()["error"]["message"]
        assert response.headers["WWW-Authenticate"] == 'Basic realm="opencx"'
    assert count(api.store) == 0 and count(api.store, "failed_events") == 0


def test_a_malformed_body_with_a_wrong_key_is_refused_and_not_kept(api: ApiClient) -> None:
    response = api.client.post("/v1/batch", content=b'{"batch": [', headers=basic_auth("wk_x"))
    assert response.status_code == 401
    assert count(api.store, "failed_events") == 0


# -- encodings ------------------------------------------------------------------------------
def test_gzip_bodies(api: ApiClient, event: Event) -> None:
    gz = {**api.ingest_auth, "Content-Encoding": "gzip"}
    response = api.client.post("/v1/batch", content=gzip.compress(batch(event())), headers=gz)
    assert response.status_code == 200 and response.json()["accepted"] == 1
    response = api.client.post("/v1/t", content=gzip.compress(orjson.dumps(event())), headers=gz)
    assert response.status_code == 200 and response.json()["accepted"] == 1
    assert count(api.store) == 2


def test_a_corrupt_gzip_body_is_refused(api: ApiClient, event: Event) -> None:
    gz = {**api.ingest_auth, "Content-Encoding": "gzip"}
    response = api.client.post("/v1/batch", content=batch(event()), headers=gz)
    assert response.status_code == 400
    assert "not valid gzip" in response.json()["error"]["message"]
    assert count(api.store) == 0


def test_text_plain_from_the_browser_sdk(api: ApiClient, event: Event) -> None:
    plain = {**api.ingest_auth, "Content-Type": "text/plain"}
    page = event(type="page", name="Home", messageId="ajs-next-1700000000000-9f1c")
    response = api.client.post("/v1/p", content=orjson.dumps(page), headers=plain)
    assert response.status_code == 200 and response.json()["accepted"] == 1
    body = batch(event(), writeKey=api.write_key)
    response = api.client.post("/v1/b", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 200 and response.json()["accepted"] == 1
    assert "ajs-next-1700000000000-9f1c" in stored_ids(api.store)
    assert count(api.store) == 2


# -- a bad event never poisons its batch ------------------------------------------------------
@pytest.fixture(params=["in the server", "in a worker"])
def any_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiClient]:
    """The API validating server-side batches in its own process, or in a worker process."""
    workers = 0 if request.param == "in the server" else 1
    settings = load_settings(
        db=tmp_path / "x.duckdb", profiles_refresh_s=0, orchestrate_every_s=0,
        segments_every_s=0, ingest_workers=workers,
    )  # fmt: skip
    with Store() as s:
        _, key = add_source(s.con, "web", "web")
        with TestClient(create_app(settings, s)) as client:
            yield ApiClient(client, s, key, {})
            sent = client.app.state.opencx.ingestor.bodies.sent  # bodies a worker validated
            assert sent >= 1 if workers else sent == 0


def test_a_mixed_batch_stores_exactly_the_valid_events(any_api: ApiClient) -> None:
    api = any_api
    body = batch(
        {"type": "track", "event": "Plan Selected", "userId": "u-1", "messageId": "ok-1"},
        {"type": "track", "userId": "u-1", "messageId": "bad-no-event"},
        {"type": "page", "anonymousId": "a-1", "name": "Home", "messageId": "ok-2"},
        {"type": "identify", "userId": ["not", "a", "string"], "messageId": "bad-user"},
        {"type": "track", "event": "X", "messageId": "bad-ts", "userId": "u",
         "timestamp": "yesterday"},
        {"type": "track", "event": "X", "messageId": "bad-channel", "userId": "u",
         "context": {"channel": "fax"}},
    )  # fmt: skip
    response = api.client.post("/v1/batch", content=body, headers=api.ingest_auth)
    assert response.status_code == 200
    result = response.json()
    assert (result["accepted"], result["rejected"], result["duplicates"]) == (2, 4, 0)
    by_index = {e["index"]: (e["messageId"], [x["field"] for x in e["errors"]])
                for e in result["errors"]}  # fmt: skip
    assert by_index == {
        1: ("bad-no-event", ["event"]),
        3: ("bad-user", ["userId"]),
        4: ("bad-ts", ["timestamp"]),
        5: ("bad-channel", ["context.channel"]),
    }
    assert stored_ids(api.store) == {"ok-1", "ok-2"}
    failed = {
        m: (source, json.loads(payload), json.loads(errors))
        for m, source, payload, errors in api.store.con.execute(
            "SELECT message_id, source, payload, errors FROM failed_events"
        ).fetchall()
    }
    assert set(failed) == {"bad-no-event", "bad-user", "bad-ts", "bad-channel"}
    source, payload, errors = failed["bad-no-event"]
    assert source == "web"
    assert payload == {"type": "track", "userId": "u-1", "messageId": "bad-no-event"}
    assert errors == [
        {"field": "event",
         "message": "event is required for a track call (the action's name), got null"}
    ]  # fmt: skip
    assert failed["bad-user"][2] == [
        {"field": "userId", "message": "userId must be a string, got an array"}
    ]


def test_the_same_batch_twice_is_stored_once(any_api: ApiClient, event: Event) -> None:
    api = any_api
    without_id = {"type": "page", "name": "Plans", "anonymousId": "a-1"}
    messages = [event(), event(type="page", name="Home"), without_id]
    first = api.client.post(
        "/v1/batch", content=batch(*messages, sentAt="2026-11-24T10:00:00Z"),
        headers=api.ingest_auth,
    )  # fmt: skip
    retry = api.client.post(
        "/v1/batch", content=batch(*messages, sentAt="2026-11-24T10:00:09Z"),
        headers={**api.ingest_auth, "X-Retry-Count": "1"},
    )  # fmt: skip
    assert (first.json()["accepted"], first.json()["duplicates"]) == (3, 0)
    assert (retry.json()["accepted"], retry.json()["duplicates"]) == (0, 3)
    assert count(api.store) == 3


def test_clock_skew_is_corrected_with_the_batch_sent_at(api: ApiClient, event: Event) -> None:
    # The device clock is a day behind: it stamped the event 5 s before sending the batch.
    body = batch(event(timestamp="2026-11-23T10:00:00Z"), sentAt="2026-11-23T10:00:05.000Z")
    assert api.client.post("/v1/batch", content=body, headers=api.ingest_auth).status_code == 200
    [(skew, original)] = api.store.con.execute(
        "SELECT epoch_us(received_at) - epoch_us(timestamp), "
        "strftime(original_timestamp, '%Y-%m-%d %H:%M:%S') FROM events"
    ).fetchall()
    assert (skew, original) == (5_000_000, "2026-11-23 10:00:00")


def test_timestamps_are_parsed_tolerantly_over_http(api: ApiClient, event: Event) -> None:
    forms = [
        "2026-11-24T10:15:00.000Z", "2026-11-24T10:15:00Z", "2026-11-24T10:15:00",
        "2026-11-24 10:15:00", "2026-11-24T12:15:00+02:00", "2026-11-24T10:15:00+0000",
        "2026-11-24T10:15:00.0000000Z", 1_795_515_300, 1_795_515_300_000,
    ]  # fmt: skip
    body = batch(*[event(timestamp=form) for form in forms])
    response = api.client.post("/v1/batch", content=body, headers=api.ingest_auth)
    assert response.json()["accepted"] == len(forms)
    stamps = api.store.con.execute(
        "SELECT DISTINCT strftime(timestamp, '%Y-%m-%d %H:%M:%S.%f') FROM events"
    ).fetchall()
    assert stamps == [("2026-11-24 10:15:00.000000",)]


# -- refused as a whole ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/batch", b'{"batch": ['),
        ("/v1/b", b'{"batch": [{"type": "page"'),
        ("/v1/track", b'{"type": "track", "event": "E",'),
        ("/v1/t", b"event=E&userId=u-1"),
    ],
)
def test_malformed_json_is_refused_and_the_raw_body_kept(
    api: ApiClient, path: str, body: bytes
) -> None:
    response = api.client.post(path, content=body, headers=api.ingest_auth)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]
    [(source, payload, errors)] = api.store.con.execute(
        "SELECT source, payload, errors FROM failed_events"
    ).fetchall()
    assert (source, payload) == ("web", body.decode())
    assert json.loads(errors)[0]["field"] == "body"
    assert count(api.store) == 0


@pytest.mark.parametrize("body", [b'{"events": []}', b'{"batch": {"a": 1}}', b"[1, 2]"])
def test_a_batch_body_without_a_batch_array_is_refused_and_kept(
    api: ApiClient, body: bytes
) -> None:
    response = api.client.post("/v1/batch", content=body, headers=api.ingest_auth)
    assert response.status_code == 400
    assert "'batch' array" in response.json()["error"]["message"]
    assert api.store.con.execute("SELECT payload FROM failed_events").fetchall() == [
        (body.decode(),)
    ]


def test_a_body_over_500_kb_is_refused(api: ApiClient, event: Event) -> None:
    big = batch(*[event(properties={"blob": "x" * 20_000}) for _ in range(26)])
    assert len(big) > 500 * 1024
    response = api.client.post("/v1/batch", content=big, headers=api.ingest_auth)
    assert response.status_code == 413
    assert "limit is 512000" in response.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is counted as it streams
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    response = api.client.post("/v1/batch", content=chunks(), headers=api.ingest_auth)
    assert response.status_code == 413
    assert count(api.store) == 0 and count(api.store, "failed_events") == 0


def test_a_gzip_body_over_500_kb_once_inflated_is_refused(api: ApiClient, event: Event) -> None:
    big = gzip.compress(batch(*[event(properties={"blob": "x" * 20_000}) for _ in range(30)]))
    assert len(big) < 10_000
    headers = {**api.ingest_auth, "Content-Encoding": "gzip"}
    response = api.client.post("/v1/batch", content=big, headers=headers)
    assert response.status_code == 413
    assert count(api.store) == 0


def test_more_than_2500_events_are_refused_and_2500_accepted(api: ApiClient) -> None:
    def messages(n: int, prefix: str) -> list[dict[str, Any]]:
        return [{"type": "page", "anonymousId": "a", "messageId": f"{prefix}{i}"} for i in range(n)]

    response = api.client.post(
        "/v1/batch", content=batch(*messages(2501, "x")), headers=api.ingest_auth
    )
    assert response.status_code == 413
    assert "2501 events; the limit is 2500" in response.json()["error"]["message"]
    assert count(api.store) == 0
    response = api.client.post(
        "/v1/batch", content=batch(*messages(2500, "y")), headers=api.ingest_auth
    )
    assert response.status_code == 200 and response.json()["accepted"] == 2500
    assert count(api.store) == 2500


def test_a_single_event_over_32_kb_is_refused(api: ApiClient, event: Event) -> None:
    big = event(properties={"blob": "x" * 33_000})
    response = api.client.post("/v1/track", content=orjson.dumps(big), headers=api.ingest_auth)
    assert response.status_code == 413
    assert "limit is 32768" in response.json()["error"]["message"]
    response = api.client.post("/v1/t", content=orjson.dumps({**big, "writeKey": api.write_key}))
    assert response.status_code == 413
    assert count(api.store) == 0


def test_in_a_batch_an_event_over_32_kb_is_refused_alone(api: ApiClient, event: Event) -> None:
    big, small = event(properties={"blob": "x" * 33_000}), event()
    bloated = event(integrations={"Custom": {"blob": "x" * 33_000}})
    response = api.client.post(
        "/v1/batch", content=batch(big, small, bloated), headers=api.ingest_auth
    )
    assert response.status_code == 200
    assert (response.json()["accepted"], response.json()["rejected"]) == (1, 2)
    assert [e["index"] for e in response.json()["errors"]] == [0, 2]
    assert stored_ids(api.store) == {small["messageId"]}
    assert count(api.store, "failed_events") == 2


# -- browser SDK extras ----------------------------------------------------------------------
def test_sdk_metrics_are_answered_and_not_stored(api: ApiClient) -> None:
    metrics = {"series": [{"type": "Counter", "metric": "analytics_js.invoke", "value": 1}]}
    response = api.client.post(
        "/v1/m", content=orjson.dumps(metrics), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200
    assert count(api.store) == 0 and count(api.store, "failed_events") == 0


def test_cors_preflight_only_for_configured_origins(settings: Settings, event: Event) -> None:
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    with server(settings, cors_origins=["https://shop.example"]) as (client, store, key):
        allowed = client.options("/v1/t", headers={"Origin": "https://shop.example", **asked})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
        allow_headers = allowed.headers["access-control-allow-headers"].lower()
        assert "authorization" in allow_headers and "content-type" in allow_headers
        assert "POST" in allowed.headers["access-control-allow-methods"]

        refused = client.options("/v1/t", headers={"Origin": "https://evil.example", **asked})
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers

        # The POST that follows the preflight is answered with the CORS header too.
        headers = {
            "Origin": "https://shop.example",
            "Content-Type": "text/plain",
            **basic_auth(key),
        }
        response = client.post("/v1/t", content=orjson.dumps(event()), headers=headers)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://shop.example"
        assert count(store) == 1


# -- overload and discovery ---------------------------------------------------------------------
def test_overload_answers_429_with_retry_after_and_stores_nothing(
    settings: Settings, event: Event
) -> None:
    with server(settings, max_queued_events=-1) as (client, store, key):
        bodies = {
            "/v1/batch": batch(event()),  # the server-side SDKs' fast path
            "/v1/b": batch(event(), writeKey=key),
            "/v1/track": orjson.dumps(event()),
        }
        for path, body in bodies.items():
            response = client.post(path, content=body, headers=basic_auth(key))
            assert response.status_code == 429, path
            assert response.headers["Retry-After"] == "1"
            assert "retry" in response.json()["error"]["message"]
        assert count(store) == 0 and count(store, "failed_events") == 0


def test_openapi_lists_ingestion_and_the_read_api(api: ApiClient) -> None:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/v1/batch", "/v1/track", "/v1/identify", "/v1/page", "/v1/alias"):
        assert "post" in paths[path], path
    assert "get" in paths["/api/v1/profiles"]
