"""Triggers: when something happens (or on a schedule), propose an action for a person.

A trigger is a YAML document:

    id: delivery-update
    name: Delivery update after a web order
    when: {event: Order Completed, channel: web}     # or: schedule: {every: day, at: "10:00"}
    audience: vip                                    # optional saved segment
    action:
      type: message                                  # message | survey | task | webhook | trait
      channel: email
      purpose: transactional
      subject: Your order is on its way
      text: "Hi $first_name, your order $order_id ships today."

Customer contacts (messages, surveys) are proposals that the contact policy decides on
(`opencx.orchestrate.decisions.gate`); what it lets through goes to the outbox in the same
transaction. Agent tasks, trait updates and webhooks to other systems are not contacts:
they are done at once, each at most once per cause.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from string import Template
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opencx.documents import document_yaml, parse_document
from opencx.durations import duration_field
from opencx.errors import InvalidInput
from opencx.ingest import Ingestor, SourceContext
from opencx.orchestrate.decisions import due_holds, gate
from opencx.orchestrate.outbox import INTEGRATION, enqueue
from opencx.orchestrate.policy import ContactPolicy, Decision, Proposal, Purpose
from opencx.orchestrate.state import person_states
from opencx.store import delete_document, list_documents, put_document, require_document
from opencx.types import CHANNELS
from opencx.voc import get_survey
from opencx.voc.invitations import (
    PersonEvent,
    check_eligibility,
    create_invitation,
    emit_many,
    people_fields,
)

log = logging.getLogger("opencx.orchestrate")
TRIGGER = "trigger"
ActionType = Literal["message", "survey", "task", "webhook", "trait"]
CONTACTS: frozenset[str] = frozenset({"message", "survey"})
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FIELD = r"^[A-Za-z_][A-Za-z0-9_.]{0,63}$"


def _channels(value: object) -> object:
    items = [value] if isinstance(value, str) else value
    if isinstance(items, (list, tuple)):
        unknown = [c for c in items if c not in CHANNELS]
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r}: use one of {', '.join(CHANNELS)}")
        return tuple(items)
    return value


class Before(BaseModel):
    """Only when the person did this shortly before (e.g. a web attempt before a call)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: tuple[str, ...] = ()
    event: str | None = None
    within: timedelta = timedelta(hours=48)

    _check_channel = field_validator("channel", mode="before")(lambda cls, v: _channels(v))

    @field_validator("within", mode="before")
    @classmethod
    def _within(cls, value: object) -> object:
        return duration_field(value, "within")


class When(BaseModel):
    """An event (by name, on some channels, with some property values), `delay` later."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: str = Field(min_length=1, max_length=200)
    channel: tuple[str, ...] = ()
    where: dict[str, str | int | float | bool] = Field(default_factory=dict)
    delay: timedelta = timedelta(0)
    max_age: timedelta = Field(
        default=timedelta(days=2),
        description="Events older than this when due are not acted on (e.g. a bulk import).",
    )
    after: Before | None = None

    _check_channel = field_validator("channel", mode="before")(lambda cls, v: _channels(v))

    @field_validator("delay", "max_age", mode="before")
    @classmethod
    def _spans(cls, value: object) -> object:
        return duration_field(value, "delay")

    @field_validator("where")
    @classmethod
    def _keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not re.match(_FIELD, key):
                raise ValueError(f"property name {key!r} must be letters, digits, _ or .")
        return value


class Schedule(BaseModel):
    """Every day (or on some weekdays) at a local time of each person."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    every: Literal["day", "week"] = "day"
    at: time = time(10, 0)
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = ()

    @model_validator(mode="after")
    def _days(self) -> Schedule:
        if self.every == "week" and not self.days:
            raise ValueError("a weekly schedule needs days, e.g. [mon]")
        return self


class Action(BaseModel):
    """What to do for the person."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ActionType
    channel: str = "email"
    purpose: Purpose = "service"
    priority: int = Field(default=0, ge=-100, le=100)
    quiet_hours: Literal["hold", "drop"] = "hold"
    adapter: str | None = Field(default=None, description="Delivery adapter; default by channel.")
    subject: str = ""
    text: str = ""
    survey: str | None = None
    url: str | None = None
    traits: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    title: str = ""

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"must be one of {', '.join(CHANNELS)}")
        return value

    @model_validator(mode="after")
    def _complete(self) -> Action:
        needs = {
            "message": ("text", self.text),
            "survey": ("survey", self.survey),
            "task": ("title", self.title),
            "webhook": ("url", self.url),
            "trait": ("traits", self.traits),
        }
        name, value = needs[self.type]
        if not value:
            raise ValueError(f"a {self.type} action needs {name}")
        if self.adapter == "webhook" and not self.url:
            raise ValueError("a message through the webhook adapter needs url (the gateway)")
        if self.url is not None and not self.url.startswith(("https://", "http://")):
            raise ValueError("url must start with https:// or http://")
        for text in (self.subject, self.text, self.title):
            try:
                Template(text).get_identifiers()
            except ValueError as exc:
                raise ValueError(f"bad placeholder in {text!r}: {exc}") from None
        return self


class Trigger(BaseModel):
    """One rule: when (an event, or a schedule), for whom (audience), do what (action)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    name: str = Field(default="", max_length=200)
    enabled: bool = True
    when: When | None = None
    schedule: Schedule | None = None
    audience: str | None = Field(default=None, description="A saved segment's name.")
    action: Action

    @model_validator(mode="after")
    def _one_start(self) -> Trigger:
        if (self.when is None) == (self.schedule is None):
            raise ValueError("a trigger needs exactly one of `when` (an event) or `schedule`")
        if self.schedule is not None and self.audience is None:
            raise ValueError("a scheduled trigger needs an audience (a saved segment)")
        return self

    def to_yaml(self) -> str:
        return document_yaml(self)


def parse_trigger(data: str | Mapping[str, Any]) -> Trigger:
    """A trigger from YAML text or a mapping, with errors naming the field."""
    return parse_document(Trigger, data, "trigger", "a mapping with id, when or schedule, action")


def save_trigger(
    con: duckdb.DuckDBPyConnection, data: str | Mapping[str, Any], *, by: str | None = None
) -> Trigger:
    """Save (or replace) a trigger; a new one starts from now, never from old history."""
    found = parse_trigger(data)
    if found.action.type == "survey" and found.action.survey:
        get_survey(con, found.action.survey)  # NotFound names the survey
    with_seq = con.execute("SELECT coalesce(max(seq), -1) FROM events").fetchall()
    con.execute(
        "INSERT INTO trigger_runs (trigger, last_seq) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [found.id, with_seq[0][0]],
    )
    put_document(con, TRIGGER, found.id, found.to_yaml(), by)
    return found


def get_trigger(con: duckdb.DuckDBPyConnection, trigger_id: str) -> Trigger:
    doc = require_document(con, TRIGGER, trigger_id, f"no trigger {trigger_id!r}", "defined")
    return parse_trigger(doc.body)


def list_triggers(con: duckdb.DuckDBPyConnection) -> list[Trigger]:
    return [parse_trigger(d.body) for d in list_documents(con, TRIGGER)]


def delete_trigger(con: duckdb.DuckDBPyConnection, trigger_id: str) -> None:
    get_trigger(con, trigger_id)
    delete_document(con, TRIGGER, trigger_id)
    con.execute("DELETE FROM trigger_runs WHERE trigger = ?", [trigger_id])


@dataclass(frozen=True)
class Cause:
    """Why a trigger fired for a person: the event (or the scheduled day) behind it."""

    person_id: str
    key: str
    cause: str
    properties: dict[str, Any]
    channel: str | None


@dataclass
class TriggerRun:
    """What one round of triggers did: matches, decisions by outcome, tasks, errors."""

    matched: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    done: Counter[str] = field(default_factory=Counter)
    decisions: list[Decision] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _start_seq(con: duckdb.DuckDBPyConnection, trigger: Trigger) -> int:
    rows = con.execute("SELECT last_seq FROM trigger_runs WHERE trigger = ?", [trigger.id])
    found = rows.fetchall()
    if found:
        return int(found[0][0])
    latest = con.execute("SELECT coalesce(max(seq), -1) FROM events").fetchall()[0][0]
    con.execute(
        "INSERT INTO trigger_runs (trigger, last_seq) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [trigger.id, latest],
    )
    return int(latest)


def event_causes(
    con: duckdb.DuckDBPyConnection, trigger: Trigger, now: datetime, *, limit: int = 50_000
) -> list[Cause]:
    """The due events this trigger has not acted on yet; moves its watermark on."""
    when = trigger.when
    assert when is not None
    start = _start_seq(con, trigger)
    where = ["e.seq > ?", "e.type = 'track'", "e.event = ?", "e.person_id IS NOT NULL"]
    params: list[Any] = [start, when.event]
    if when.channel:
        where.append("e.channel IN (SELECT unnest(?::VARCHAR[]))")
        params.append(list(when.channel))
    for key, value in when.where.items():
        where.append(f"json_extract_string(e.properties, '$.{key}') = ?")
        params.append(str(value).lower() if isinstance(value, bool) else str(value))
    if trigger.audience:
        where.append("e.person_id IN (SELECT person_id FROM segment_members WHERE segment = ?)")
        params.append(trigger.audience)
    if when.after is not None:
        prior = ["p.person_id = e.person_id", "p.timestamp < e.timestamp", "p.timestamp >= ?"]
        prior[-1] = "p.timestamp >= e.timestamp - to_seconds(?)"
        params.append(when.after.within.total_seconds())
        if when.after.channel:
            prior.append("p.channel IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(when.after.channel))
        if when.after.event:
            prior.append("p.event = ?")
            params.append(when.after.event)
        where.append(f"EXISTS (SELECT 1 FROM analytics_events p WHERE {' AND '.join(prior)})")
    rows = con.execute(
        "SELECT e.person_id, e.message_id, e.seq, e.timestamp, e.channel, e.properties "
        f"FROM analytics_events e WHERE {' AND '.join(where)} ORDER BY e.seq LIMIT ?",
        [*params, limit],
    ).fetchall()
    due_by = now - when.delay
    oldest = due_by - when.max_age
    causes: list[Cause] = []
    waiting: list[int] = []
    for person, message_id, seq, at, channel, properties in rows:
        if at > due_by:
            waiting.append(int(seq))
            continue
        if at < oldest:
            continue
        key = f"{trigger.id}:{message_id}"
        props = orjson.loads(properties) if properties else {}
        causes.append(Cause(person, key, message_id, props, channel))
    last = int(rows[-1][2]) if rows else start
    watermark = min(waiting) - 1 if waiting else last
    con.execute(
        "UPDATE trigger_runs SET last_seq = ?, last_run_at = ? WHERE trigger = ?",
        [watermark, now, trigger.id],
    )
    return _not_done(con, causes)


def _zone(name: str | None, default: ZoneInfo) -> ZoneInfo:
    if not name:
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return default


def schedule_causes(
    con: duckdb.DuckDBPyConnection, trigger: Trigger, now: datetime, *, default_zone: str
) -> list[Cause]:
    """Audience members whose local time has passed the schedule's time today, once a day."""
    schedule = trigger.schedule
    assert schedule is not None and trigger.audience is not None
    members = [
        r[0]
        for r in con.execute(
            "SELECT person_id FROM segment_members WHERE segment = ? ORDER BY person_id",
            [trigger.audience],
        ).fetchall()
    ]
    if not members:
        return []
    fallback = ZoneInfo(default_zone)
    states = person_states(con, now, members)
    causes = []
    for person in members:
        state = states.get(person)
        local = now.astimezone(_zone(state.timezone if state else None, fallback))
        if schedule.days and WEEKDAYS[local.weekday()] not in schedule.days:
            continue
        if local.time() < schedule.at:
            continue
        day = local.date().isoformat()
        causes.append(Cause(person, f"{trigger.id}:{day}:{person}", f"schedule:{day}", {}, None))
    return _not_done(con, causes)


def _not_done(con: duckdb.DuckDBPyConnection, causes: list[Cause]) -> list[Cause]:
    """Leave out causes already decided (sent or dropped) or done (a task, a trait)."""
    if not causes:
        return causes
    keys = [c.key for c in causes]
    done = {
        r[0]
        for r in con.execute(
            "SELECT key FROM decisions WHERE key IN (SELECT unnest(?::VARCHAR[])) "
            "AND outcome IN ('send', 'drop') UNION ALL "
            "SELECT idempotency_key FROM outbox WHERE idempotency_key IN "
            "(SELECT unnest(?::VARCHAR[])) UNION ALL "
            "SELECT cause FROM agent_tasks WHERE cause IN (SELECT unnest(?::VARCHAR[]))",
            [keys, keys, keys],
        ).fetchall()
    }
    return [c for c in causes if c.key not in done]


def _task_id(key: str) -> str:
    return "task_" + hashlib.sha256(key.encode()).hexdigest()[:16]


class _Fields(dict[str, str]):
    """Placeholders in messages: missing ones become empty, values are plain text."""

    def __missing__(self, key: str) -> str:
        return ""


def render(text: str, values: Mapping[str, Any]) -> str:
    """`$first_name` and `${order_id}` filled from traits and the event's properties."""
    fields = _Fields({k: "" if v is None else str(v) for k, v in values.items()})
    return Template(text).safe_substitute(fields)


def _people(con: duckdb.DuckDBPyConnection, person_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Traits, latest email and phone of each person, for addresses and placeholders."""
    rows = con.execute(
        "SELECT profile_id, traits, email, phone FROM profiles "
        "WHERE profile_id IN (SELECT unnest(?::VARCHAR[]))",
        [sorted(set(person_ids))],
    ).fetchall()
    found = {}
    for person, traits, email, phone in rows:
        values = dict(orjson.loads(traits)) if traits else {}
        values.update({"email": email, "phone": phone, "person_id": person})
        found[person] = values
    missing = sorted(set(person_ids) - set(found))
    if missing:  # the summary table lags new people by a refresh: read their identifiers
        for person, kind, value in con.execute(
            "SELECT coalesce(m.canonical_id, i.profile_id), i.kind, i.value FROM identities i "
            "LEFT JOIN profile_merges m ON i.profile_id = m.profile_id "
            "WHERE coalesce(m.canonical_id, i.profile_id) IN (SELECT unnest(?::VARCHAR[])) "
            "AND i.kind IN ('email', 'phone') ORDER BY i.seq",
            [missing],
        ).fetchall():
            found.setdefault(person, {"person_id": person})[kind] = value
    return found


_DEFAULT_ADAPTER = {"email": "email"}


def _destination(action: Action, person: Mapping[str, Any]) -> str | None:
    """Where the outbox sends it: a webhook's (or a gateway's) URL, else the address."""
    if action.type == "webhook" or action.adapter == "webhook":
        return action.url
    if action.channel == "email":
        return person.get("email")
    if action.channel == "sms":
        return person.get("phone")
    return None


@dataclass
class _Planned:
    trigger: Trigger
    cause: Cause


class _Sender:
    """What the gate calls for each contact it lets through, inside its transaction."""

    def __init__(self, planned: Mapping[str, _Planned], people: Mapping[str, Any], base_url: str):
        self.planned = planned
        self.people = people
        self.base_url = base_url.rstrip("/")
        self.invited: list[PersonEvent] = []

    def __call__(self, con: duckdb.DuckDBPyConnection, decision: Decision) -> str | None:
        plan = self.planned[decision.proposal.key]
        action, cause = plan.trigger.action, plan.cause
        person = self.people.get(cause.person_id, {"person_id": cause.person_id})
        values = {**cause.properties, **person}
        payload: dict[str, Any] = {"trigger": plan.trigger.id, "cause": cause.cause}
        text = action.text
        if action.type == "survey" and action.survey:
            survey = get_survey(con, action.survey)
            issued = create_invitation(
                con, survey, cause.person_id, channel=action.channel,
                touchpoint=survey.touchpoint, trigger_message_id=cause.cause,
                now=decision.decided_at,
            )  # fmt: skip
            values["link"] = link = f"{self.base_url}/s/{issued.token}"
            payload.update(survey_id=survey.id, invitation_id=issued.invitation.id, link=link)
            text = text or f"{survey.name}: tell us how we did."
            if "link" not in Template(text).get_identifiers():
                text += "\n$link"
            payload["subject"] = render(action.subject or survey.name, values)
            properties = {
                "survey_id": survey.id,
                "survey_type": survey.survey_type,
                "invitation_id": issued.invitation.id,
                "touchpoint": survey.touchpoint,
                "trigger_message_id": cause.cause,
                "decision_id": decision.id,
            }
            message_id = f"survey-invited:{issued.invitation.id}"
            event = PersonEvent(
                cause.person_id, "Survey Invited", properties, action.channel, message_id,
                decision.decided_at,
            )  # fmt: skip
            self.invited.append(event)
        payload.setdefault("subject", render(action.subject, values))
        payload["text"] = render(text, values)
        if action.adapter == "webhook":  # a gateway (SMS, push) needs the person's address
            payload["to"] = person.get("phone") if action.channel == "sms" else person.get("email")
        item = enqueue(
            con,
            idempotency_key=decision.proposal.key,
            person_id=cause.person_id,
            action=plan.trigger.id,
            channel=action.channel,
            purpose=action.purpose,
            adapter=action.adapter or _DEFAULT_ADAPTER.get(action.channel, "log"),
            destination=_destination(action, person),
            payload=payload,
            at=decision.decided_at,
            decision_id=decision.id,
        )
        return item.id


def _do_now(
    ingestor: Ingestor, plans: list[_Planned], people: Mapping[str, Any], now: datetime
) -> Counter[str]:
    """Tasks, traits and webhooks to other systems: not contacts, done once per cause."""
    con = ingestor.store.cursor()
    done: Counter[str] = Counter()
    identifies: list[dict[str, Any]] = []
    fields = people_fields(
        con, [p.cause.person_id for p in plans if p.trigger.action.type == "trait"]
    )
    for plan in plans:
        action, cause = plan.trigger.action, plan.cause
        values = {**cause.properties, **people.get(cause.person_id, {})}
        if action.type == "task":
            con.execute(
                "INSERT INTO agent_tasks (id, person_id, created_at, title, body, trigger, cause) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [_task_id(cause.key), cause.person_id, now, render(action.title, values),
                 render(action.text, values) or _why(plan), plan.trigger.id, cause.key],
            )  # fmt: skip
        elif action.type == "webhook":
            enqueue(
                con, idempotency_key=cause.key, person_id=cause.person_id,
                action=plan.trigger.id, channel=action.channel, purpose=INTEGRATION,
                adapter="webhook", destination=action.url,
                payload={"trigger": plan.trigger.id, "cause": cause.cause,
                         "properties": cause.properties, "text": render(action.text, values)},
                at=now,
            )  # fmt: skip
        elif action.type == "trait" and cause.person_id in fields:
            message = dict(fields[cause.person_id])
            message.update(
                type="identify", traits=dict(action.traits), messageId=f"trigger:{cause.key}",
                timestamp=now.isoformat(),
            )  # fmt: skip
            identifies.append(message)
            con.execute(
                "INSERT INTO agent_tasks (id, person_id, created_at, title, body, trigger, cause,"
                " status, done_at, done_by) VALUES (?, ?, ?, ?, ?, ?, ?, 'done', ?, 'opencx') "
                "ON CONFLICT DO NOTHING",
                [_task_id(cause.key), cause.person_id, now, f"Set {', '.join(action.traits)}",
                 _why(plan), plan.trigger.id, cause.key, now],
            )  # fmt: skip
        done[action.type] += 1
    if identifies:
        ingestor.ingest(identifies, SourceContext("opencx-orchestrate", "partner", origin="voc"))
    return done


def _why(plan: _Planned) -> str:
    trigger = plan.trigger
    if trigger.when is not None:
        return f"{trigger.name or trigger.id}: {trigger.when.event} ({plan.cause.cause})"
    return f"{trigger.name or trigger.id}: scheduled ({plan.cause.cause})"


def run_triggers(
    ingestor: Ingestor,
    policy: ContactPolicy,
    *,
    now: datetime | None = None,
    triggers: Sequence[Trigger] | None = None,
    base_url: str = "",
    default_zone: str = "UTC",
) -> TriggerRun:
    """One round: find what each enabled trigger should act on, ask the policy about the
    contacts (all triggers together, so they compete for the same budget), queue what it
    lets through, and do the rest."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    con = ingestor.store.cursor()
    run = TriggerRun()
    contacts: dict[str, _Planned] = {}
    internal: list[_Planned] = []
    active = [t for t in (triggers if triggers is not None else list_triggers(con)) if t.enabled]
    for plan in _released(con, active, now):
        contacts[plan.cause.key] = plan
        run.matched["released"] += 1
    for trigger in active:
        try:
            if trigger.when is not None:
                causes = event_causes(con, trigger, now)
            else:
                causes = schedule_causes(con, trigger, now, default_zone=default_zone)
        except (InvalidInput, duckdb.Error) as exc:
            run.errors.append(f"{trigger.id}: {exc}")
            continue
        run.matched[trigger.id] += len(causes)
        for cause in causes:
            plan = _Planned(trigger, cause)
            if trigger.action.type in CONTACTS:
                contacts[cause.key] = plan
            else:
                internal.append(plan)
    people = _people(con, [p.cause.person_id for p in [*contacts.values(), *internal]])
    if internal:
        run.done.update(_do_now(ingestor, internal, people, now))
    if contacts:
        proposals = [_proposal(plan, now) for plan in contacts.values()]
        proposals = _eligible(con, proposals, contacts, now, run)
        sender = _Sender(contacts, people, base_url)
        decisions = gate(ingestor.store, proposals, policy, now, on_send=sender)
        run.decisions.extend(decisions)
        run.outcomes.update(d.outcome for d in decisions)
        if sender.invited:
            emit_many(ingestor, sender.invited)
    return run


def _released(
    con: duckdb.DuckDBPyConnection, active: Sequence[Trigger], now: datetime
) -> list[_Planned]:
    """Contacts held earlier (quiet hours, a full budget) whose time has come: asked again."""
    by_id = {t.id: t for t in active}
    # Held contacts of a trigger disabled or deleted since are let go.
    held = [h for h in due_holds(con, now) if (h.proposal.trigger or "") in by_id]
    causes = [h.proposal.cause for h in held if h.proposal.cause and
              not h.proposal.cause.startswith("schedule:")]  # fmt: skip
    events = {
        message_id: (orjson.loads(properties) if properties else {}, channel)
        for message_id, properties, channel in con.execute(
            "SELECT message_id, any_value(properties), any_value(channel) FROM analytics_events "
            "WHERE message_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY message_id",
            [causes],
        ).fetchall()
    } if causes else {}  # fmt: skip
    plans = []
    for h in held:
        cause_id = h.proposal.cause or ""
        properties, channel = events.get(cause_id, ({}, None))
        cause = Cause(h.proposal.person_id, h.proposal.key, cause_id, properties, channel)
        plans.append(_Planned(by_id[h.proposal.trigger or ""], cause))
    return plans


def _proposal(plan: _Planned, now: datetime) -> Proposal:
    action = plan.trigger.action
    return Proposal(
        person_id=plan.cause.person_id, action=plan.trigger.id, channel=action.channel,
        purpose=action.purpose, at=now, key=plan.cause.key, priority=action.priority,
        trigger=plan.trigger.id, cause=plan.cause.cause, on_quiet_hours=action.quiet_hours,
    )  # fmt: skip


def _eligible(
    con: duckdb.DuckDBPyConnection,
    proposals: list[Proposal],
    planned: Mapping[str, _Planned],
    now: datetime,
    run: TriggerRun,
) -> list[Proposal]:
    """A survey's own recontact rules (shown once, at most N times) come before the policy."""
    kept = []
    for proposal in proposals:
        action = planned[proposal.key].trigger.action
        if action.type == "survey" and action.survey:
            survey = get_survey(con, action.survey)
            verdict = check_eligibility(con, survey, proposal.person_id, now=now)
            if not verdict.allowed:
                run.outcomes["not eligible"] += 1
                continue
        kept.append(proposal)
    return kept
