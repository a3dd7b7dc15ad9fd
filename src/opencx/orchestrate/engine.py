"""The pieces put together: the contact-policy check next best action asks, and the
server's two rounds: triggers (and released holds) through the policy into the outbox,
and delivery of the outbox."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import duckdb

from opencx.config import Settings
from opencx.errors import Conflict
from opencx.ingest import Ingestor
from opencx.orchestrate.adapters import Adapter, adapters_from_settings
from opencx.orchestrate.decisions import gate
from opencx.orchestrate.nba import Recommendation, next_best_actions
from opencx.orchestrate.outbox import DeliveryReport, deliver_due
from opencx.orchestrate.policy import ContactPolicy, Proposal, Purpose, decide, load_policy
from opencx.orchestrate.state import PersonState, person_state
from opencx.orchestrate.triggers import TriggerRun, run_triggers
from opencx.store import Store
from opencx.voc import Survey
from opencx.voc.invitations import Admit

PolicyCheck = Callable[[str, str, str], tuple[bool, tuple[str, ...]]]


def policy_check(
    con: duckdb.DuckDBPyConnection, policy: ContactPolicy, now: datetime
) -> PolicyCheck:
    """`check(person, channel, purpose)`: would the policy let a contact through now, and
    why (nothing is recorded: an agent's suggestion is not a contact yet)."""
    states: dict[str, PersonState] = {}

    def check(person_id: str, channel: str, purpose: str) -> tuple[bool, tuple[str, ...]]:
        state = states.get(person_id)
        if state is None:
            state = states[person_id] = person_state(
                con, person_id, now, categories=policy.consent.categories
            )
        proposal = Proposal(
            person_id=person_id, action="next-best-action", channel=channel,
            purpose=purpose,  # type: ignore[arg-type]
            at=now, key=f"nba:{person_id}:{channel}:{purpose}",
        )  # fmt: skip
        decision = decide(proposal, state, policy, now)
        return decision.outcome == "send", decision.reasons

    return check


def survey_admission(
    store: Store, policy: ContactPolicy | None = None, *, purpose: Purpose = "survey"
) -> Admit:
    """The hook the VoC module asks before each survey invitation (triggers, waves, case
    follow-ups, API): the contact policy decides and logs it like any other contact.

    A closed-loop follow-up ("is your problem solved?") is part of the service recovery:
    pass `purpose="service"`, so that the rest after a detractor answer, which lets only
    service through, does not stop the brand from closing the loop."""

    def admit(survey: Survey, person: str, channel: str, cause: str | None, now: datetime) -> str:
        rules = policy or load_policy(store.cursor())
        proposal = Proposal(
            person_id=person, action=survey.id, channel=channel, purpose=purpose, at=now,
            key=f"survey:{survey.id}:{cause or now.date().isoformat()}",
            trigger=f"survey:{survey.id}", cause=cause,
        )  # fmt: skip
        [decision] = gate(store, [proposal], rules, now)
        if decision.outcome != "send":
            why = decision.reasons[0] if decision.reasons else decision.outcome
            raise Conflict(
                f"not inviting {person} to {survey.id}: {why}",
                details={"kind": decision.rule or decision.outcome, "decision_id": decision.id},
            )
        return decision.id

    return admit


def recommend(
    con: duckdb.DuckDBPyConnection,
    person_id: str,
    *,
    channel: str | None,
    now: datetime | None = None,
    limit: int = 5,
) -> list[Recommendation]:
    """Next best actions for the person, outbound ones checked against the contact policy."""
    now = now or datetime.now(UTC)
    check = policy_check(con, load_policy(con), now)
    return next_best_actions(con, person_id, channel=channel, now=now, check=check, limit=limit)


def base_url(settings: Settings) -> str:
    """Where customers reach this server (survey links in messages)."""
    return settings.public_url or f"http://{settings.host}:{settings.port}"


def trigger_round(
    ingestor: Ingestor, settings: Settings, *, now: datetime | None = None
) -> TriggerRun:
    """Every enabled trigger, and the holds now due, through the policy into the outbox."""
    policy = load_policy(ingestor.store.cursor())
    return run_triggers(
        ingestor, policy, now=now, base_url=base_url(settings),
        default_zone=policy.default_timezone,
    )  # fmt: skip


def delivery_round(
    ingestor: Ingestor,
    settings: Settings,
    *,
    now: datetime | None = None,
    adapters: Mapping[str, Adapter] | None = None,
) -> DeliveryReport:
    """Deliver every message now due, with the configured retries and backoff."""
    return deliver_due(
        ingestor,
        adapters if adapters is not None else adapters_from_settings(settings),
        now or datetime.now(UTC),
        max_attempts=settings.delivery_max_attempts,
        backoff_s=settings.delivery_backoff_s,
        jitter=random.random,
    )
