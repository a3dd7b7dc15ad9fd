"""Acting API: triggers, the contact policy and its dry run, decisions, outbox, agent tasks,
and next best action for one person."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from opencx.api.deps import AdminDep, AgentDep, AnalystDep, ConDep, audit
from opencx.errors import InvalidInput, NotFound
from opencx.orchestrate.actions import load_actions, save_actions
from opencx.orchestrate.decisions import decision_counts, decisions_of, list_decisions
from opencx.orchestrate.engine import recommend
from opencx.orchestrate.outbox import list_outbox, outbox_counts, outbox_of, retry
from opencx.orchestrate.policy import Decision, load_policy, parse_policy, save_policy
from opencx.orchestrate.simulate import simulate
from opencx.orchestrate.triggers import (
    Trigger,
    delete_trigger,
    get_trigger,
    list_triggers,
    save_trigger,
)
from opencx.profiles import canonical_id, get_profile

router = APIRouter(tags=["acting"])


def _decision_json(d: Decision) -> dict[str, Any]:
    p = d.proposal
    return {
        "id": d.id, "decided_at": d.decided_at.isoformat(), "person_id": p.person_id,
        "action": p.action, "trigger": p.trigger, "cause": p.cause, "channel": p.channel,
        "purpose": p.purpose, "priority": p.priority, "outcome": d.outcome, "rule": d.rule,
        "hold_until": d.hold_until.isoformat() if d.hold_until else None,
        "reasons": list(d.reasons), "outbox_id": d.outbox_id,
    }  # fmt: skip


def _trigger_json(trigger: Trigger) -> dict[str, Any]:
    data: dict[str, Any] = trigger.model_dump(mode="json")
    return data


async def _text(request: Request) -> str:
    return (await request.body()).decode("utf-8", "replace")


@router.get("/api/v1/triggers", summary="Triggers")
def triggers(_: AnalystDep, con: ConDep) -> list[dict[str, Any]]:
    return [_trigger_json(t) for t in list_triggers(con)]


@router.put("/api/v1/triggers", summary="Create or replace a trigger (YAML or JSON)")
async def put_trigger(request: Request, token: AdminDep, con: ConDep) -> dict[str, Any]:
    return _trigger_json(save_trigger(con, await _text(request), by=f"token:{token.name}"))


@router.get("/api/v1/triggers/{trigger_id}", summary="One trigger")
def read_trigger(trigger_id: str, _: AnalystDep, con: ConDep) -> dict[str, Any]:
    return _trigger_json(get_trigger(con, trigger_id))


@router.delete("/api/v1/triggers/{trigger_id}", summary="Delete a trigger", status_code=204)
def remove_trigger(trigger_id: str, _: AdminDep, con: ConDep) -> None:
    delete_trigger(con, trigger_id)


@router.get("/api/v1/actions", summary="The next-best-action catalogue")
def actions(_: AnalystDep, con: ConDep) -> dict[str, Any]:
    data: dict[str, Any] = load_actions(con).model_dump(mode="json")
    return data


@router.put("/api/v1/actions", summary="Replace the next-best-action catalogue (YAML or JSON)")
async def put_actions(request: Request, token: AdminDep, con: ConDep) -> dict[str, Any]:
    data: dict[str, Any] = save_actions(
        con, await _text(request), by=f"token:{token.name}"
    ).model_dump(mode="json")
    return data


@router.get("/api/v1/policy", summary="The contact policy in force (YAML)")
def read_policy(_: AnalystDep, con: ConDep) -> PlainTextResponse:
    return PlainTextResponse(load_policy(con).to_yaml(), media_type="application/yaml")


@router.put("/api/v1/policy", summary="Replace the contact policy (YAML or JSON)")
async def put_policy(request: Request, token: AdminDep, con: ConDep) -> PlainTextResponse:
    policy = save_policy(con, await _text(request), by=f"token:{token.name}")
    return PlainTextResponse(policy.to_yaml(), media_type="application/yaml")


@router.post("/api/v1/policy/simulate", summary="Dry run of a policy over the last days")
async def simulate_policy(
    request: Request,
    _: AnalystDep,
    con: ConDep,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> dict[str, Any]:
    """The body is a policy to try (YAML or JSON); empty: the policy in force."""
    text = (await _text(request)).strip()
    policy = parse_policy(text) if text else load_policy(con)
    return simulate(con, policy, days=days).as_dict()


@router.get("/api/v1/decisions", summary="The decisions log: sent, held, dropped, and why")
def decisions(
    _: AnalystDep,
    con: ConDep,
    person: str | None = None,
    outcome: Literal["send", "hold", "drop"] | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> list[dict[str, Any]]:
    if person:
        found = decisions_of(con, canonical_id(con, person), limit=limit)
        found = [d for d in found if outcome is None or d.outcome == outcome]
    else:
        found = list_decisions(con, since=since, outcome=outcome, limit=limit)
    return [_decision_json(d) for d in found]


@router.get("/api/v1/decisions/summary", summary="Decisions by outcome, rule and channel")
def decisions_summary(_: AnalystDep, con: ConDep, since: datetime) -> dict[str, Any]:
    if since.tzinfo is None:
        raise InvalidInput("since must include a time zone, e.g. 2026-11-01T00:00:00Z")
    return decision_counts(con, since)


def _item_json(item: Any) -> dict[str, Any]:
    data = asdict(item)
    for key, value in data.items():
        if isinstance(value, datetime):
            data[key] = value.isoformat()
    return data


@router.get("/api/v1/outbox", summary="Outgoing messages and their delivery state")
def outbox(
    _: AnalystDep,
    con: ConDep,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> dict[str, Any]:
    items = list_outbox(con, status=status, limit=limit)
    return {"counts": outbox_counts(con), "items": [_item_json(i) for i in items]}


@router.post("/api/v1/outbox/{item_id}/retry", summary="Send a dead-lettered message again")
def retry_item(item_id: str, _: AdminDep, con: ConDep) -> dict[str, Any]:
    return _item_json(retry(con, item_id, datetime.now(UTC)))


_TASK_COLUMNS = "id, person_id, created_at, title, body, trigger, cause, status, done_at, done_by"


def _task_json(row: tuple[Any, ...]) -> dict[str, Any]:
    data = dict(zip(_TASK_COLUMNS.split(", "), row, strict=True))
    for key in ("created_at", "done_at"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


@router.get("/api/v1/tasks", summary="Agent tasks created by triggers")
def tasks(
    _: AgentDep,
    con: ConDep,
    status: Literal["open", "done", "all"] = "open",
    person: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> list[dict[str, Any]]:
    who = canonical_id(con, person) if person else None
    rows = con.execute(
        f"SELECT {_TASK_COLUMNS} FROM agent_tasks WHERE (? = 'all' OR status = ?) "
        "AND (? IS NULL OR person_id = ?) ORDER BY created_at DESC LIMIT ?",
        [status, status, who, who, limit],
    ).fetchall()
    return [_task_json(r) for r in rows]


@router.post("/api/v1/tasks/{task_id}/done", summary="Mark an agent task done")
def finish_task(task_id: str, token: AgentDep, con: ConDep) -> dict[str, Any]:
    rows = con.execute(
        f"UPDATE agent_tasks SET status = 'done', done_at = ?, done_by = ? WHERE id = ? "
        f"RETURNING {_TASK_COLUMNS}",
        [datetime.now(UTC), f"token:{token.name}", task_id],
    ).fetchall()
    if not rows:
        raise NotFound(f"no agent task {task_id!r}")
    return _task_json(rows[0])


@router.get(
    "/api/v1/profiles/{profile_id}/next-best-action",
    summary="What to do for this person now, ranked, each with its reasons",
)
def next_best_action(
    profile_id: str,
    token: AgentDep,
    con: ConDep,
    request: Request,
    channel: str | None = None,
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> dict[str, Any]:
    person = get_profile(con, profile_id).id  # NotFound for an unknown profile
    audit(request, token, "profile.next_best_action", "profile", person)
    found = recommend(con, person, channel=channel, limit=limit)
    return {
        "person_id": person,
        "channel": channel,
        "actions": [asdict(r) for r in found],
        "decisions": [_decision_json(d) for d in decisions_of(con, person, limit=10)],
        "outbox": [_item_json(i) for i in outbox_of(con, person)[:10]],
    }
