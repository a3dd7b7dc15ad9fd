"""The closed loop: rules open cases with SLAs; changes and resolution are events; metrics."""

from __future__ import annotations

from datetime import timedelta

import pytest

from opencx.errors import InvalidInput
from opencx.ingest import Ingestor
from opencx.profiles import timeline
from opencx.voc import (
    Survey,
    answer,
    invite,
    list_cases,
    loop_metrics,
    match_rule,
    open_case,
    open_cases_from_answers,
    root_causes,
    update_case,
)
from tests.conftest import WEB
from tests.voc.conftest import NOW, person


@pytest.mark.parametrize(
    ("props", "rule", "priority"),
    [
        ({"survey_type": "nps", "score": 6}, "detractor", "normal"),
        ({"survey_type": "nps", "score": 2}, "detractor", "high"),
        ({"survey_type": "nps", "score": 7}, None, None),
        ({"survey_type": "csat", "score": 2}, "low-csat", "normal"),
        ({"survey_type": "ces", "score": 1}, "high-effort", "high"),
        ({"survey_type": "ces", "score": 5}, None, None),
        ({"survey_type": "csat", "score": 4, "sentiment_score": -0.9}, "angry-verbatim", "high"),
    ],
)
def test_default_rules(props: dict[str, object], rule: str | None, priority: str | None) -> None:
    matched = match_rule(props)  # type: ignore[arg-type]
    found = (matched[0].name, matched[2]) if matched else (None, None)
    assert found == (rule, priority)


def test_a_low_answer_opens_one_case_with_its_due_time(
    ingestor: Ingestor, ces_survey: Survey
) -> None:
    jane = person(ingestor, "u-1")
    got = answer(ingestor, invite(ingestor, ces_survey, jane, now=NOW).token, {"ease": 1}, now=NOW)
    props = {"survey_id": "ces-contact", "survey_type": "ces", "score": 1,
             "touchpoint": "call_ended@phone"}  # fmt: skip
    case = open_case(
        ingestor, person_id=jane, source_message_id=got.message_id, properties=props, now=NOW
    )
    assert case is not None and case.priority == "high" and case.due_at == NOW + timedelta(hours=24)
    assert case.reason == "CES 1 (≤ 3)" and case.status == "open" and case.queue == "customer-care"
    again = open_case(
        ingestor, person_id=jane, source_message_id=got.message_id, properties=props, now=NOW
    )
    assert again is None
    assert "Case Opened" in [e.event for e in timeline(ingestor.store.con, jane, limit=20)]


def test_cases_for_imported_answers_and_the_loop_metrics(ingestor: Ingestor) -> None:
    people = [person(ingestor, f"u-{i}") for i in range(4)]
    scores = [2, 9, 5, 0]
    ingestor.ingest(
        [{"type": "track", "event": "Survey Responded", "userId": f"u-{i}",
          "messageId": f"imported-{i}", "timestamp": NOW.isoformat(),
          "properties": {"survey_id": "nps-q", "survey_type": "nps", "score": s,
                         "touchpoint": "relationship", "comment": "ok"}}
         for i, s in enumerate(scores)],
        WEB,
    )  # fmt: skip
    assert open_cases_from_answers(ingestor) == 3  # 2, 5 and 0 are detractors
    assert open_cases_from_answers(ingestor) == 0  # idempotent
    cases = list_cases(ingestor.store.con, status="unresolved")
    assert [c.priority for c in cases].count("high") == 2  # 0 and 2
    first = cases[0]
    with pytest.raises(InvalidInput, match="needs a root cause"):
        update_case(ingestor, first.id, by="agent@x", status="resolved", now=NOW)
    update_case(ingestor, first.id, by="agent@x", note="Called back", now=NOW + timedelta(hours=2))
    change = update_case(
        ingestor, first.id, by="agent@x", status="resolved", root_cause="app-defect",
        follow_up=True, now=NOW + timedelta(hours=5),
    )  # fmt: skip
    assert change.case.status == "resolved" and change.case.notes[0].text == "Called back"
    assert change.follow_up is not None  # the follow-up survey, despite the waiting time
    events = [e.event for e in timeline(ingestor.store.con, first.person_id, limit=20)]
    assert {"Case Updated", "Case Resolved", "Survey Invited"} <= set(events)
    metrics = loop_metrics(ingestor.store.con, now=NOW + timedelta(days=5))
    assert metrics.cases == 3 and metrics.open == 2 and metrics.overdue == 2
    assert metrics.median_hours_to_first_action == pytest.approx(2.0)
    assert metrics.resolved_within_sla == 1.0
    causes = root_causes(ingestor.store.con)
    assert causes[0].code == "undiagnosed: relationship" and causes[0].customers == 2
    assert {c.code for c in causes} == {"undiagnosed: relationship", "app-defect"}
    assert people  # four known people, three cases
