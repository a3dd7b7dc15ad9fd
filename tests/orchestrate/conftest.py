"""Orchestration fixtures: people on a fresh store, their events, consent and history."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from opencx.ingest import Ingestor, SourceContext
from opencx.profiles import find_profiles

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # 10:00 in New York
_ids = itertools.count(1)

Track = Callable[..., None]


def person(ingestor: Ingestor, user_id: str, **traits: Any) -> str:
    """A known customer; returns their profile id."""
    ingestor.ingest(
        [{"type": "identify", "userId": user_id, "messageId": f"id-{user_id}",
          "timestamp": "2026-01-01T00:00:00Z",
          "traits": {"email": f"{user_id}@example.com", **traits}}],
        SourceContext("web", "web"),
    )  # fmt: skip
    [found] = find_profiles(ingestor.store.con, f"user_id:{user_id}")
    return found


@pytest.fixture
def track(ingestor: Ingestor) -> Track:
    """`track("u1", "Email Sent", at, properties={...}, channel="email", context={...})`."""

    def send(
        user_id: str,
        event: str,
        at: datetime,
        *,
        properties: dict[str, Any] | None = None,
        channel: str = "web",
        context: dict[str, Any] | None = None,
        source: str = "web",
    ) -> None:
        message = {
            "type": "track", "userId": user_id, "event": event,
            "messageId": f"t-{next(_ids)}", "timestamp": at.astimezone(UTC).isoformat(),
            "properties": properties or {}, "context": context or {},
        }  # fmt: skip
        result = ingestor.ingest([message], SourceContext(source, channel))
        assert not result.rejected, result.errors

    return send
