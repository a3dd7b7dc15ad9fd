"""The audit log: one row per act, read back newest first, filtered by target and actor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opencx.access import AuditBuffer, audit_entries, record
from opencx.errors import InvalidInput
from opencx.store import Store


def test_an_entry_is_read_back_with_its_details(store: Store) -> None:
    record(store.con, "user:ann@example.com", "profile.view", "profile", "p_1", client="10.0.0.7")
    record(store.con, "token:crm", "privacy.export", "profile", "p_1", {"format": "zip"})
    newest, oldest = audit_entries(store.con)
    assert (newest.actor, newest.action, newest.target, newest.details) == (
        "token:crm", "privacy.export", "p_1", {"format": "zip"},
    )  # fmt: skip
    assert (oldest.actor, oldest.client, oldest.details) == ("user:ann@example.com", "10.0.0.7", {})
    assert oldest.id < newest.id and oldest.logged_at.tzinfo is not None


def test_entries_filter_by_person_actor_action_and_time(store: Store) -> None:
    record(store.con, "user:ann@example.com", "profile.view", "profile", "p_1")
    record(store.con, "user:bob@example.com", "profile.view", "profile", "p_2")
    record(store.con, "user:bob@example.com", "profile.timeline", "profile", "p_1")
    record(store.con, "user:bob@example.com", "token.create", "token", "t_9")
    who_saw_p1 = audit_entries(store.con, target="p_1")
    assert [e.actor for e in who_saw_p1] == ["user:bob@example.com", "user:ann@example.com"]
    bob = audit_entries(store.con, actor="user:bob@example.com", action="profile.")
    assert [(e.action, e.target) for e in bob] == [
        ("profile.timeline", "p_1"),
        ("profile.view", "p_2"),
    ]
    assert [e.target for e in audit_entries(store.con, action="token.create")] == ["t_9"]
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert audit_entries(store.con, since=later) == []
    assert len(audit_entries(store.con, limit=2)) == 2


def test_bad_queries_and_entries_are_refused_with_the_reason(store: Store) -> None:
    with pytest.raises(InvalidInput, match="limit must be between 1 and 10000"):
        audit_entries(store.con, limit=0)
    with pytest.raises(InvalidInput, match="since must include a time zone"):
        audit_entries(store.con, since=datetime(2026, 1, 1))
    with pytest.raises(InvalidInput, match="needs an actor and an action"):
        record(store.con, " ", "profile.view")
    assert audit_entries(store.con) == []


def test_details_that_are_not_plain_json_are_kept_as_text(store: Store) -> None:
    when = datetime(2026, 11, 1, tzinfo=UTC)
    record(store.con, "cli", "privacy.erase", "identifier", "email:x@y.io", {"at": when})
    [entry] = audit_entries(store.con)
    assert entry.details == {"at": "2026-11-01T00:00:00+00:00"}


def test_a_buffer_writes_its_entries_together_in_order(store: Store) -> None:
    buffer = AuditBuffer(store.cursor, max_entries=3)
    buffer.record("token:crm", "profile.view", "profile", "p_1", client="10.0.0.1")
    buffer.record("token:crm", "profile.timeline", "profile", "p_1", {"before": None})
    assert audit_entries(store.con) == []  # queued
    assert buffer.flush() == 2 and buffer.flush() == 0
    assert [e.action for e in audit_entries(store.con)] == ["profile.timeline", "profile.view"]
    for n in range(3):  # the third one fills the buffer: written at once
        buffer.record("token:crm", "profile.view", "profile", f"p_{n + 2}")
    assert len(audit_entries(store.con)) == 5
    buffer.record("token:crm", "profile.view", "profile", "p_9")
    buffer.record("token:crm", "privacy.export", "profile", "p_9", at_once=True)
    assert [e.action for e in audit_entries(store.con, target="p_9")] == [
        "privacy.export", "profile.view",
    ]  # fmt: skip


def test_a_buffer_refuses_bad_entries_at_once_and_keeps_rows_a_failed_write_missed(
    store: Store,
) -> None:
    buffer = AuditBuffer(store.cursor)
    with pytest.raises(InvalidInput, match="needs an actor and an action"):
        buffer.record("", "profile.view")
    buffer.record("token:crm", "profile.view", "profile", "p_1")
    store.con.execute("ALTER TABLE audit_log RENAME TO audit_log_away")
    with pytest.raises(Exception, match="audit_log"):
        buffer.flush()
    store.con.execute("ALTER TABLE audit_log_away RENAME TO audit_log")
    assert buffer.flush() == 1
    assert [e.target for e in audit_entries(store.con)] == ["p_1"]


def test_a_server_writes_what_is_queued_when_it_stops(store: Store, settings: Any) -> None:
    from fastapi.testclient import TestClient

    from opencx.api import create_app

    with TestClient(create_app(settings, store)) as client:
        client.app.state.audit.record("token:x", "profile.view", "profile", "p_1")  # type: ignore[attr-defined]
    assert [e.actor for e in audit_entries(store.con, target="p_1")] == ["token:x"]
