"""Survey invitations: who may be asked (recontact rules), the link, and the one answer.

Every invitation and every answer is also an event on the person's timeline
(`Survey Invited`, `Survey Responded`), written through the normal ingestion path, so
the KPIs, journeys and contact budgets see them like any other interaction.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from opencx.errors import Conflict, InvalidInput, NotFound
from opencx.ingest import Ingestor, SourceContext
from opencx.profiles import canonical_id, get_profile
from opencx.voc._sentiment import LexiconAnalyser
from opencx.voc.surveys import Question, Survey, get_survey

SOURCE = "opencx-voc"
_analyser: LexiconAnalyser | None = None


def _sentiment_of(text: str) -> tuple[float, str]:
    global _analyser
    if _analyser is None:
        _analyser = LexiconAnalyser()
    [found] = _analyser.analyse([text])
    return found.score, found.label


@dataclass(frozen=True)
class Eligibility:
    """Whether a person may be asked a survey now, and why (or why not)."""

    allowed: bool
    reason: str


@dataclass(frozen=True)
class Invitation:
    id: str
    survey_id: str
    person_id: str
    channel: str
    touchpoint: str | None
    created_at: datetime
    expires_at: datetime
    status: str
    answered_at: datetime | None = None
    score: int | None = None


@dataclass(frozen=True)
class IssuedInvitation:
    """A new invitation and its secret token (shown once, stored hashed)."""

    invitation: Invitation
    token: str

    def url(self, base: str) -> str:
        return f"{base.rstrip('/')}/s/{self.token}"


_COLUMNS = (
    "id, survey_id, person_id, channel, touchpoint, created_at, expires_at, status, "
    "answered_at, score"
)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d}"


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return (
        f"{days:.0f} day{'s' if round(days) != 1 else ''}"
        if days >= 1
        else (f"{delta.total_seconds() / 3600:.0f} hours")
    )


def _wait_for(
    con: duckdb.DuckDBPyConnection, survey: Survey, person: str, default: timedelta
) -> tuple[timedelta, str]:
    wait, why = default, "the global waiting time"
    if survey.recontact.wait is not None:
        wait, why = survey.recontact.wait, f"survey {survey.id}'s waiting time"
    if survey.recontact.rules:
        traits = get_profile(con, person).traits
        for rule in survey.recontact.rules:
            if str(traits.get(rule.trait, "")) == rule.equals and rule.wait > wait:
                wait, why = rule.wait, f"the waiting time for {rule.trait} = {rule.equals}"
    return wait, why


def check_eligibility(
    con: duckdb.DuckDBPyConnection,
    survey: Survey,
    person_id: str,
    *,
    now: datetime,
    global_wait: timedelta = timedelta(days=7),
) -> Eligibility:
    """Apply the recontact rules: times shown, waiting time, audience. Says why."""
    person = canonical_id(con, person_id)
    mine = con.execute(
        "SELECT status, created_at FROM survey_invitations WHERE person_id = ? AND survey_id = ? "
        "ORDER BY created_at",
        [person, survey.id],
    ).fetchall()
    show = survey.recontact.show
    if show == "once" and mine:
        return Eligibility(
            False, f"already invited to {survey.id} on {_when(mine[0][1])} (shown once)"
        )
    if show == "until_answered" and any(status == "answered" for status, _ in mine):
        return Eligibility(False, f"already answered {survey.id} (asked until answered)")
    if show == "up_to" and len(mine) >= survey.recontact.max_times:
        return Eligibility(
            False,
            f"invited to {survey.id} {len(mine)} times already "
            f"(at most {survey.recontact.max_times})",
        )
    wait, why = _wait_for(con, survey, person, global_wait)
    if wait > timedelta(0):
        # Invitations sent by OpenCX, and any others in the log (imports, other tools).
        last = con.execute(
            "SELECT survey_id, created_at FROM survey_invitations WHERE person_id = ? "
            "AND created_at > ? UNION ALL "
            "SELECT json_extract_string(properties, '$.survey_id'), timestamp "
            "FROM analytics_events WHERE person_id = ? AND event = 'Survey Invited' "
            "AND timestamp > ? ORDER BY 2 DESC LIMIT 1",
            [person, now - wait, person, now - wait],
        ).fetchall()
        if last:
            other, at = last[0]
            return Eligibility(
                False,
                f"last survey invitation {_days(now - at)} ago ({_when(at)}, {other}); "
                f"{why} is {_days(wait)}",
            )
    if survey.audience is not None:
        aud = survey.audience
        rows = con.execute(
            "SELECT score FROM survey_invitations WHERE person_id = ? AND status = 'answered' "
            "AND score IS NOT NULL AND survey_type = ? ORDER BY answered_at DESC LIMIT 1",
            [person, aud.survey_type],
        ).fetchall()
        low = aud.min_score if aud.min_score is not None else -1
        high = aud.max_score if aud.max_score is not None else 100
        if not rows or not low <= rows[0][0] <= high:
            last_text = f"last was {rows[0][0]}" if rows else "no answer yet"
            return Eligibility(
                False,
                f"audience: needs a last {aud.survey_type} answer from {low if low >= 0 else 0} "
                f"to {high if high < 100 else 'max'}; {last_text}",
            )
    return Eligibility(
        True, "eligible: " + ("no earlier invitation" if not mine else f"{len(mine)} earlier")
    )


def people_fields(
    con: duckdb.DuckDBPyConnection, person_ids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """For each person, the Segment fields that resolve to them: their most trusted
    identifier (user id, then anonymous id, then email or phone), in one query."""
    wanted = sorted(set(person_ids))
    rows = con.execute(
        "SELECT coalesce(m.canonical_id, i.profile_id) AS person, i.kind, i.value "
        "FROM identities i LEFT JOIN profile_merges m ON i.profile_id = m.profile_id "
        "WHERE coalesce(m.canonical_id, i.profile_id) IN (SELECT unnest(?::VARCHAR[])) "
        "ORDER BY i.seq",
        [wanted],
    ).fetchall()
    found: dict[str, dict[str, str]] = {}
    for person, kind, value in rows:
        found.setdefault(person, {}).setdefault(kind, value)
    out: dict[str, dict[str, Any]] = {}
    for person in wanted:
        ids = found.get(person, {})
        if "user_id" in ids:
            out[person] = {"userId": ids["user_id"]}
        elif "anonymous_id" in ids:
            out[person] = {"anonymousId": ids["anonymous_id"]}
        elif kind := next((k for k in ("email", "phone") if k in ids), None):
            out[person] = {"context": {"traits": {kind: ids[kind]}}}
    return out


def person_fields(con: duckdb.DuckDBPyConnection, person_id: str) -> dict[str, Any]:
    """Segment fields that resolve to this person: their most trusted identifier."""
    canonical = canonical_id(con, person_id)
    fields = people_fields(con, [canonical]).get(canonical)
    if fields is None:
        raise InvalidInput(f"profile {person_id!r} has no identifier to address an event to")
    return fields


@dataclass(frozen=True)
class PersonEvent:
    """An event OpenCX itself writes about a person (an invitation, a case change)."""

    person_id: str
    event: str
    properties: dict[str, Any]
    channel: str
    message_id: str
    at: datetime


def emit_many(ingestor: Ingestor, events: list[PersonEvent]) -> None:
    """Write events about people through the normal ingestion path, in one batch."""
    con = ingestor.store.cursor()
    fields = people_fields(con, (e.person_id for e in events))
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e.person_id not in fields:
            raise InvalidInput(f"profile {e.person_id!r} has no identifier to address an event to")
        message = copy.deepcopy(fields[e.person_id])
        context = {**message.pop("context", {}), "channel": e.channel}
        message.update(
            type="track", event=e.event, properties=e.properties, context=context,
            messageId=e.message_id, timestamp=e.at.astimezone(UTC).isoformat(),
        )  # fmt: skip
        by_channel.setdefault(e.channel, []).append(message)
    for channel, messages in by_channel.items():
        result = ingestor.ingest(messages, SourceContext(SOURCE, channel, origin="voc"))
        if result.rejected:
            raise InvalidInput(f"{result.rejected} events were refused: {result.errors}")


def emit(
    ingestor: Ingestor,
    person_id: str,
    event: str,
    properties: dict[str, Any],
    *,
    channel: str,
    message_id: str,
    at: datetime,
) -> None:
    """Write one event about a person through the normal ingestion path (deduplicated)."""
    emit_many(ingestor, [PersonEvent(person_id, event, properties, channel, message_id, at)])


Admit = Callable[[Survey, str, str, str | None, datetime], str]
"""`admit(survey, person, channel, cause, now)`: the contact policy's word on an invitation
(`opencx.orchestrate.engine.survey_admission`): the id of the decision that lets it go, or
`Conflict` with the reason it may not."""


def invite(
    ingestor: Ingestor,
    survey: Survey,
    person_id: str,
    *,
    channel: str | None = None,
    touchpoint: str | None = None,
    trigger_message_id: str | None = None,
    now: datetime | None = None,
    global_wait: timedelta = timedelta(days=7),
    admit: Admit | None = None,
) -> IssuedInvitation:
    """Invite a person if the recontact rules allow it (else `Conflict` with the reason),
    and the contact policy too when `admit` is given (its decision is then counted once:
    the invitation's event carries the decision's id)."""
    now = now or datetime.now(UTC)
    con = ingestor.store.cursor()
    person = canonical_id(con, person_id)
    channel = channel or (survey.trigger.channel if survey.trigger else "email")
    with ingestor.store.write_lock:  # check and record as one step: no double invitations
        verdict = check_eligibility(con, survey, person, now=now, global_wait=global_wait)
        if not verdict.allowed:
            raise Conflict(f"not inviting {person} to {survey.id}: {verdict.reason}")
        decision_id = admit(survey, person, channel, trigger_message_id, now) if admit else None
        issued = create_invitation(
            con, survey, person, channel=channel, touchpoint=touchpoint,
            trigger_message_id=trigger_message_id, now=now,
        )  # fmt: skip
    inv = issued.invitation
    emit(
        ingestor, person, "Survey Invited",
        {"survey_id": survey.id, "survey_type": survey.survey_type, "invitation_id": inv.id,
         "touchpoint": inv.touchpoint, "trigger_message_id": trigger_message_id,
         **({"decision_id": decision_id} if decision_id else {})},
        channel=channel, message_id=f"survey-invited:{inv.id}", at=now,
    )  # fmt: skip
    return issued


def create_invitation(
    con: duckdb.DuckDBPyConnection,
    survey: Survey,
    person: str,
    *,
    channel: str,
    touchpoint: str | None,
    trigger_message_id: str | None,
    now: datetime,
) -> IssuedInvitation:
    """Record an invitation on `con` (in the caller's transaction); no rules, no event."""
    token = secrets.token_urlsafe(24)
    inv = Invitation(
        id=f"inv_{secrets.token_hex(8)}", survey_id=survey.id, person_id=person,
        channel=channel, touchpoint=touchpoint or survey.touchpoint, created_at=now,
        expires_at=now + survey.expires, status="sent",
    )  # fmt: skip
    con.execute(
        "INSERT INTO survey_invitations (id, token_hash, survey_id, survey_type, person_id, "
        "channel, touchpoint, trigger_message_id, created_at, expires_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?)",
        [inv.id, _hash(token), inv.survey_id, survey.survey_type, person, channel,
         inv.touchpoint, trigger_message_id, now, inv.expires_at],
    )  # fmt: skip
    return IssuedInvitation(inv, token)


def invitation_for_token(con: duckdb.DuckDBPyConnection, token: str) -> Invitation:
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM survey_invitations WHERE token_hash = ?", [_hash(token)]
    ).fetchall()
    if not rows:
        raise NotFound("this survey link is not valid (it may have been mistyped)")
    return Invitation(*rows[0])


def invitations_of(con: duckdb.DuckDBPyConnection, person_id: str) -> list[Invitation]:
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM survey_invitations WHERE person_id = ? ORDER BY created_at DESC",
        [canonical_id(con, person_id)],
    ).fetchall()
    return [Invitation(*r) for r in rows]


def _answer_value(question: Question, raw: Any) -> Any:
    if raw is None or raw == "" or raw == []:
        if question.required:
            raise InvalidInput(f"{question.id}: an answer is required")
        return None
    if question.scale is not None:
        low, high = question.scale
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise InvalidInput(
                f"{question.id}: must be a whole number from {low} to {high}, got {raw!r}"
            ) from None
        if not low <= value <= high:
            raise InvalidInput(f"{question.id}: {value} is out of range ({low}-{high})")
        return value
    if question.type == "single":
        if raw not in question.options:
            raise InvalidInput(f"{question.id}: {raw!r} is not one of {list(question.options)}")
        return raw
    if question.type == "multiple":
        chosen = [raw] if isinstance(raw, str) else list(raw)
        bad = [c for c in chosen if c not in question.options]
        if bad:
            raise InvalidInput(f"{question.id}: {bad} not among {list(question.options)}")
        return chosen
    text = str(raw).strip()
    if len(text) > 5000:
        raise InvalidInput(f"{question.id}: at most 5,000 characters, got {len(text):,}")
    return text


def check_answers(
    survey: Survey, answers: dict[str, Any]
) -> tuple[dict[str, Any], int | None, str | None, tuple[float, str] | None]:
    """Validated answers, the score, the comment (text answers joined) and its sentiment."""
    unknown = set(answers) - {q.id for q in survey.questions}
    if unknown:
        raise InvalidInput(f"unknown questions: {', '.join(sorted(unknown))}")
    values = {q.id: _answer_value(q, answers.get(q.id)) for q in survey.questions}
    primary = survey.primary
    score = values.get(primary.id) if primary else None
    texts = [v for q in survey.questions if q.type == "text" and (v := values.get(q.id))]
    comment = "\n".join(texts) if texts else None
    return values, score, comment, _sentiment_of(comment) if comment else None


@dataclass(frozen=True)
class Answer:
    invitation: Invitation
    survey: Survey
    score: int | None
    comment: str | None
    answers: dict[str, Any]
    message_id: str
    sentiment: tuple[float, str] | None


def answer(
    ingestor: Ingestor,
    token: str,
    answers: dict[str, Any],
    *,
    channel: str | None = None,
    now: datetime | None = None,
) -> Answer:
    """Record the one answer to an invitation; the event goes on the person's timeline."""
    now = now or datetime.now(UTC)
    con = ingestor.store.cursor()
    inv = invitation_for_token(con, token)
    if inv.status == "answered":
        raise Conflict(f"this survey was already answered on {_when(inv.answered_at or now)}")
    if inv.expires_at < now:
        raise Conflict(f"this survey link expired on {_when(inv.expires_at)}")
    survey = get_survey(con, inv.survey_id)
    values, score, comment, sentiment = check_answers(survey, answers)
    message_id = f"survey-response:{inv.id}"  # one answer per invitation, even under races
    properties: dict[str, Any] = {
        "survey_id": survey.id, "survey_type": survey.survey_type, "score": score,
        "comment": comment, "touchpoint": inv.touchpoint, "invitation_id": inv.id,
        "answers": values,
    }  # fmt: skip
    if survey.survey_type is None:
        properties.pop("survey_type")
        properties.pop("score")
    if sentiment is not None:
        properties["sentiment_score"], properties["sentiment_label"] = sentiment
    # The event first: it is the record (deduplicated by message id), then the mark.
    event = "Survey Responded" if survey.survey_type else "Feedback Given"
    emit(
        ingestor, inv.person_id, event, properties,
        channel=channel or inv.channel, message_id=message_id, at=now,
    )  # fmt: skip
    with ingestor.store.write_lock:
        rows = con.execute(
            "UPDATE survey_invitations SET status = 'answered', answered_at = ?, score = ? "
            "WHERE id = ? AND status = 'sent' RETURNING id",
            [now, score, inv.id],
        ).fetchall()
    if not rows:
        raise Conflict("this survey was already answered")
    return Answer(inv, survey, score, comment, values, message_id, sentiment)
