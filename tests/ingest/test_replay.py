"""Replaying failed events after the cause is fixed: stored once, marked replayed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opencx.access import add_source
from opencx.ingest import Ingestor, SourceContext, import_file, replay_failed
from opencx.store import Store
from tests.conftest import WEB

Event = Callable[..., dict[str, Any]]


def fix_payload(store: Store, message_id: str, **changes: Any) -> None:
    """What an operator does after correcting the sending system: edit the stored payload."""
    [(payload,)] = store.con.execute(
        "SELECT payload FROM failed_events WHERE message_id = ?", [message_id]
    ).fetchall()
    fixed = {**json.loads(payload), **changes}
    store.con.execute(
        "UPDATE failed_events SET payload = ? WHERE message_id = ?",
        [json.dumps(fixed), message_id],
    )


def status(store: Store) -> dict[str, tuple[str, bool]]:
    """message id → (status, has replayed_at)."""
    rows = store.con.execute(
        "SELECT message_id, status, replayed_at IS NOT NULL FROM failed_events"
    ).fetchall()
    return {m: (s, replayed) for m, s, replayed in rows}


def error_fields(store: Store, message_id: str) -> list[str]:
    [(errors,)] = store.con.execute(
        "SELECT errors FROM failed_events WHERE message_id = ?", [message_id]
    ).fetchall()
    return [e["field"] for e in json.loads(errors)]


def stored_events(store: Store) -> list[tuple[Any, ...]]:
    return store.con.execute("SELECT message_id, event FROM events ORDER BY message_id").fetchall()


def test_a_fixed_event_is_stored_once_and_marked_replayed(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    ingestor.ingest([event(event=None, messageId="fix-me", userId="u-1")], WEB)
    assert status(store) == {"fix-me": ("failed", False)}
    fix_payload(store, "fix-me", event="Bill Paid")

    report = replay_failed(ingestor)
    assert (report.examined, report.stored, report.duplicates, report.still_failing) == (1, 1, 0, 0)
    assert status(store) == {"fix-me": ("replayed", True)}
    assert stored_events(store) == [("fix-me", "Bill Paid")]
    # Identity resolution ran as for any event.
    [(identifiers, profile)] = store.con.execute(
        "SELECT identifiers, profile_id FROM events"
    ).fetchall()
    assert identifiers == ["user_id:u-1"] and profile is not None


def test_replaying_twice_stores_nothing_more(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    ingestor.ingest([event(event=None, messageId="fix-me")], WEB)
    fix_payload(store, "fix-me", event="Bill Paid")
    [(failed_id,)] = store.con.execute("SELECT id FROM failed_events").fetchall()
    assert replay_failed(ingestor).stored == 1

    again = replay_failed(ingestor)
    by_id = replay_failed(ingestor, [failed_id])
    assert (again.examined, again.stored) == (0, 0)
    assert (by_id.examined, by_id.stored) == (0, 0)
    assert stored_events(store) == [("fix-me", "Bill Paid")]


def test_still_failing_events_stay_failed_with_their_current_errors(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    ingestor.ingest([event(event=None, messageId="half-fixed"), event(messageId="ok")], WEB)
    assert error_fields(store, "half-fixed") == ["event"]
    # The event name is fixed, but the new payload has a broken timestamp.
    fix_payload(store, "half-fixed", event="Bill Paid", timestamp="never")

    report = replay_failed(ingestor)
    assert (report.examined, report.stored, report.still_failing) == (1, 0, 1)
    assert status(store) == {"half-fixed": ("failed", False)}
    assert error_fields(store, "half-fixed") == ["timestamp"]
    assert stored_events(store) == [("ok", "Something Happened")]


def test_only_the_named_failures_are_replayed(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    ingestor.ingest([event(event=None, messageId="a"), event(event=None, messageId="b")], WEB)
    fix_payload(store, "a", event="A")
    fix_payload(store, "b", event="B")
    [(id_b,)] = store.con.execute("SELECT id FROM failed_events WHERE message_id = 'b'").fetchall()

    report = replay_failed(ingestor, [id_b])
    assert (report.examined, report.stored) == (1, 1)
    assert status(store) == {"a": ("failed", False), "b": ("replayed", True)}
    assert stored_events(store) == [("b", "B")]


def test_a_replayed_event_already_stored_counts_as_a_duplicate(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    ingestor.ingest([event(event=None, messageId="m-1")], WEB)
    ingestor.ingest([event(event="Sent Again", messageId="m-1")], WEB)  # the sender's retry
    fix_payload(store, "m-1", event="Fixed")

    report = replay_failed(ingestor)
    assert (report.stored, report.duplicates) == (0, 1)
    assert status(store) == {"m-1": ("replayed", True)}
    assert stored_events(store) == [("m-1", "Sent Again")]


def test_replay_keeps_the_original_receive_time_and_the_source_channel(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    add_source(store.con, "contact-center", "phone")
    received = 1_795_515_300_123_456
    ingestor.ingest(
        [event(event=None, messageId="call-1")],
        SourceContext("contact-center", "phone"),
        received_us=received,
    )
    fix_payload(store, "call-1", event="Call Ended")

    assert replay_failed(ingestor).stored == 1
    row = store.con.execute(
        "SELECT source, channel, epoch_us(timestamp), epoch_us(received_at) FROM events"
    ).fetchall()
    assert row == [("contact-center", "phone", received, received)]


def test_a_malformed_body_replays_as_still_failing(ingestor: Ingestor, store: Store) -> None:
    store.con.execute(
        "INSERT INTO failed_events (received_at, source, origin, payload, errors) "
        "VALUES (now(), 'web', 'api', '{\"batch\": [', ?)",
        [json.dumps([{"field": "body", "message": "body is not valid JSON"}])],
    )
    report = replay_failed(ingestor)
    assert (report.examined, report.stored, report.still_failing) == (1, 0, 1)
    [(state, errors)] = store.con.execute("SELECT status, errors FROM failed_events").fetchall()
    assert state == "failed"
    assert json.loads(errors)[0]["field"] == "message"
    assert stored_events(store) == []


def test_a_fixed_import_row_is_replayed(ingestor: Ingestor, store: Store, tmp_path: Path) -> None:
    path = tmp_path / "visits.jsonl"
    path.write_text(
        json.dumps({"type": "track", "event": "Visit", "userId": "u-1", "messageId": "v1"})
        + "\n"
        + json.dumps({"type": "track", "userId": "u-1", "messageId": "v2"})
        + "\n"
    )
    assert import_file(ingestor, path, SourceContext("stores", "store")).rejected == 1
    [(row_number, origin)] = store.con.execute(
        "SELECT row_number, origin FROM failed_events"
    ).fetchall()
    assert (row_number, origin) == (2, "import:visits.jsonl")
    fix_payload(store, "v2", event="Visit")

    assert replay_failed(ingestor).stored == 1
    assert stored_events(store) == [("v1", "Visit"), ("v2", "Visit")]
    assert status(store) == {"v2": ("replayed", True)}
