"""Rate limits (429 with Retry-After) per write key, per token and per sign-in address,
and request size limits (413) on every body the API and the web forms take."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from opencx.access import add_source, add_user, create_token
from opencx.api import create_app
from opencx.api._limits import TokenBucket
from opencx.config import RateLimitSettings, Settings
from opencx.store import Store
from tests.conftest import basic_auth

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def server(settings: Settings, **limits: Any) -> Iterator[tuple[TestClient, str, dict[str, str]]]:
    """A client on a fresh store with these rate limits; its write key and tokens by role."""
    tuned = settings.model_copy(update={"rate_limits": RateLimitSettings(**limits)})
    with Store() as store:
        _, key = add_source(store.con, "web", "web")
        tokens = {r: create_token(store.con, r, r)[1] for r in ("admin", "analyst", "agent")}
        add_user(store.con, "ann@example.com", "admin", PASSWORD)
        with TestClient(create_app(tuned, store)) as client:
            yield client, key, tokens


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# -- the bucket ----------------------------------------------------------------------
def test_a_bucket_allows_its_burst_then_says_how_long_to_wait() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert [bucket.take("k") for _ in range(3)] == [0, 0, 0]
    assert bucket.take("k") == 0.5  # one token comes back every half second
    assert bucket.take("other") == 0  # each key has its own bucket
    clock.now += 0.5
    assert bucket.take("k") == 0
    clock.now += 60  # refills up to the burst, no further
    assert [bucket.take("k") for _ in range(4)] == [0, 0, 0, 0.5]


def test_looking_does_not_spend_and_zero_means_no_limit() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    assert bucket.take("k", spend=False) == 0 and bucket.take("k", spend=False) == 0
    assert bucket.take("k") == 0 and bucket.take("k", spend=False) == 1.0
    unlimited = TokenBucket(rate=0, burst=1, clock=clock)
    assert not unlimited.enabled and all(unlimited.take("k") == 0 for _ in range(1000))


def test_the_default_ingestion_limit_lets_the_benchmark_rate_through() -> None:
    # make bench: ~45,000 events/s in 100-event batches = ~450 requests/s from one source.
    clock, defaults = Clock(), RateLimitSettings()
    bucket = TokenBucket(defaults.ingest_per_s, defaults.ingest_burst, clock=clock)
    refused = 0
    for _ in range(450 * 60):  # one minute, a request every 1/450 s
        refused += bucket.take("key:wk_bench") > 0
        clock.now += 1 / 450
    assert refused == 0
    assert defaults.ingest_per_s >= 4 * 450  # and room for bursts four times that


def test_forgotten_buckets_are_only_full_ones(monkeypatch: Any) -> None:
    monkeypatch.setattr("opencx.api._limits._MAX_KEYS", 3)
    clock = Clock()
    bucket = TokenBucket(rate=1, burst=2, clock=clock)
    bucket.take("busy")
    bucket.take("busy")
    clock.now += 0.1
    bucket.take("idle-1")
    bucket.take("idle-2")
    clock.now += 5  # the idle ones are full again; "busy" has refilled too
    bucket.take("busy")
    bucket.take("busy")
    bucket.take("new")  # over the cap: the full buckets are dropped, "busy" is kept
    assert bucket.take("busy") > 0


# -- per write key, per token, per address -----------------------------------------
def test_a_write_key_over_its_rate_gets_429_with_retry_after(settings: Settings) -> None:
    with server(settings, ingest_per_s=1, ingest_burst=2) as (client, key, _):

        def batch(n: int) -> dict[str, Any]:
            return {"batch": [{"type": "track", "event": "E", "userId": "u1", "messageId": f"{n}"}]}

        for n in range(2):
            assert (
                client.post("/v1/batch", json=batch(n), headers=basic_auth(key)).status_code == 200
            )
        refused = client.post("/v1/batch", json=batch(3), headers=basic_auth(key))
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert (
            "rate limit of 1 requests a second per write key" in refused.json()["error"]["message"]
        )
        # The short forms and the regular route count against the same key.
        single = client.post("/v1/track", json={"event": "E", "userId": "u1"},
                             headers=basic_auth(key))  # fmt: skip
        assert single.status_code == 429
        state = client.app.state.opencx  # type: ignore[attr-defined]
        assert state.store.con.execute("SELECT count(*) FROM events").fetchone() == (2,)


def test_browser_requests_with_the_key_in_the_body_are_counted_per_address(
    settings: Settings,
) -> None:
    with server(settings, ingest_per_s=1, ingest_burst=1) as (client, key, _):
        message = {"writeKey": key, "event": "E", "anonymousId": "a1"}
        assert client.post("/v1/t", json=message).status_code == 200
        assert client.post("/v1/t", json=message).status_code == 429
        # Another address is not blocked by this one (the key is public on a web page).
        other = TestClient(client.app, client=("203.0.113.9", 5000))
        assert other.post("/v1/t", json=message).status_code == 200


def test_an_api_token_over_its_rate_gets_429_and_others_are_not_affected(
    settings: Settings,
) -> None:
    with server(settings, api_per_s=1, api_burst=3) as (client, _, tokens):
        for _ in range(3):
            assert client.get("/api/v1/cases", headers=bearer(tokens["agent"])).status_code == 200
        refused = client.get("/api/v1/cases", headers=bearer(tokens["agent"]))
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"] == {
            "type": "Overloaded",
            "message": "this API token is over its rate limit of 1 requests a second "
            "(burst 3): retry after 1 s",
        }
        assert client.get("/api/v1/cases", headers=bearer(tokens["admin"])).status_code == 200
        # A wrong token is refused as such, and does not spend anyone's allowance.
        assert client.get("/api/v1/cases", headers=bearer("ocx_wrong")).status_code == 401


def _login_csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert found
    return found.group(1)


def sign_in(client: TestClient, password: str) -> Any:
    data = {"email": "ann@example.com", "password": password, "csrf": _login_csrf(client)}
    return client.post("/login", data=data, follow_redirects=False)


def test_failed_sign_ins_are_limited_per_address_and_successes_are_free(
    settings: Settings,
) -> None:
    with server(settings, login_per_min=1, login_burst=3) as (client, _, _):
        for _ in range(6):
            assert sign_in(client, PASSWORD).headers["location"] == "/"
        for _ in range(3):
            assert "error=" in sign_in(client, "guess guess guess").headers["location"]
        refused = sign_in(client, PASSWORD)  # even the right password waits now
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) == 60
        assert "too many failed sign-ins from this address" in refused.text
        assert "script-src 'self'" in refused.headers["content-security-policy"]
        other = TestClient(client.app, client=("203.0.113.9", 5000))
        assert sign_in(other, PASSWORD).headers["location"] == "/"


# -- request size -------------------------------------------------------------------
def test_api_bodies_over_the_limit_get_413_with_the_limit(settings: Settings) -> None:
    with server(settings, max_body_bytes=1000) as (client, _, tokens):
        admin = bearer(tokens["admin"])
        big = "rules: []\n" + "# padding\n" * 200
        for method, path in (("PUT", "/api/v1/policy"), ("PUT", "/api/v1/triggers"),
                             ("PUT", "/api/v1/journeys/touchpoints"),
                             ("POST", "/api/v1/policy/simulate")):  # fmt: skip
            response = client.request(method, path, content=big, headers=admin)
            assert response.status_code == 413, path
            assert response.json()["error"] == {
                "type": "PayloadTooLarge",
                "message": "request body is 2010 bytes; the limit is 1000 bytes "
                "(setting rate_limits.max_body_bytes)",
            }

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(30):
                yield b"x" * 100

        chunked = client.put("/api/v1/policy", content=chunks(), headers=admin)
        assert chunked.status_code == 413
        assert "over the limit; the limit is 1000 bytes" in chunked.json()["error"]["message"]
        # Under the limit the body reaches the endpoint whole.
        small = client.post("/api/v1/policy/simulate", content=b"", headers=admin)
        assert small.status_code == 200


def test_web_forms_over_the_limit_get_a_413_page(settings: Settings) -> None:
    with server(settings, max_body_bytes=2000) as (client, _, _):
        assert sign_in(client, PASSWORD).status_code == 303
        response = client.post("/policy", data={"text": "x" * 5000, "csrf": "c"})
        assert response.status_code == 413
        assert "text/html" in response.headers["content-type"]
        assert "the limit is 2000 bytes" in response.text
        assert response.headers["x-frame-options"] == "DENY"


def test_ingestion_keeps_its_own_limits(settings: Settings) -> None:
    with server(settings, max_body_bytes=100) as (client, key, _):
        batch = {"batch": [{"type": "track", "event": "E" * 200, "userId": "u1"}]}
        assert client.post("/v1/batch", json=batch, headers=basic_auth(key)).status_code == 200
        too_big = b'{"batch": [' + b" " * settings.max_batch_bytes + b"]}"
        response = client.post("/v1/batch", content=too_big, headers=basic_auth(key))
        assert response.status_code == 413
        assert f"the limit is {settings.max_batch_bytes}" in response.json()["error"]["message"]
        # The SDK-metrics sink takes no credentials, so it is size-limited here.
        assert client.post("/v1/m", content=b"x" * 500).status_code == 413
