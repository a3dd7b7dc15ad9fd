"""The official SDKs talk to a live OpenCX server with only their host changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import rudderstack.analytics as rudder
from segment.analytics import Client as SegmentClient

from tests.conftest import LiveServer


def _journey(client: Any, anonymous_id: str, user_id: str, email: str) -> None:
    """An anonymous page view, then identify with user id and email, then a track."""
    client.page(anonymous_id=anonymous_id, name="Pricing", properties={"path": "/pricing"})
    client.identify(user_id=user_id, anonymous_id=anonymous_id, traits={"email": email})
    client.track(user_id=user_id, event="Plan Selected", properties={"plan": "pro"})
    client.flush()


def _timeline_by_email(server: LiveServer, email: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    found = httpx.get(
        f"{server.url}/api/v1/profiles",
        params={"identifier": f"email:{email}"},
        headers=headers,
    ).json()
    [profile] = found["profiles"]
    page = httpx.get(
        f"{server.url}/api/v1/profiles/{profile['id']}/timeline", headers=headers
    ).json()
    return list(page["items"])


def _errors() -> tuple[list[Exception], Callable[..., None]]:
    seen: list[Exception] = []

    def on_error(error: Exception, _batch: Any) -> None:
        seen.append(error)

    return seen, on_error


@pytest.mark.slow
def test_segment_analytics_python(live_server: LiveServer) -> None:
    errors, on_error = _errors()
    client = SegmentClient(
        live_server.write_key, host=live_server.url, sync_mode=True, on_error=on_error
    )
    _journey(client, "anon-seg-1", "user-seg-1", "Seg.User@Example.com")

    items = _timeline_by_email(live_server, "seg.user@example.com")
    assert errors == []
    assert [(i["type"], i["event"]) for i in reversed(items)] == [
        ("page", "Pricing"),
        ("identify", None),
        ("track", "Plan Selected"),
    ]
    assert {i["channel"] for i in items} == {"web"}


@pytest.mark.slow
def test_rudder_sdk_python_with_gzip(live_server: LiveServer) -> None:
    errors, on_error = _errors()
    client = rudder.Client(
        live_server.write_key, host=live_server.url, gzip=True, sync_mode=True, on_error=on_error
    )
    _journey(client, "anon-rs-1", "user-rs-1", "rudder@example.com")

    items = _timeline_by_email(live_server, "rudder@example.com")
    assert errors == []
    assert [(i["type"], i["event"]) for i in reversed(items)] == [
        ("page", "Pricing"),
        ("identify", None),
        ("track", "Plan Selected"),
    ]


@pytest.mark.slow
def test_sdk_retry_of_the_same_batch_is_stored_once(live_server: LiveServer) -> None:
    client = SegmentClient(live_server.write_key, host=live_server.url, sync_mode=True)
    client.track(user_id="retry-user", event="Bill Paid", message_id="fixed-id-1")
    client.track(user_id="retry-user", event="Bill Paid", message_id="fixed-id-1")
    client.identify(user_id="retry-user", traits={"email": "retry@example.com"})
    client.flush()

    items = _timeline_by_email(live_server, "retry@example.com")
    assert [i["message_id"] for i in items if i["type"] == "track"] == ["fixed-id-1"]
