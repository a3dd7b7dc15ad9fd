"""The pieces put together: surveys through the policy, the NBA policy check, the rounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opencx.config import Settings
from opencx.ingest import Ingestor, SourceContext
from opencx.orchestrate.adapters import LogAdapter
from opencx.orchestrate.engine import (
    base_url,
    delivery_round,
    policy_check,
    survey_admission,
    trigger_round,
)
from opencx.orchestrate.policy import parse_policy, save_policy
from opencx.orchestrate.state import person_state
from opencx.orchestrate.triggers import save_trigger
from opencx.voc import run_trigger, save_survey
from tests.voc.conftest import CES_AFTER_CALL, person

NOON_NY = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)


def call(ingestor: Ingestor, user: str, at: datetime) -> None:
    ingestor.ingest(
        [{"type": "track", "userId": user, "event": "Call Ended", "timestamp": at.isoformat(),
          "context": {"timezone": "America/New_York"}}],
        SourceContext("phone", "phone"),
    )  # fmt: skip


def test_survey_invitations_pass_the_policy_and_count_once(ingestor: Ingestor) -> None:
    con = ingestor.store.cursor()
    jane = person(ingestor, "jane")
    survey = save_survey(con, CES_AFTER_CALL)
    call(ingestor, "jane", NOON_NY)
    tight = parse_policy("budget: {max: 1, per: 7d}")
    run = run_trigger(ingestor, survey, now=NOON_NY + timedelta(hours=2),
                      admit=survey_admission(ingestor.store, tight))  # fmt: skip
    assert len(run.invited) == 1
    [decision] = con.execute("SELECT outcome, purpose, channel FROM decisions").fetchall()
    assert decision == ("send", "survey", "sms")
    state = person_state(con, jane, NOON_NY + timedelta(hours=3))
    assert len(state.contacts) == 1  # the decision and its `Survey Invited` event: once

    bob = person(ingestor, "bob")  # a text from the brand this morning fills his budget
    ingestor.ingest(
        [{"type": "track", "userId": "bob", "event": "SMS Sent", "timestamp": NOON_NY.isoformat(),
          "properties": {"message_type": "promotion"}}],
        SourceContext("sms", "sms"),
    )  # fmt: skip
    call(ingestor, "bob", NOON_NY + timedelta(minutes=30))
    again = run_trigger(ingestor, survey, now=NOON_NY + timedelta(hours=2),
                        admit=survey_admission(ingestor.store, tight))  # fmt: skip
    assert again.invited == [] and again.refused == {"budget": 1}
    [(who, rule, reasons)] = con.execute(
        "SELECT person_id, rule, reasons FROM decisions WHERE outcome <> 'send'"
    ).fetchall()
    assert (who, rule) == (bob, "budget") and "1 contact in the last 7 days" in reasons


def test_the_nba_check_asks_the_policy_without_recording(ingestor: Ingestor) -> None:
    con = ingestor.store.cursor()
    jane = person(ingestor, "jane")
    check = policy_check(con, parse_policy("budget: {max: 0}"), NOON_NY)
    allowed, reasons = check(jane, "sms", "marketing")
    assert not allowed and reasons
    allowed, _ = check(jane, "sms", "transactional")
    assert allowed
    assert con.execute("SELECT count(*) FROM decisions").fetchall() == [(0,)]


def test_rounds_use_the_saved_policy_and_deliver(ingestor: Ingestor, settings: Settings) -> None:
    con = ingestor.store.cursor()
    person(ingestor, "jane", phone="+1 415 555 0100")
    save_policy(con, "quiet_hours: null", by="test")
    save_trigger(
        con,
        "id: thanks\nwhen: {event: Call Ended}\n"
        "action: {type: message, channel: sms, purpose: service, text: Thanks}\n",
    )
    call(ingestor, "jane", NOON_NY)
    run = trigger_round(ingestor, settings, now=NOON_NY + timedelta(minutes=1))
    assert run.outcomes["send"] == 1
    report = delivery_round(
        ingestor, settings, now=NOON_NY + timedelta(minutes=2), adapters={"log": LogAdapter()}
    )
    assert report.delivered == 1
    assert base_url(settings) == "http://127.0.0.1:8000"
