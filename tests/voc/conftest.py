"""VoC fixtures: an ingestor with known people, and a survey."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from opencx.ingest import Ingestor
from opencx.profiles import find_profiles
from opencx.voc import Survey, save_survey
from tests.conftest import WEB

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CES_AFTER_CALL = """
id: ces-contact
name: After a service contact
touchpoint: call_ended@phone
questions:
  - {id: ease, type: ces}
  - {id: why, type: text, text: "What could we have done better?", required: false}
trigger: {after: call_ended@phone, delay: 1h, channel: sms}
"""


def person(ingestor: Ingestor, user_id: str, **traits: str) -> str:
    """A known customer; returns their profile id."""
    ingestor.ingest(
        [{"type": "identify", "userId": user_id, "messageId": f"id-{user_id}",
          "traits": {"email": f"{user_id}@example.com", **traits}}],
        WEB,
    )  # fmt: skip
    [found] = find_profiles(ingestor.store.con, f"user_id:{user_id}")
    return found


@pytest.fixture
def ces_survey(ingestor: Ingestor) -> Survey:
    return save_survey(ingestor.store.con, CES_AFTER_CALL)
