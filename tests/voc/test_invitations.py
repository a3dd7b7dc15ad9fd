"""Invitations: recontact rules with reasons, one answer per invitation, events on the timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest

from opencx.errors import Conflict, InvalidInput, NotFound
from opencx.ingest import Ingestor
from opencx.profiles import timeline
from opencx.voc import Survey, answer, check_eligibility, invite, save_survey
from tests.voc.conftest import NOW, person


def test_an_answer_goes_on_the_timeline_once(ingestor: Ingestor, ces_survey: Survey) -> None:
    jane = person(ingestor, "u-1")
    issued = invite(ingestor, ces_survey, jane, now=NOW, trigger_message_id="call-1")
    assert issued.url("https://cx.example/").startswith("https://cx.example/s/")
    got = answer(
        ingestor,
        issued.token,
        {"ease": "2", "why": "Terrible: I had to call twice and nobody helped"},
        now=NOW,
    )
    assert got.score == 2 and got.sentiment is not None and got.sentiment[1] == "negative"
    events = {e.event: e for e in timeline(ingestor.store.con, jane, limit=10)}
    invited, responded = events["Survey Invited"], events["Survey Responded"]
    assert invited.channel == "sms" and invited.properties["trigger_message_id"] == "call-1"
    props = responded.properties
    assert props["survey_type"] == "ces" and props["score"] == 2
    assert (
        props["comment"] == "Terrible: I had to call twice and nobody helped"
        and props["touchpoint"] == "call_ended@phone"
    )
    with pytest.raises(Conflict, match="already answered"):
        answer(ingestor, issued.token, {"ease": "7"}, now=NOW)
    assert [e.event for e in timeline(ingestor.store.con, jane, limit=10)].count(
        "Survey Responded"
    ) == 1


def test_a_second_invitation_within_the_waiting_time_is_refused_with_the_reason(
    ingestor: Ingestor, ces_survey: Survey
) -> None:
    jane = person(ingestor, "u-1")
    other = save_survey(
        ingestor.store.con,
        "id: nps-q\nname: Quarterly NPS\nkind: relationship\nschedule: quarterly\n"
        "questions: [{id: nps, type: nps}]",
    )
    invite(ingestor, ces_survey, jane, now=NOW)
    verdict = check_eligibility(ingestor.store.con, other, jane, now=NOW + timedelta(days=3))
    assert not verdict.allowed
    assert verdict.reason == (
        "last survey invitation 3 days ago (2026-11-20, ces-contact); "
        "the global waiting time is 7 days"
    )
    with pytest.raises(Conflict, match="last survey invitation 3 days ago"):
        invite(ingestor, other, jane, now=NOW + timedelta(days=3))
    assert invite(ingestor, other, jane, now=NOW + timedelta(days=8)).invitation.id


def test_show_once_until_answered_and_up_to(ingestor: Ingestor, ces_survey: Survey) -> None:
    jane = person(ingestor, "u-1")
    invite(ingestor, ces_survey, jane, now=NOW)
    with pytest.raises(Conflict, match="shown once"):
        invite(ingestor, ces_survey, jane, now=NOW + timedelta(days=30))
    until = save_survey(
        ingestor.store.con,
        "id: until\nname: U\nquestions: [{id: s, type: csat}]\n"
        "recontact: {show: until_answered, wait: 0}",
    )
    first = invite(ingestor, until, jane, now=NOW)
    invite(ingestor, until, jane, now=NOW + timedelta(days=1))  # not answered yet: again
    answer(ingestor, first.token, {"s": 5}, now=NOW + timedelta(days=1))
    with pytest.raises(Conflict, match="already answered until"):
        invite(ingestor, until, jane, now=NOW + timedelta(days=2))
    capped = save_survey(
        ingestor.store.con,
        "id: capped\nname: C\nquestions: [{id: s, type: csat}]\n"
        "recontact: {show: up_to, max_times: 2, wait: 0}",
    )
    invite(ingestor, capped, jane, now=NOW)
    invite(ingestor, capped, jane, now=NOW)
    with pytest.raises(Conflict, match="2 times already"):
        invite(ingestor, capped, jane, now=NOW)


def test_waiting_time_by_trait_and_audience_by_earlier_answers(ingestor: Ingestor) -> None:
    biz = person(ingestor, "u-biz", plan="business")
    fan = person(ingestor, "u-fan")
    con = ingestor.store.con
    nps = save_survey(
        con, "id: nps\nname: N\nquestions: [{id: n, type: nps}]\nrecontact: {show: up_to, "
        "max_times: 9, rules: [{trait: plan, equals: business, wait: 30d}]}",
    )  # fmt: skip
    review = save_survey(
        con, "id: review\nname: Review us\nquestions: [{id: r, type: text, text: Review us}]\n"
        "audience: {survey_type: nps, min_score: 9}\nrecontact: {wait: 0}",
    )  # fmt: skip
    invite(ingestor, nps, biz, now=NOW)
    verdict = check_eligibility(con, nps, biz, now=NOW + timedelta(days=10))
    assert "the waiting time for plan = business is 30 days" in verdict.reason
    for who, score in ((fan, 10), (biz, 6)):
        token = invite(ingestor, nps, who, now=NOW + timedelta(days=40)).token
        answer(ingestor, token, {"n": score}, now=NOW + timedelta(days=40))
    assert check_eligibility(con, review, fan, now=NOW + timedelta(days=41)).allowed
    refused = check_eligibility(con, review, biz, now=NOW + timedelta(days=41))
    assert not refused.allowed and "needs a last nps answer from 9" in refused.reason
    assert "last was 6" in refused.reason


def test_bad_answers_name_the_question(ingestor: Ingestor, ces_survey: Survey) -> None:
    token = invite(ingestor, ces_survey, person(ingestor, "u-1"), now=NOW).token
    with pytest.raises(InvalidInput, match="ease: 9 is out of range"):
        answer(ingestor, token, {"ease": 9}, now=NOW)
    with pytest.raises(InvalidInput, match="ease: an answer is required"):
        answer(ingestor, token, {}, now=NOW)
    with pytest.raises(InvalidInput, match="unknown questions: colour"):
        answer(ingestor, token, {"ease": 5, "colour": "red"}, now=NOW)
    with pytest.raises(NotFound):
        answer(ingestor, "not-a-token", {"ease": 5}, now=NOW)
    with pytest.raises(Conflict, match="expired"):
        answer(ingestor, token, {"ease": 5}, now=NOW + timedelta(days=15))
