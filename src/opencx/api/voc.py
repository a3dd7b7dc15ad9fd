"""Voice-of-the-customer API: surveys, invitations, answers (embeddable), cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from opencx.api.deps import AgentDep, AnalystDep, ConDep, StateDep
from opencx.errors import InvalidInput
from opencx.identity import parse_identifier
from opencx.orchestrate.engine import survey_admission
from opencx.profiles import find_profiles
from opencx.voc import (
    ROOT_CAUSES,
    Case,
    LoopMetrics,
    RootCause,
    get_case,
    get_survey,
    invitation_for_token,
    invite,
    list_cases,
    list_surveys,
    loop_metrics,
    record_answer,
    root_causes,
    run_schedule,
    run_trigger,
    save_survey,
    update_case,
)

router = APIRouter(tags=["voice of the customer"])


def _survey_json(survey: Any) -> dict[str, Any]:
    data: dict[str, Any] = survey.model_dump(mode="json")
    data["survey_type"] = survey.survey_type
    return data


@router.get("/api/v1/surveys", summary="Survey definitions")
def surveys(_: AnalystDep, con: ConDep) -> list[dict[str, Any]]:
    return [_survey_json(s) for s in list_surveys(con)]


@router.put("/api/v1/surveys", summary="Create or replace a survey (YAML or JSON)")
async def put_survey(request: Request, token: AnalystDep, con: ConDep) -> dict[str, Any]:
    body = (await request.body()).decode("utf-8", "replace")
    return _survey_json(save_survey(con, body, by=f"token:{token.name}"))


class InvitationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identifier: str = Field(description="Who: KIND:VALUE, e.g. email:jane@example.com.")
    channel: str | None = None
    touchpoint: str | None = None
    trigger_message_id: str | None = None


@dataclass(frozen=True)
class InvitationAnswer:
    invitation_id: str
    person_id: str
    url: str
    token: str
    expires_at: datetime


@router.post(
    "/api/v1/surveys/{survey_id}/invitations",
    response_model=InvitationAnswer,
    status_code=201,
    summary="Invite one person, if the recontact rules allow (409 with the reason if not)",
)
def create_invitation(
    survey_id: str, body: InvitationRequest, _: AgentDep, state: StateDep, request: Request
) -> InvitationAnswer:
    con = state.store.cursor()
    key = parse_identifier(body.identifier, state.ingestor.extractor)
    people = find_profiles(con, key)
    if not people:
        raise InvalidInput(f"nobody is known as {body.identifier!r}")
    issued = invite(
        state.ingestor, get_survey(con, survey_id), people[0], channel=body.channel,
        touchpoint=body.touchpoint, trigger_message_id=body.trigger_message_id,
        global_wait=_wait(state), admit=survey_admission(state.store),
    )  # fmt: skip
    inv = issued.invitation
    return InvitationAnswer(
        inv.id,
        inv.person_id,
        issued.url(state.settings.public_url or str(request.base_url)),
        issued.token,
        inv.expires_at,
    )


def _wait(state: Any) -> timedelta:
    return timedelta(days=state.settings.survey_wait_days)


@dataclass(frozen=True)
class RunAnswer:
    survey_id: str
    considered: int
    invited: int
    refused: dict[str, int]


@router.post(
    "/api/v1/surveys/{survey_id}/run",
    response_model=RunAnswer,
    summary="Send the invitations due now (after its trigger touchpoint, or its schedule)",
)
def run_survey(survey_id: str, _: AnalystDep, state: StateDep) -> RunAnswer:
    survey = get_survey(state.store.cursor(), survey_id)
    admit, wait = survey_admission(state.store), _wait(state)
    run = (
        run_schedule(state.ingestor, survey, global_wait=wait, admit=admit)
        if survey.schedule
        else run_trigger(state.ingestor, survey, global_wait=wait, admit=admit)
    )
    return RunAnswer(run.survey_id, run.considered, len(run.invited), dict(run.refused))


# -- the embeddable answer API: the invitation token is the credential ------------
@router.get(
    "/api/v1/survey-invitations/{token}",
    summary="The survey behind an invitation link (for an app or site to render)",
)
def invitation(token: str, state: StateDep) -> dict[str, Any]:
    con = state.store.cursor()
    inv = invitation_for_token(con, token)
    return {
        "invitation_id": inv.id,
        "status": inv.status,
        "expires_at": inv.expires_at.isoformat(),
        "survey": _survey_json(get_survey(con, inv.survey_id)),
    }


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: dict[str, Any] = Field(description="Question id → answer.")
    channel: str | None = Field(default=None, description="Where it was answered (app, web).")


@router.post(
    "/api/v1/survey-invitations/{token}",
    summary="Answer an invitation (once); an unhappy answer opens a case",
)
def answer_invitation(token: str, body: AnswerRequest, state: StateDep) -> dict[str, Any]:
    recorded = record_answer(
        state.ingestor, token, body.answers, channel=body.channel,
        queue=state.settings.case_queue, sla_hours=state.settings.case_sla_hours,
    )  # fmt: skip
    return {"recorded": True, "score": recorded.answer.score, "case_opened": bool(recorded.case)}


# -- cases ------------------------------------------------------------------------
@router.get("/api/v1/cases", response_model=list[Case], summary="Closed-loop cases")
def cases(
    _: AgentDep,
    con: ConDep,
    status: Annotated[str | None, Query(description="A status, or 'unresolved'.")] = None,
    queue: str | None = None,
    owner: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[Case]:
    return list_cases(con, status=status, queue=queue, owner=owner, limit=limit)


@dataclass(frozen=True)
class LoopAnswer:
    metrics: LoopMetrics
    root_causes: list[RootCause]
    root_cause_codes: tuple[str, ...]


@router.get("/api/v1/cases/metrics", response_model=LoopAnswer, summary="How the loop closes")
def case_metrics(_: AnalystDep, con: ConDep) -> LoopAnswer:
    return LoopAnswer(loop_metrics(con), root_causes(con), ROOT_CAUSES)


@router.get("/api/v1/cases/{case_id}", response_model=Case, summary="One case, with notes")
def case(case_id: str, _: AgentDep, con: ConDep) -> Case:
    return get_case(con, case_id)


class CaseUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "in_progress", "waiting_on_customer", "resolved"] | None = None
    owner: str | None = None
    note: str | None = None
    root_cause: str | None = None
    follow_up: bool = Field(default=False, description="On resolving: ask 'is it solved?'")


@router.patch("/api/v1/cases/{case_id}", response_model=Case, summary="Work a case")
def patch_case(
    case_id: str, body: Annotated[CaseUpdate, Body()], token: AgentDep, state: StateDep
) -> Case:
    change = update_case(
        state.ingestor, case_id, by=f"token:{token.name}", status=body.status,
        owner=body.owner, note=body.note, root_cause=body.root_cause, follow_up=body.follow_up,
        admit=survey_admission(state.store, purpose="service"),
    )  # fmt: skip
    return change.case
