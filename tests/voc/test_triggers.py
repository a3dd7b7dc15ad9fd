"""Triggers after a touchpoint and relationship waves, under the recontact rules."""

from __future__ import annotations

from datetime import timedelta

from opencx.ingest import Ingestor
from opencx.voc import Survey, invite, run_schedule, run_trigger, save_survey
from tests.conftest import WEB
from tests.voc.conftest import NOW, person


def call(ingestor: Ingestor, user_id: str, hours_ago: float, n: int = 0) -> None:
    ingestor.ingest(
        [{"type": "track", "event": "Call Ended", "userId": user_id,
          "messageId": f"call-{user_id}-{n}",
          "timestamp": (NOW - timedelta(hours=hours_ago)).isoformat(),
          "context": {"channel": "phone"}}],
        WEB,
    )  # fmt: skip


def test_people_are_invited_after_their_call_once(ingestor: Ingestor, ces_survey: Survey) -> None:
    ana, bo, cy = (person(ingestor, u) for u in ("u-ana", "u-bo", "u-cy"))
    call(ingestor, "u-ana", 2)
    call(ingestor, "u-bo", 1.5)
    call(ingestor, "u-cy", 0.5)  # less than the 1 h delay ago: not yet
    other = save_survey(ingestor.store.con, "id: other\nname: O\nquestions: [{id: c, type: csat}]")
    invite(ingestor, other, bo, now=NOW - timedelta(days=2))  # asked 2 days ago elsewhere
    run = run_trigger(ingestor, ces_survey, now=NOW)
    assert run.considered == 2
    assert [i.invitation.person_id for i in run.invited] == [ana]
    assert run.invited[0].invitation.channel == "sms"
    assert run.refused == {"last survey invitation": 1}
    again = run_trigger(ingestor, ces_survey, now=NOW)  # Ana's call is used; Bo still waits
    assert again.considered == 1 and not again.invited
    assert cy


def test_a_relationship_wave_asks_each_active_customer_once_a_quarter(ingestor: Ingestor) -> None:
    people = [person(ingestor, f"u-{i}") for i in range(3)]
    for i in range(3):
        call(ingestor, f"u-{i}", 24 * 10, n=i)
    nps = save_survey(
        ingestor.store.con,
        "id: nps-rel\nname: Quarterly NPS\nkind: relationship\nschedule: quarterly\n"
        "questions: [{id: n, type: nps}]\nrecontact: {show: up_to, max_times: 40}",
    )
    wave = run_schedule(ingestor, nps, now=NOW)
    assert {i.invitation.person_id for i in wave.invited} == set(people)
    assert all(i.invitation.touchpoint == "relationship" for i in wave.invited)
    assert run_schedule(ingestor, nps, now=NOW + timedelta(days=20)).considered == 0
    next_quarter = run_schedule(ingestor, nps, now=NOW + timedelta(days=45))
    assert len(next_quarter.invited) == 3
