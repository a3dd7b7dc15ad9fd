"""When to ask: invitations due after a touchpoint, and relationship waves on a schedule."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opencx.errors import Conflict
from opencx.ingest import Ingestor
from opencx.voc.invitations import Admit, IssuedInvitation, invite
from opencx.voc.surveys import Survey


@dataclass
class InvitationRun:
    """What one pass of a survey's trigger or schedule did, and why people were skipped."""

    survey_id: str
    considered: int = 0
    invited: list[IssuedInvitation] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)

    def attempt(self, ingestor: Ingestor, survey: Survey, person: str, **options: Any) -> None:
        """Invite one person, or count why not."""
        self.considered += 1
        try:
            self.invited.append(invite(ingestor, survey, person, **options))
        except Conflict as exc:  # a refusal that names its kind (the policy's rule) says so
            kind = exc.details.get("kind") if isinstance(exc.details, dict) else None
            self.refused[kind or _reason_kind(exc.message)] += 1


def _reason_kind(message: str) -> str:
    # "not inviting p_1 to x: last survey invitation 3 days ago (...)" → "last survey invitation"
    reason = message.split(": ", 2)[-1] if message.startswith("not inviting") else message
    return re.split(r"\s\d|\s\(|;|\son\s", reason)[0].strip()


def _trigger_matches(survey: Survey) -> tuple[str, str | None]:
    after = survey.trigger.after if survey.trigger else ""
    if "@" in after:  # a touchpoint id: event slug @ channel
        slug, channel = after.split("@", 1)
        return slug, channel
    return after, None


def run_trigger(
    ingestor: Ingestor,
    survey: Survey,
    *,
    admit: Admit | None = None,
    now: datetime | None = None,
    global_wait: timedelta = timedelta(days=7),
) -> InvitationRun:
    """Invite everyone whose trigger touchpoint happened `delay` ago (within `lookback`)."""
    now = now or datetime.now(UTC)
    run = InvitationRun(survey.id)
    if survey.trigger is None:
        return run
    trigger = survey.trigger
    slug, channel = _trigger_matches(survey)
    con = ingestor.store.cursor()
    params: list[object] = [now - trigger.delay - trigger.lookback, now - trigger.delay]
    where = "timestamp > ? AND timestamp <= ? AND type = 'track'"
    if channel is not None:
        where += " AND channel = ? AND regexp_replace(lower(event), '[^a-z0-9]+', '_', 'g') = ?"
        params += [channel, slug]
    else:
        where += " AND event = ?"
        params.append(slug)
    rows = con.execute(
        f"SELECT person_id, message_id, channel, event FROM analytics_events WHERE {where} "
        "AND person_id IS NOT NULL AND message_id NOT IN (SELECT trigger_message_id FROM "
        "survey_invitations WHERE trigger_message_id IS NOT NULL) ORDER BY timestamp",
        params,
    ).fetchall()
    seen: set[str] = set()
    for person, message_id, event_channel, _event in rows:
        if person in seen:
            continue
        seen.add(person)
        run.attempt(
            ingestor, survey, person, channel=trigger.channel,
            touchpoint=survey.touchpoint or f"{slug}@{event_channel}",
            trigger_message_id=message_id, now=now, global_wait=global_wait, admit=admit,
        )  # fmt: skip
    return run


def _period_start(now: datetime, schedule: str) -> datetime:
    month = now.month if schedule == "monthly" else 3 * ((now.month - 1) // 3) + 1
    return datetime(now.year, month, 1, tzinfo=UTC)


def run_schedule(
    ingestor: Ingestor,
    survey: Survey,
    *,
    admit: Admit | None = None,
    now: datetime | None = None,
    active_days: int = 90,
    global_wait: timedelta = timedelta(days=7),
    limit: int = 100_000,
) -> InvitationRun:
    """A relationship wave: active customers not yet asked this period (month or quarter)."""
    now = now or datetime.now(UTC)
    run = InvitationRun(survey.id)
    if survey.schedule is None:
        return run
    start = _period_start(now, survey.schedule)
    con = ingestor.store.cursor()
    rows = con.execute(
        "SELECT person_id FROM analytics_events WHERE timestamp > ? AND person_id IS NOT NULL "
        "GROUP BY person_id HAVING person_id NOT IN (SELECT person_id FROM survey_invitations "
        "WHERE survey_id = ? AND created_at >= ?) ORDER BY person_id LIMIT ?",
        [now - timedelta(days=active_days), survey.id, start, limit],
    ).fetchall()
    channel = survey.trigger.channel if survey.trigger else "email"
    for (person,) in rows:
        run.attempt(
            ingestor, survey, person, channel=channel, touchpoint="relationship", now=now,
            global_wait=global_wait, admit=admit,
        )  # fmt: skip
    return run
