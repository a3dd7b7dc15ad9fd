"""What the policy knows about a person: contacts, time zone, cases, answers, segments."""

from __future__ import annotations

from datetime import timedelta

import duckdb

from opencx.ingest import Ingestor
from opencx.orchestrate.state import Contact, person_state, person_states
from tests.orchestrate.conftest import NOW, Track, person

DAY = timedelta(days=1)


def _decision(con: duckdb.DuckDBPyConnection, id_: str, pid: str, outcome: str, ago: timedelta,
              channel: str = "sms", purpose: str = "service") -> None:  # fmt: skip
    con.execute(
        "INSERT INTO decisions (id, key, decided_at, person_id, action, channel, purpose, "
        "outcome, reasons) VALUES (?, ?, ?, ?, 'data-alert', ?, ?, ?, '[]')",
        [id_, f"k-{id_}", NOW - ago, pid, channel, purpose, outcome],
    )


def _case(con: duckdb.DuckDBPyConnection, id_: str, pid: str, status: str) -> None:
    con.execute(
        "INSERT INTO cases (id, person_id, source_message_id, rule, reason, queue, priority, "
        "status, opened_at, due_at) VALUES (?, ?, ?, 'detractor', 'nps 3', 'care', 'high', ?, "
        "?, ?)",
        [id_, pid, f"src-{id_}", status, NOW - DAY, NOW + DAY],
    )


def history(ingestor: Ingestor, track: Track) -> str:
    """A customer with emails, texts, a survey, a decision delivered, answers and a case."""
    pid = person(ingestor, "u1", timezone="Europe/London")
    esp = {"channel": "email", "source": "esp"}
    track("u1", "Email Sent", NOW - 40 * DAY, properties={"email_type": "newsletter"}, **esp)
    track("u1", "Email Sent", NOW - 6 * DAY,
          properties={"email_type": "promotion", "campaign_id": "bf-2026"}, **esp)  # fmt: skip
    track("u1", "Email Sent", NOW - 5 * DAY,
          properties={"email_type": "transactional", "campaign_id": "bill-ready-2026-11"},
          **esp)  # fmt: skip
    track("u1", "Email Opened", NOW - 5 * DAY + timedelta(hours=2), **esp)
    track("u1", "SMS Sent", NOW - 4 * DAY, channel="sms", source="sms",
          properties={"message_type": "data_usage_alert"})  # fmt: skip
    track("u1", "SMS Sent", NOW - 4 * DAY, channel="sms", source="sms",
          properties={"message_type": "verification_code"})  # fmt: skip
    track("u1", "Survey Invited", NOW - 3 * DAY, channel="email", source="opencx-voc",
          properties={"survey_id": "nps-q4"})  # fmt: skip
    track("u1", "Survey Responded", NOW - 2 * DAY, channel="email",
          properties={"survey_type": "NPS", "score": 4, "survey_id": "nps-q4"})  # fmt: skip
    track("u1", "Product Viewed", NOW - 8 * DAY, context={"timezone": "America/Chicago"})
    track("u1", "Product Viewed", NOW - 7 * DAY, context={"timezone": "America/Denver"})
    track("u1", "Product Viewed", NOW - 1 * DAY)
    con = ingestor.store.con
    _decision(con, "dec_1", pid, "send", timedelta(hours=20))
    _decision(con, "dec_2", pid, "drop", timedelta(hours=19))
    _decision(con, "dec_3", pid, "hold", timedelta(hours=18))
    # The delivery of dec_1 is on the timeline too: it must be counted once.
    track("u1", "SMS Sent", NOW - timedelta(hours=19), channel="sms", source="opencx",
          properties={"decision_id": "dec_1", "message_type": "data_usage_alert"})  # fmt: skip
    # After `now`: not yet.
    track("u1", "Email Sent", NOW + DAY, properties={"email_type": "promotion"}, **esp)
    _case(con, "c1", pid, "open")
    _case(con, "c2", pid, "resolved")
    con.execute("INSERT INTO segment_members VALUES ('vip', ?, ?), ('detractors', ?, ?)",
                [pid, NOW, pid, NOW])  # fmt: skip
    return pid


def test_person_state_reads_contacts_once_each(ingestor: Ingestor, track: Track) -> None:
    pid = history(ingestor, track)
    state = person_state(ingestor.store.con, pid, NOW)
    assert state.contacts == (
        Contact(NOW - 6 * DAY, "email", "marketing", "bf-2026"),
        Contact(NOW - 5 * DAY, "email", "transactional", "bill-ready-2026-11"),
        Contact(NOW - 4 * DAY, "sms", "service", "data_usage_alert"),
        Contact(NOW - 4 * DAY, "sms", "transactional", "verification_code"),
        Contact(NOW - 3 * DAY, "email", "survey", "nps-q4"),
        Contact(NOW - timedelta(hours=20), "sms", "service", "data-alert"),
    )
    recent = person_state(ingestor.store.con, pid, NOW, lookback_days=5).contacts
    assert recent[0].at == NOW - 4 * DAY  # the window is the last 5 days, exactly 5 days out


def test_person_state_reads_zone_cases_answers_segments(ingestor: Ingestor, track: Track) -> None:
    pid = history(ingestor, track)
    state = person_state(ingestor.store.con, pid, NOW)
    assert state.person_id == pid
    assert state.timezone == "America/Denver"  # the latest context.timezone beats the trait
    assert state.open_cases == 1
    assert state.segments == frozenset({"vip", "detractors"})
    assert state.last_detractor_at == NOW - 2 * DAY
    assert [(a.survey_type, a.score) for a in state.answers] == [("nps", 4.0)]
    assert state.last_survey_at == NOW - 3 * DAY
    assert [(r.event, r.channel) for r in state.responses] == [
        ("Email Opened", "email"),
        ("Survey Responded", "email"),
    ]


def test_the_timezone_trait_is_the_fallback(ingestor: Ingestor, track: Track) -> None:
    pid = person(ingestor, "u2", timezone="Asia/Tokyo")
    assert person_state(ingestor.store.con, pid, NOW).timezone == "Asia/Tokyo"
    nobody = person(ingestor, "u3")
    assert person_state(ingestor.store.con, nobody, NOW).timezone is None


def test_a_survey_decision_counts_as_the_last_invitation(ingestor: Ingestor) -> None:
    pid = person(ingestor, "u4")
    _decision(ingestor.store.con, "dec_9", pid, "send", DAY, "email", "survey")
    state = person_state(ingestor.store.con, pid, NOW)
    assert state.last_survey_at == NOW - DAY
    assert state.contacts == (Contact(NOW - DAY, "email", "survey", "data-alert"),)


def test_bulk_states_equal_point_reads(ingestor: Ingestor, track: Track) -> None:
    pid = history(ingestor, track)
    other = person(ingestor, "u5")
    track("u5", "Consent Updated", NOW - DAY,
          properties={"channel": "sms", "purpose": "marketing", "granted": True})  # fmt: skip
    con = ingestor.store.con
    everyone = person_states(con, NOW)
    assert set(everyone) == {pid, other}
    for who in (pid, other):
        assert everyone[who] == person_state(con, who, NOW)
    assert person_states(con, NOW, [other]) == {other: person_state(con, other, NOW)}
    assert everyone[other].consents[("sms", "marketing")].granted
    assert person_states(con, NOW, ["p_unknown"])["p_unknown"].contacts == ()


def test_decisions_after_now_count_only_when_upcoming(ingestor: Ingestor) -> None:
    pid = person(ingestor, "u6")
    _decision(ingestor.store.con, "dec_later", pid, "send", -timedelta(seconds=1))
    con = ingestor.store.con
    assert person_state(con, pid, NOW).contacts == ()
    assert person_states(con, NOW, [pid])[pid].contacts == ()
    ahead = Contact(NOW + timedelta(seconds=1), "sms", "service", "data-alert")
    assert person_state(con, pid, NOW, upcoming=True).contacts == (ahead,)
    assert person_states(con, NOW, [pid], upcoming=True)[pid].contacts == (ahead,)
