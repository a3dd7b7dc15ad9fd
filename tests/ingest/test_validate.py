"""Validation and normalisation of Segment messages, checked on what lands in DuckDB."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from opencx.ingest import Ingestor, SourceContext, derived_message_id, parse_timestamp
from opencx.store import Store
from tests.conftest import WEB

Event = Callable[..., dict[str, Any]]


def at(text: str) -> int:
    """Epoch microseconds of an unambiguous ISO time, computed without the code under test."""
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


RECEIVED = at("2026-11-24T12:00:00")
CALLS = SourceContext("contact-center", "phone")


def stored(store: Store, message_id: str) -> dict[str, Any]:
    """The one stored row of a message, times as epoch microseconds, JSON decoded."""
    cursor = store.con.execute(
        "SELECT type, event, channel, source, anonymous_id, user_id, group_id, previous_id, "
        "profile_id, identifiers, epoch_us(timestamp) AS timestamp, "
        "epoch_us(original_timestamp) AS original_timestamp, epoch_us(sent_at) AS sent_at, "
        "epoch_us(received_at) AS received_at, properties, traits, context "
        "FROM events WHERE message_id = ?",
        [message_id],
    )
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    assert len(rows) == 1, f"{message_id} stored {len(rows)} times"
    row = dict(zip(names, rows[0], strict=True))
    for name in ("properties", "traits", "context"):
        row[name] = None if row[name] is None else json.loads(row[name])
    return row


def failures(store: Store) -> list[dict[str, Any]]:
    cursor = store.con.execute(
        "SELECT message_id, source, origin, status, payload, errors FROM failed_events ORDER BY id"
    )
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    for row in rows:
        row["errors"] = json.loads(row["errors"])
    return rows


def rejected_fields(ingestor: Ingestor, *messages: Any) -> list[list[str]]:
    """Ingest messages that must all be refused; the fields each one's errors name."""
    result = ingestor.ingest(list(messages), WEB, received_us=RECEIVED)
    assert (result.accepted, result.rejected) == (0, len(messages))
    assert [f.index for f in result.failures] == list(range(len(messages)))
    return [[e["field"] for e in failure.errors] for failure in result.failures]


def count(store: Store, table: str = "events") -> int:
    return int(store.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


# -- message types and their required fields ------------------------------------------
TYPES = [  # (fields, column, stored value)
    ({"type": "track", "event": "Bill Paid"}, "event", "Bill Paid"),
    ({"type": "identify", "traits": {"plan": "gold"}}, "traits", {"plan": "gold"}),
    ({"type": "page", "name": "Home"}, "event", "Home"),
    ({"type": "page", "properties": {"name": "Pricing"}}, "event", "Pricing"),
    ({"type": "screen", "name": "Usage"}, "event", "Usage"),
    ({"type": "group", "groupId": "acme"}, "group_id", "acme"),
    ({"type": "alias", "previousId": "anon-9"}, "previous_id", "anon-9"),
    ({"type": "TRACK", "event": "Shouted"}, "type", "track"),
]


def test_every_message_type_is_stored_with_its_own_fields(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    messages = [event(userId="u-1", **fields) for fields, _, _ in TYPES]
    result = ingestor.ingest(messages, WEB)
    assert (result.accepted, result.rejected) == (len(TYPES), 0)
    for message, (fields, column, value) in zip(messages, TYPES, strict=True):
        row = stored(store, message["messageId"])
        assert row["type"] == fields["type"].lower(), fields
        assert row[column] == value, fields
        assert row["user_id"] == "u-1"


WRONG = [  # (message, the fields its errors name)
    ({"type": "track", "userId": "u"}, ["event"]),
    ({"type": "track", "event": "  ", "userId": "u"}, ["event"]),
    ({"type": "track", "event": "E" * 201, "userId": "u"}, ["event"]),
    ({"type": "group", "userId": "u"}, ["groupId"]),
    ({"type": "alias", "userId": "u"}, ["previousId"]),
    ({"type": "alias", "previousId": "a", "anonymousId": "a-2"}, ["userId"]),
    ({"type": "alias"}, ["previousId", "userId"]),
    ({"type": "launch", "userId": "u"}, ["type"]),
    ({"userId": "u"}, ["type"]),
    ({"type": "page", "name": 5, "userId": "u"}, ["name"]),
    ({"type": "track", "event": "E", "userId": "u", "properties": [1]}, ["properties"]),
    ({"type": "identify", "userId": "u", "traits": "gold"}, ["traits"]),
    ({"type": "track", "event": "E", "userId": "u", "context": 3}, ["context"]),
    ({"type": "track", "event": "E", "userId": "u", "messageId": ""}, ["messageId"]),
    ({"type": "track", "event": "E", "userId": "u", "messageId": "  "}, ["messageId"]),
    ({"type": "track", "event": "E", "userId": "u", "messageId": ["m"]}, ["messageId"]),
    ({"type": "track", "event": "E", "userId": "u", "messageId": True}, ["messageId"]),
    ([1, 2], ["message"]),
]


def test_a_missing_or_wrong_field_is_named(ingestor: Ingestor) -> None:
    fields = rejected_fields(ingestor, *[message for message, _ in WRONG])
    assert fields == [expected for _, expected in WRONG]
    assert count(ingestor.store) == 0
    assert count(ingestor.store, "failed_events") == len(WRONG)


def test_error_messages_name_the_field_and_say_what_is_accepted(ingestor: Ingestor) -> None:
    ingestor.ingest(
        [
            {"type": "track", "event": "E", "userId": {"id": 1}, "messageId": "obj"},
            {"type": "launch", "userId": "u", "messageId": "kind"},
            {"type": "group", "userId": "u", "messageId": "grp"},
        ],
        WEB,
    )
    errors = {f["message_id"]: f["errors"] for f in failures(ingestor.store)}
    assert errors["obj"] == [
        {"field": "userId", "message": "userId must be a string, got an object"}
    ]
    assert errors["kind"] == [
        {
            "field": "type",
            "message": "type must be one of track, identify, page, screen, group, alias, "
            "got 'launch'",
        }
    ]
    assert errors["grp"] == [
        {"field": "groupId", "message": "groupId is required for a group call"}
    ]


# -- message ids ----------------------------------------------------------------------------
def test_message_ids_are_free_form_up_to_100_characters(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    browser = event(messageId="ajs-next-1700000000000-0b7e3c1a-5f0e-4c7d-9a51-2f1d3c4b5a69")
    longest = event(messageId="x" * 100)
    too_long = event(messageId="y" * 101)
    result = ingestor.ingest([browser, longest, too_long], WEB)
    assert (result.accepted, result.rejected) == (2, 1)
    assert stored(store, browser["messageId"])["type"] == "track"
    assert stored(store, "x" * 100)["type"] == "track"
    [failure] = failures(store)
    assert failure["errors"] == [
        {"field": "messageId", "message": "messageId must be at most 100 characters, got 101"}
    ]


def test_a_message_without_id_gets_a_deterministic_one(ingestor: Ingestor, store: Store) -> None:
    message = {"type": "page", "name": "Home", "anonymousId": "a-1"}
    other = {"type": "page", "name": "Pricing", "anonymousId": "a-1"}
    first = ingestor.ingest([message, other], WEB)
    again = ingestor.ingest([dict(message)], WEB)
    assert (first.accepted, again.accepted, again.duplicates) == (2, 0, 1)
    ids = {m for (m,) in store.con.execute("SELECT message_id FROM events").fetchall()}
    assert ids == {derived_message_id("web", message), derived_message_id("web", other)}
    assert derived_message_id("web", message) == derived_message_id("web", dict(message))
    assert derived_message_id("web", message) != derived_message_id("crm", message)


def test_numeric_ids_are_coerced_to_strings(ingestor: Ingestor, store: Store) -> None:
    ingestor.ingest(
        [
            {"type": "track", "event": "E", "userId": 42, "messageId": 7},
            {"type": "track", "event": "E", "userId": 43.0, "anonymousId": 99, "messageId": "f"},
        ],
        WEB,
    )
    row = stored(store, "7")
    assert (row["user_id"], row["identifiers"]) == ("42", ["user_id:42"])
    row = stored(store, "f")
    assert (row["user_id"], row["anonymous_id"]) == ("43", "99")
    assert row["identifiers"] == ["user_id:43", "anonymous_id:99"]


# -- timestamps -------------------------------------------------------------------------
TOLERATED = [  # (as sent, the UTC time it means)
    ("2026-11-24T10:15:00.123Z", "2026-11-24T10:15:00.123"),
    ("2026-11-24T10:15:00Z", "2026-11-24T10:15:00"),
    ("2026-11-24T10:15:00.123z", "2026-11-24T10:15:00.123"),
    ("2026-11-24T10:15:00", "2026-11-24T10:15:00"),
    ("2026-11-24 10:15:00.5", "2026-11-24T10:15:00.5"),
    ("2026-11-24T12:15:00+02:00", "2026-11-24T10:15:00"),
    ("2026-11-24T10:15:00+0000", "2026-11-24T10:15:00"),
    ("2026-11-24T05:15:00.250-0500", "2026-11-24T10:15:00.25"),
    ("2026-11-24T10:15:00.1234567Z", "2026-11-24T10:15:00.123456"),
    ("2026-11-24T10:15:00.123456789+00:00", "2026-11-24T10:15:00.123456"),
    ("2026-11-24", "2026-11-24T00:00:00"),
    (1_795_515_300, "2026-11-24T10:15:00"),
    (1_795_515_300_123, "2026-11-24T10:15:00.123"),
    (1_795_515_300.5, "2026-11-24T10:15:00.5"),
]


def test_timestamps_are_parsed_tolerantly(ingestor: Ingestor, store: Store, event: Event) -> None:
    messages = [event(timestamp=sent) for sent, _ in TOLERATED]
    assert ingestor.ingest(messages, WEB, received_us=RECEIVED).accepted == len(TOLERATED)
    for message, (sent, expected) in zip(messages, TOLERATED, strict=True):
        row = stored(store, message["messageId"])
        # No sentAt: nothing to correct, the timestamp is stored as sent.
        assert (row["original_timestamp"], row["timestamp"]) == (at(expected), at(expected)), sent
        assert parse_timestamp(sent) == at(expected), sent


IMPOSSIBLE = [
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-02:00",
    "1969-12-31T23:59:59Z",
    "2026-13-01T00:00:00Z",
    "yesterday",
    True,
    {"at": 1},
]


def test_impossible_timestamps_are_refused(ingestor: Ingestor, event: Event) -> None:
    fields = rejected_fields(ingestor, *[event(timestamp=bad) for bad in IMPOSSIBLE])
    assert fields == [["timestamp"]] * len(IMPOSSIBLE)
    messages = [f["errors"][0]["message"] for f in failures(ingestor.store)]
    assert all(m.startswith("timestamp ") for m in messages), messages
    assert "outside the accepted range 1970-01-01 .. 2099-12-31" in messages[0]


def test_a_bad_sent_at_is_refused(ingestor: Ingestor, event: Event) -> None:
    message = event(timestamp="2026-11-24T10:00:00Z", sentAt="0001-01-01T00:00:00Z")
    assert rejected_fields(ingestor, message) == [["sentAt"]]


def test_clock_skew_is_corrected_with_sent_at_and_received_at(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    # The device clock runs an hour fast: it stamped the event 5 s before it sent it.
    message = event(timestamp="2026-11-24T13:00:00Z", sentAt="2026-11-24T13:00:05Z")
    ingestor.ingest([message], WEB, received_us=RECEIVED)
    row = stored(store, message["messageId"])
    assert row["timestamp"] == RECEIVED - 5_000_000
    assert row["original_timestamp"] == at("2026-11-24T13:00:00")
    assert row["sent_at"] == at("2026-11-24T13:00:05")
    assert row["received_at"] == RECEIVED


def test_the_batch_sent_at_is_used_when_a_message_has_none(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    plain = event(timestamp="2026-11-24T13:00:00Z")
    own = event(timestamp="2026-11-24T13:00:00Z", sentAt="2026-11-24T13:00:30Z")
    ingestor.ingest(
        [plain, own], WEB, received_us=RECEIVED, batch_sent_at="2026-11-24T13:00:10.000Z"
    )
    assert stored(store, plain["messageId"])["timestamp"] == RECEIVED - 10_000_000
    assert stored(store, plain["messageId"])["sent_at"] == at("2026-11-24T13:00:10")
    assert stored(store, own["messageId"])["timestamp"] == RECEIVED - 30_000_000


def test_without_sent_at_the_timestamp_is_kept_and_without_timestamp_received_is_used(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    historical = event(timestamp="2025-01-01T08:00:00Z")
    undated = event()
    sent_only = event(sentAt="2026-11-24T13:00:05Z")
    original = event(originalTimestamp="2026-11-24T11:00:00Z")
    ingestor.ingest([historical, undated, sent_only, original], WEB, received_us=RECEIVED)
    assert stored(store, historical["messageId"])["timestamp"] == at("2025-01-01T08:00:00")
    assert stored(store, undated["messageId"])["timestamp"] == RECEIVED
    assert stored(store, undated["messageId"])["original_timestamp"] is None
    assert stored(store, sent_only["messageId"])["timestamp"] == RECEIVED
    assert stored(store, original["messageId"])["timestamp"] == at("2026-11-24T11:00:00")


# -- channels ----------------------------------------------------------------------------
def test_context_channel_overrides_the_source_default(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    default = event()
    chat = event(context={"channel": "chat"})
    shouted = event(context={"channel": "STORE"})
    ingestor.ingest([default, chat, shouted], CALLS)
    assert stored(store, default["messageId"])["channel"] == "phone"
    assert stored(store, default["messageId"])["source"] == "contact-center"
    assert stored(store, chat["messageId"])["channel"] == "chat"
    assert stored(store, shouted["messageId"])["channel"] == "store"


def test_an_unknown_channel_is_an_error_naming_context_channel(
    ingestor: Ingestor, event: Event
) -> None:
    unknown = [event(context={"channel": channel}) for channel in ("fax", 5, "")]
    assert rejected_fields(ingestor, *unknown) == [["context.channel"]] * 3
    [fax, *_] = failures(ingestor.store)
    assert fax["errors"][0]["message"] == (
        "context.channel must be one of web, app, email, sms, chat, phone, store, social, "
        "partner, got 'fax'"
    )


# -- identifiers and traits ----------------------------------------------------------------
def test_traits_in_traits_or_context_traits_both_identify(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    top = event(type="identify", userId="u-1", traits={"email": " Jane@Example.COM "})
    nested = event(type="identify", anonymousId="a-7", context={"traits": {"email": "jo@x.io"}})
    both = event(
        type="identify",
        userId="u-2",
        traits={"plan": "gold", "email": "kim@x.io"},
        context={"traits": {"plan": "silver", "city": "Oslo"}},
    )
    ingestor.ingest([top, nested, both], WEB)
    assert stored(store, top["messageId"])["identifiers"] == [
        "user_id:u-1",
        "email:jane@example.com",
    ]
    assert stored(store, nested["messageId"])["identifiers"] == [
        "email:jo@x.io",
        "anonymous_id:a-7",
    ]
    # `traits` wins over `context.traits` for the same trait.
    assert stored(store, both["messageId"])["traits"] == {
        "plan": "gold",
        "city": "Oslo",
        "email": "kim@x.io",
    }


def test_phones_written_two_ways_are_one_identifier_and_one_person(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    call = event(anonymousId="caller-1", context={"traits": {"phone": "(555) 123-4567"}})
    web = event(type="identify", userId="u-1", traits={"phone": "+15551234567"})
    ingestor.ingest([call, web], WEB)
    call_row, web_row = stored(store, call["messageId"]), stored(store, web["messageId"])
    assert call_row["identifiers"] == ["phone:+15551234567", "anonymous_id:caller-1"]
    assert web_row["identifiers"] == ["user_id:u-1", "phone:+15551234567"]
    people = store.con.execute("SELECT DISTINCT person_id FROM resolved_events").fetchall()
    assert len(people) == 1


def test_blocked_values_give_no_identifier(ingestor: Ingestor, store: Store, event: Event) -> None:
    message = event(
        type="identify",
        userId="null",
        anonymousId="0000",
        traits={"email": "undefined"},
        context={"traits": {"phone": "(555) 123-4567"}},
    )
    ingestor.ingest([message], WEB)
    assert stored(store, message["messageId"])["identifiers"] == ["phone:+15551234567"]
    identifiers = store.con.execute("SELECT identifier FROM identities").fetchall()
    assert identifiers == [("phone:+15551234567",)]


def test_blocked_values_never_link_two_people(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    first = event(userId="null", anonymousId="a-1", traits={"email": "undefined"})
    second = event(userId="null", anonymousId="a-2", traits={"email": "undefined"})
    ingestor.ingest([first, second], WEB)
    people = store.con.execute(
        "SELECT DISTINCT person_id FROM resolved_events ORDER BY 1"
    ).fetchall()
    assert len(people) == 2
    assert stored(store, first["messageId"])["identifiers"] == ["anonymous_id:a-1"]


def test_a_message_identified_only_by_a_context_phone_is_valid(
    ingestor: Ingestor, store: Store
) -> None:
    message = {
        "type": "track",
        "event": "Call Ended",
        "messageId": "call-1",
        "context": {"traits": {"phone": "555.123.4567"}},
    }
    assert ingestor.ingest([message], CALLS).accepted == 1
    row = stored(store, "call-1")
    assert (row["user_id"], row["anonymous_id"]) == (None, None)
    assert row["identifiers"] == ["phone:+15551234567"]
    assert row["profile_id"] is not None


def test_a_message_with_no_identifier_at_all_is_refused(ingestor: Ingestor) -> None:
    message = {"type": "track", "event": "E", "messageId": "nobody", "traits": {"plan": "x"}}
    assert rejected_fields(ingestor, message) == [["userId"]]
    [failure] = failures(ingestor.store)
    assert "anonymousId" in failure["errors"][0]["message"]


# -- size -------------------------------------------------------------------------------
def test_an_event_over_32_kb_is_refused_alone(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    before, after = event(), event(properties={"blob": "y" * 30_000})
    big = [
        event(messageId="in-properties", properties={"blob": "x" * 33_000}),
        event(messageId="in-traits", traits={"bio": "x" * 33_000}),
        event(messageId="in-context", context={"page": {"referrer": "x" * 33_000}}),
        event(messageId="in-integrations", integrations={"Custom": {"blob": "x" * 33_000}}),
    ]
    result = ingestor.ingest([before, *big, after], WEB)
    assert (result.accepted, result.rejected) == (2, 4)
    ids = {m for (m,) in store.con.execute("SELECT message_id FROM events").fetchall()}
    assert ids == {before["messageId"], after["messageId"]}
    rows = failures(store)
    assert [r["message_id"] for r in rows] == [m["messageId"] for m in big]
    for row in rows:
        assert row["errors"][0]["field"] == "message"
        assert "an event may be at most 32768" in row["errors"][0]["message"]


# -- through the writer: deduplication and failed_events ---------------------------------
def test_the_same_batch_twice_stores_each_event_once(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    batch = [event(), event(type="page", name="Home"), event(type="identify", userId="u-1")]
    first = ingestor.ingest(batch, WEB)
    second = ingestor.ingest(batch, WEB)
    assert (first.accepted, first.duplicates) == (3, 0)
    assert (second.accepted, second.duplicates) == (0, 3)
    rows = store.con.execute("SELECT count(*), count(DISTINCT message_id) FROM events").fetchall()
    assert rows == [(3, 3)]


def test_duplicate_ids_inside_one_batch_are_stored_once(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    first = event(event="First", messageId="dup")
    retry = event(event="Retried", messageId="dup")
    result = ingestor.ingest([first, retry, event()], WEB)
    assert (result.accepted, result.duplicates) == (2, 1)
    assert stored(store, "dup")["event"] == "First"


def test_invalid_events_land_in_failed_events_with_payload_and_errors(
    ingestor: Ingestor, store: Store, event: Event
) -> None:
    good = event()
    bad = event(event=None, messageId="bad-1", properties={"plan": "gold"})
    result = ingestor.ingest([good, bad, "just text"], WEB)
    assert (result.accepted, result.rejected) == (1, 2)
    assert [(f.index, f.message_id) for f in result.failures] == [(1, "bad-1"), (2, None)]
    rows = failures(store)
    assert [(r["source"], r["origin"], r["status"]) for r in rows] == [("web", "api", "failed")] * 2
    assert rows[0]["message_id"] == "bad-1"
    assert json.loads(rows[0]["payload"]) == bad
    assert rows[0]["errors"] == [
        {
            "field": "event",
            "message": "event is required for a track call (the action's name), got null",
        }
    ]
    assert json.loads(rows[1]["payload"]) == "just text"
    assert rows[1]["errors"][0]["field"] == "message"
    assert count(store) == 1


@pytest.mark.parametrize(
    ("properties", "field", "complaint"),
    [
        (
            {"survey_type": "nps", "score": 11},
            "properties.score",
            "11 is out of range for nps (0-10)",
        ),
        ({"survey_type": "csat", "score": 0}, "properties.score", "out of range for csat (1-5)"),
        ({"survey_type": "ces", "score": "high"}, "properties.score", "whole number from 1 to 7"),
        ({"survey_type": "nps", "score": 7.5}, "properties.score", "whole number"),
        ({"survey_type": "smiley", "score": 3}, "properties.survey_type", "one of nps, csat, ces"),
        ({"score": 3}, "properties.survey_type", "one of nps"),
    ],
)
def test_survey_answers_out_of_range_are_refused_with_the_field(
    ingestor: Any, event: Any, properties: dict[str, Any], field: str, complaint: str
) -> None:
    message = event(event="Survey Responded", userId="u-1", properties=properties)
    batch = ingestor.validate([message], WEB)
    assert len(batch) == 0
    [failure] = batch.failures
    assert any(e["field"] == field and complaint in e["message"] for e in failure.errors)
    fast = ingestor.validate_raw([orjson.dumps(message)], WEB)
    assert len(fast) == 0 and fast.failures[0].errors == failure.errors


def test_a_survey_answer_in_range_is_kept(ingestor: Any, event: Any) -> None:
    message = event(
        event="Survey Responded", userId="u-1", properties={"survey_type": "NPS", "score": "9"}
    )
    assert len(ingestor.validate([message], WEB)) == 1
    assert len(ingestor.validate_raw([orjson.dumps(message)], WEB)) == 1
