"""Two people with data in every table that can hold data about a person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from opencx.ingest import Ingestor, SourceContext
from opencx.profiles import find_profiles, refresh_profiles

WEB = SourceContext("web", "web")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

# What identifies Xavier, as sent (mixed case, a formatted phone) and as stored.
XAVIER_SENT = ("Xavier.Quist@Example.com", "(555) 010-7788", "xq-user-4242", "anon-xq-9911")
XAVIER_VALUES = ("xavier.quist@example.com", "+15550107788", "xq-user-4242", "anon-xq-9911")


def xavier_events() -> list[dict[str, object]]:
    """An anonymous visit, then a sign-in that merges it; an order; consent; a survey answer."""
    email, phone, user, anon = XAVIER_SENT
    return [
        {"type": "page", "messageId": "xq-1", "anonymousId": anon, "name": "Home",
         "context": {"ip": "203.0.113.77", "userAgent": "XQ-Browser/1.0"},
         "timestamp": "2026-11-20T09:00:00Z"},
        {"type": "identify", "messageId": "xq-2", "userId": user,
         "traits": {"email": email, "phone": phone, "name": "Xavier Quist"},
         "timestamp": "2026-11-20T09:05:00Z"},
        {"type": "track", "messageId": "xq-2b", "event": "Signed In", "userId": user,
         "anonymousId": anon, "timestamp": "2026-11-20T09:06:00Z"},
        {"type": "track", "messageId": "xq-3", "event": "Order Completed", "userId": user,
         "properties": {"order_id": "o-1", "total": 120.0, "shipping_city": "Quistville"},
         "context": {"consent": {"categoryPreferences": {"marketing": True}}},
         "timestamp": "2026-11-21T12:00:00Z"},
        {"type": "track", "messageId": "xq-4", "event": "Survey Responded", "userId": user,
         "properties": {"survey_id": "nps-1", "survey_type": "nps", "score": 3,
                        "comment": "slow delivery"},
         "timestamp": "2026-11-22T08:00:00Z"},
    ]  # fmt: skip


def bianca_events() -> list[dict[str, object]]:
    return [
        {"type": "identify", "messageId": "bz-1", "userId": "bz-user-1",
         "traits": {"email": "bianca@example.org", "name": "Bianca"},
         "timestamp": "2026-11-20T10:00:00Z"},
        {"type": "track", "messageId": "bz-2", "event": "Order Completed", "userId": "bz-user-1",
         "properties": {"order_id": "o-2", "total": 40.0}, "timestamp": "2026-11-21T10:00:00Z"},
        # Bianca on a shared device, under Xavier's email: the link is refused (one user id).
        {"type": "identify", "messageId": "bz-3", "userId": "bz-user-1",
         "traits": {"email": XAVIER_SENT[0], "plan": "gold"},
         "timestamp": "2026-11-23T10:00:00Z"},
    ]  # fmt: skip


@dataclass
class People:
    xavier: str
    bianca: str


def add_person_rows(ingestor: Ingestor, person: str, tag: str) -> None:
    """One row for `person` in each table the other packages write about people."""
    con = ingestor.store.con
    con.execute(
        "INSERT INTO survey_invitations (id, token_hash, survey_id, person_id, channel, "
        "created_at, expires_at) VALUES (?, ?, 'nps-1', ?, 'email', ?, ?)",
        [f"inv-{tag}", f"th-{tag}", person, NOW, NOW + timedelta(days=7)],
    )
    con.execute(
        "INSERT INTO cases (id, person_id, source_message_id, rule, reason, queue, priority, "
        "status, opened_at, due_at, comment) VALUES (?, ?, ?, 'detractor', 'score 3', 'care', "
        "'high', 'open', ?, ?, 'slow delivery')",
        [f"case-{tag}", person, f"answer-{tag}", NOW, NOW + timedelta(days=1)],
    )
    con.execute(
        "INSERT INTO case_notes VALUES (?, ?, 'agent@brand.test', 'called back')",
        [f"case-{tag}", NOW],
    )
    con.execute("INSERT INTO segment_members VALUES ('vip', ?, ?)", [person, NOW])
    con.execute("INSERT INTO computed_traits VALUES (?, 'ltv', '120', ?)", [person, NOW])
    con.execute(
        "INSERT INTO decisions (id, key, decided_at, person_id, action, channel, purpose, "
        "outcome, reasons, outbox_id) VALUES (?, 'k', ?, ?, 'winback', 'email', 'marketing', "
        "'send', '[]', ?)",
        [f"dec-{tag}", NOW, person, f"ob-{tag}"],
    )
    con.execute(
        "INSERT INTO outbox (id, idempotency_key, decision_id, person_id, action, channel, "
        "purpose, adapter, destination, payload, status, next_attempt_at, created_at) VALUES "
        "(?, ?, ?, ?, 'winback', 'email', 'marketing', 'email', ?, '{}', 'pending', ?, ?)",
        [f"ob-{tag}", f"idem-{tag}", f"dec-{tag}", person, f"dest-{tag}", NOW, NOW],
    )
    con.execute(
        "INSERT INTO agent_tasks (id, person_id, created_at, title) VALUES (?, ?, ?, 'Call')",
        [f"task-{tag}", person, NOW],
    )
    con.execute(
        "INSERT INTO audit_log (logged_at, actor, action, target_kind, target, details) "
        "VALUES (?, 'admin', 'profile.view', 'profile', ?, ?)",
        [NOW, person, f'{{"profile": "{person}"}}'],
    )


@pytest.fixture
def people(ingestor: Ingestor) -> People:
    """Xavier (merged profiles, a failed event, a refused link) and Bianca, in every table."""
    result = ingestor.ingest([*xavier_events(), *bianca_events()], WEB)
    assert result.rejected == 0
    # A message that failed validation but names Xavier as he typed it.
    bad = ingestor.ingest(
        [{"type": "track", "messageId": "xq-bad", "event": "Survey Responded",
          "userId": XAVIER_SENT[2], "properties": {"score": "lots"}}],
        WEB,
    )  # fmt: skip
    assert bad.rejected == 1
    con = ingestor.store.con
    refresh_profiles(con)
    xavier = find_profiles(con, f"email:{XAVIER_VALUES[0]}")[0]
    bianca = find_profiles(con, "email:bianca@example.org")[0]
    add_person_rows(ingestor, xavier, "x")
    add_person_rows(ingestor, bianca, "b")
    con.execute(
        "INSERT INTO identity_blocks (identifier, other, split_from) VALUES (?, ?, ?)",
        [f"user_id:{XAVIER_VALUES[2]}", "user_id:bz-user-1", xavier],
    )
    ingestor.writer.reload_identity()
    return People(xavier, bianca)
