"""The closed loop: unhappy answers become cases someone owns until they are resolved.

Rules (defaults): NPS ≤ 6, CSAT ≤ 2, CES ≤ 3 (agreement 1–7 that "the company made it
easy"), or a strongly negative comment (sentiment ≤ −0.6) open a case with a queue, a
priority, a due time from the SLA, and the answer that caused it. Every change is an
event on the person's timeline (`Case Opened`, `Case Updated`, `Case Resolved`). The
outer loop looks across cases: root causes ranked by customers affected, with the
touchpoints behind them.
"""

from __future__ import annotations

import re
import secrets
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import duckdb
import orjson
import pyarrow as pa

from opencx.errors import Conflict, InvalidInput, NotFound
from opencx.ingest import Ingestor, SourceContext
from opencx.store import fetch_one, put_document
from opencx.voc._sentiment import LexiconAnalyser
from opencx.voc.invitations import (
    SOURCE,
    Admit,
    Answer,
    IssuedInvitation,
    PersonEvent,
    answer,
    check_answers,
    emit,
    emit_many,
    invite,
)
from opencx.voc.surveys import SURVEY, Survey, get_survey, parse_survey

Status = Literal["open", "in_progress", "waiting_on_customer", "resolved"]
STATUSES: tuple[str, ...] = ("open", "in_progress", "waiting_on_customer", "resolved")
ROOT_CAUSES: tuple[str, ...] = (
    "app-defect", "web-defect", "process", "policy", "billing-error", "network",
    "delivery", "agent-behaviour", "price", "other",
)  # fmt: skip
_ROOT = re.compile(r"[a-z][a-z0-9-]{1,39}")
FOLLOW_UP = "case-follow-up"
FOLLOW_UP_SURVEY = {
    "id": FOLLOW_UP,
    "name": "Is your problem solved?",
    "questions": [
        {"id": "solved", "type": "single", "text": "Is your problem solved?",
         "options": ["Yes", "Partly", "No"]},
        {"id": "csat", "type": "csat", "text": "How satisfied are you with how we handled it?"},
        {"id": "comment", "type": "text", "text": "Anything else we should know?",
         "required": False},
    ],
    "recontact": {"show": "up_to", "max_times": 100, "wait": "0"},
}  # fmt: skip


@dataclass(frozen=True)
class CaseRule:
    """Open a case when `survey_type`'s score is at or beyond `threshold`."""

    name: str
    survey_type: str | None
    threshold: float
    high_at: float
    below: bool = True  # a low score is bad

    def hit(self, score: float) -> bool:
        return score <= self.threshold if self.below else score >= self.threshold

    def priority(self, score: float) -> str:
        high = score <= self.high_at if self.below else score >= self.high_at
        return "high" if high else "normal"


DEFAULT_RULES: tuple[CaseRule, ...] = (
    CaseRule("detractor", "nps", 6, 3),
    CaseRule("low-csat", "csat", 2, 1),
    CaseRule("high-effort", "ces", 3, 1),
    CaseRule("angry-verbatim", None, -0.6, -0.8),
)


@dataclass(frozen=True)
class Note:
    noted_at: datetime
    author: str
    text: str


@dataclass(frozen=True)
class Case:
    id: str
    person_id: str
    source_message_id: str
    rule: str
    reason: str
    survey_id: str | None
    survey_type: str | None
    score: int | None
    comment: str | None
    touchpoint: str | None
    queue: str
    owner: str | None
    priority: str
    status: str
    opened_at: datetime
    due_at: datetime
    first_action_at: datetime | None
    resolved_at: datetime | None
    root_cause: str | None
    follow_up_invitation: str | None
    notes: tuple[Note, ...] = field(default=())

    def overdue(self, now: datetime) -> bool:
        return self.status != "resolved" and self.due_at < now


_COLUMNS = (
    "id, person_id, source_message_id, rule, reason, survey_id, survey_type, score, comment, "
    "touchpoint, queue, owner, priority, status, opened_at, due_at, first_action_at, "
    "resolved_at, root_cause, follow_up_invitation"
)


def match_rule(
    properties: dict[str, Any], rules: tuple[CaseRule, ...] = DEFAULT_RULES
) -> tuple[CaseRule, str, str] | None:
    """The first rule an answer breaks: (rule, reason in words, priority), or None."""
    kind = str(properties.get("survey_type") or "").lower()
    score = properties.get("score")
    sentiment = properties.get("sentiment_score")
    for rule in rules:
        if rule.survey_type is not None and rule.survey_type == kind and score is not None:
            value = float(score)
            if rule.hit(value):
                return (
                    rule,
                    f"{kind.upper()} {score:g} (≤ {rule.threshold:g})",
                    rule.priority(value),
                )
        if rule.survey_type is None and sentiment is not None and rule.hit(float(sentiment)):
            return (
                rule,
                f"strongly negative comment (sentiment {float(sentiment):.2f})",
                rule.priority(float(sentiment)),
            )
    return None


def open_case(
    ingestor: Ingestor,
    *,
    person_id: str,
    source_message_id: str,
    properties: dict[str, Any],
    now: datetime,
    queue: str = "customer-care",
    sla_hours: dict[str, float] | None = None,
    rules: tuple[CaseRule, ...] = DEFAULT_RULES,
) -> Case | None:
    """Open a case for an answer that breaks a rule; None if none does or one exists."""
    opened = open_cases(
        ingestor, [(person_id, source_message_id, properties, now)], queue=queue,
        sla_hours=sla_hours, rules=rules,
    )  # fmt: skip
    return get_case(ingestor.store.cursor(), opened[0]) if opened else None


def open_cases(
    ingestor: Ingestor,
    answers: list[tuple[str, str, dict[str, Any], datetime]],
    *,
    queue: str = "customer-care",
    sla_hours: dict[str, float] | None = None,
    rules: tuple[CaseRule, ...] = DEFAULT_RULES,
) -> list[str]:
    """Open cases for (person, answer message id, answer properties, when) that break a
    rule and have none yet, in one transaction and one batch of timeline events."""
    sla = sla_hours or {"high": 24, "normal": 72}
    con = ingestor.store.cursor()
    rows: list[dict[str, Any]] = []
    events: list[PersonEvent] = []
    with ingestor.store.write_lock:
        existing = {
            r[0]
            for r in con.execute(
                "SELECT source_message_id FROM cases WHERE source_message_id IN "
                "(SELECT unnest(?::VARCHAR[]))",
                [[a[1] for a in answers]],
            ).fetchall()
        }
        for person, message_id, props, at in answers:
            matched = match_rule(props, rules)
            if matched is None or message_id in existing:
                continue
            existing.add(message_id)
            rule, reason, priority = matched
            score = props.get("score")
            rows.append({
                "person_id": person, "source_message_id": message_id, "rule": rule.name,
                "reason": reason, "survey_id": props.get("survey_id"),
                "survey_type": props.get("survey_type"),
                "score": None if score is None else int(float(score)),
                "comment": props.get("comment"), "touchpoint": props.get("touchpoint"),
                "queue": queue, "priority": priority, "opened_at": at,
                "due_at": at + timedelta(hours=sla.get(priority, 72)),
            })  # fmt: skip
        if not rows:
            return []
        numbers = con.execute("SELECT nextval('case_number') FROM range(?)", [len(rows)]).fetchall()
        for row, (number,) in zip(rows, numbers, strict=True):
            row["id"] = f"case-{int(number):06d}"
        con.register("_new_cases", pa.Table.from_pylist(rows))
        try:
            con.execute(
                "INSERT INTO cases (id, person_id, source_message_id, rule, reason, survey_id, "
                "survey_type, score, comment, touchpoint, queue, priority, status, opened_at, "
                "due_at) SELECT id, person_id, source_message_id, rule, reason, survey_id, "
                "survey_type, score, comment, touchpoint, queue, priority, 'open', opened_at, "
                "due_at FROM _new_cases"
            )
        finally:
            con.unregister("_new_cases")
    for row in rows:
        events.append(
            PersonEvent(
                row["person_id"],
                "Case Opened",
                {
                    "case_id": row["id"],
                    "reason": row["reason"],
                    "rule": row["rule"],
                    "priority": row["priority"],
                    "queue": queue,
                    "due_at": row["due_at"].isoformat(),
                    "survey_id": row["survey_id"],
                    "touchpoint": row["touchpoint"],
                },
                "email",
                f"case-opened:{row['id']}",
                row["opened_at"],
            )
        )
    emit_many(ingestor, events)
    return [row["id"] for row in rows]


def get_case(con: duckdb.DuckDBPyConnection, case_id: str) -> Case:
    rows = con.execute(f"SELECT {_COLUMNS} FROM cases WHERE id = ?", [case_id]).fetchall()
    if not rows:
        raise NotFound(f"no case {case_id!r}")
    notes = con.execute(
        "SELECT noted_at, author, text FROM case_notes WHERE case_id = ? ORDER BY noted_at",
        [case_id],
    ).fetchall()
    return Case(*rows[0], notes=tuple(Note(*n) for n in notes))


def list_cases(
    con: duckdb.DuckDBPyConnection,
    *,
    status: str | None = None,
    queue: str | None = None,
    owner: str | None = None,
    person_id: str | None = None,
    limit: int = 200,
) -> list[Case]:
    """Cases, unresolved and most urgent first (then the newest resolved)."""
    where, params = [], []
    if status == "unresolved":
        where.append("status <> 'resolved'")
    elif status:
        if status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        where.append("status = ?")
        params.append(status)
    for column, value in (("queue", queue), ("owner", owner), ("person_id", person_id)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    sql = f"SELECT {_COLUMNS} FROM cases"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += (
        " ORDER BY status = 'resolved', CASE WHEN status = 'resolved' THEN NULL ELSE due_at END,"
        " opened_at DESC LIMIT ?"
    )
    return [Case(*r) for r in con.execute(sql, [*params, limit]).fetchall()]


def _follow_up_survey(con: duckdb.DuckDBPyConnection) -> Survey:
    try:
        return get_survey(con, FOLLOW_UP)
    except NotFound:
        survey = parse_survey(FOLLOW_UP_SURVEY)
        put_document(con, SURVEY, survey.id, survey.to_yaml(), "opencx")
        return survey


@dataclass(frozen=True)
class CaseChange:
    case: Case
    follow_up: IssuedInvitation | None = None
    follow_up_refused: str | None = None  # why the follow-up survey was not sent


def update_case(
    ingestor: Ingestor,
    case_id: str,
    *,
    by: str,
    now: datetime | None = None,
    status: str | None = None,
    owner: str | None = None,
    note: str | None = None,
    root_cause: str | None = None,
    follow_up: bool = False,
    admit: Admit | None = None,
) -> CaseChange:
    """Change a case (status, owner, root cause) and/or add a note; resolving may send a
    follow-up survey ("is your problem solved?") through the normal invitation path."""
    now = now or datetime.now(UTC)
    con = ingestor.store.cursor()
    case = get_case(con, case_id)
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    if root_cause is not None and root_cause and not _ROOT.fullmatch(root_cause):
        raise InvalidInput(
            f"root cause {root_cause!r} must be a short code such as {', '.join(ROOT_CAUSES[:4])}"
        )
    if note is not None and len(note) > 5000:
        raise InvalidInput(f"note: at most 5,000 characters, got {len(note):,}")
    if status == "resolved" and not (root_cause or case.root_cause):
        raise InvalidInput("a resolved case needs a root cause (e.g. app-defect, process)")
    changes: dict[str, Any] = {}
    if status is not None and status != case.status:
        changes["status"] = status
    if owner is not None and owner != case.owner:
        changes["owner"] = owner or None
    if root_cause and root_cause != case.root_cause:
        changes["root_cause"] = root_cause
    if not changes and not note:
        return CaseChange(case)
    with ingestor.store.write_lock:
        if case.first_action_at is None:
            changes["first_action_at"] = now
        if changes.get("status") == "resolved":
            changes["resolved_at"] = now
        elif "status" in changes and case.status == "resolved":
            changes["resolved_at"] = None  # reopened
        if changes:
            assignments = ", ".join(f"{k} = ?" for k in changes)
            con.execute(
                f"UPDATE cases SET {assignments} WHERE id = ?", [*changes.values(), case_id]
            )
        if note:
            con.execute(
                "INSERT INTO case_notes (case_id, noted_at, author, text) VALUES (?, ?, ?, ?)",
                [case_id, now, by, note.strip()],
            )
    resolved = changes.get("status") == "resolved"
    emit(
        ingestor, case.person_id, "Case Resolved" if resolved else "Case Updated",
        {"case_id": case_id, "by": by, **{k: _plain(v) for k, v in changes.items()},
         **({"note": note.strip()} if note else {})},
        channel="email", message_id=f"case-change:{case_id}:{now.isoformat()}", at=now,
    )  # fmt: skip
    issued = refused = None
    if resolved and follow_up:
        try:
            issued = invite(
                ingestor, _follow_up_survey(con), case.person_id, channel="email",
                touchpoint=case.touchpoint, trigger_message_id=f"case-resolved:{case_id}",
                now=now, admit=admit,
            )  # fmt: skip
        except Conflict as exc:  # the case is resolved all the same; say why nobody asked
            refused = exc.message
        else:
            con.execute(
                "UPDATE cases SET follow_up_invitation = ? WHERE id = ?",
                [issued.invitation.id, case_id],
            )
    return CaseChange(get_case(con, case_id), issued, refused)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def open_cases_from_answers(
    ingestor: Ingestor,
    *,
    since: datetime | None = None,
    queue: str = "customer-care",
    sla_hours: dict[str, float] | None = None,
) -> int:
    """Open cases for stored answers that break a rule and have none yet (imports, replays).

    Returns the number opened. Each case is dated at its answer, so its SLA is honest.
    """
    con = ingestor.store.cursor()
    params: list[Any] = []
    sql = (
        "SELECT e.person_id, e.message_id, e.timestamp, e.properties FROM resolved_events e "
        "WHERE e.event = 'Survey Responded' AND e.person_id IS NOT NULL "
        "AND e.message_id NOT IN (SELECT source_message_id FROM cases)"
    )
    if since is not None:
        sql += " AND e.timestamp >= ?"
        params.append(since)
    rows = con.execute(sql + " ORDER BY e.timestamp", params).fetchall()
    analyser = LexiconAnalyser()
    found = []
    for person, message_id, at, raw in rows:
        props = orjson.loads(raw) if raw else {}
        comment = props.get("comment")
        if comment and "sentiment_score" not in props:
            props["sentiment_score"] = analyser.analyse([str(comment)])[0].score
        found.append((person, message_id, props, at))
    return len(open_cases(ingestor, found, queue=queue, sla_hours=sla_hours)) if found else 0


@dataclass(frozen=True)
class LoopMetrics:
    """How well the loop closes."""

    cases: int
    open: int
    overdue: int
    median_hours_to_first_action: float | None
    resolved_within_sla: float | None
    score_change_after_resolution: float | None
    answers_after_resolution: int


def loop_metrics(con: duckdb.DuckDBPyConnection, *, now: datetime | None = None) -> LoopMetrics:
    now = now or datetime.now(UTC)
    rows = con.execute(
        "SELECT status, opened_at, due_at, first_action_at, resolved_at FROM cases"
    ).fetchall()
    first = [(fa - op).total_seconds() / 3600 for _, op, _, fa, _ in rows if fa is not None]
    resolved = [(due, res) for st, _, due, _, res in rows if st == "resolved" and res]
    changes = con.execute(
        """
        SELECT c.score, (
            SELECT CAST(json_extract_string(e.properties, '$.score') AS DOUBLE)
            FROM resolved_events e
            WHERE e.person_id = c.person_id AND e.event = 'Survey Responded'
              AND json_extract_string(e.properties, '$.survey_type') = c.survey_type
              AND e.timestamp > c.resolved_at
            ORDER BY e.timestamp LIMIT 1) AS after
        FROM cases c WHERE c.status = 'resolved' AND c.score IS NOT NULL
        """
    ).fetchall()
    deltas = [after - before for before, after in changes if after is not None]
    return LoopMetrics(
        cases=len(rows),
        open=sum(1 for r in rows if r[0] != "resolved"),
        overdue=sum(1 for st, _, due, _, _ in rows if st != "resolved" and due < now),
        median_hours_to_first_action=statistics.median(first) if first else None,
        resolved_within_sla=(
            sum(1 for due, res in resolved if res <= due) / len(resolved) if resolved else None
        ),
        score_change_after_resolution=statistics.fmean(deltas) if deltas else None,
        answers_after_resolution=len(deltas),
    )


@dataclass(frozen=True)
class RootCause:
    """The outer loop: one cause behind many cases."""

    code: str
    customers: int
    cases: int
    unresolved: int
    touchpoints: tuple[tuple[str, int], ...]


def root_causes(con: duckdb.DuckDBPyConnection) -> list[RootCause]:
    """Root causes across all cases, by customers affected; cases without one yet are
    grouped by the touchpoint they are about, so the pattern shows before the diagnosis."""
    rows = con.execute(
        "SELECT coalesce(root_cause, 'undiagnosed: ' || coalesce(touchpoint, 'unknown')), "
        "person_id, status, touchpoint FROM cases"
    ).fetchall()
    groups: dict[str, list[tuple[str, str, str | None]]] = {}
    for code, person, status, touchpoint in rows:
        groups.setdefault(code, []).append((person, status, touchpoint))
    out = [
        RootCause(
            code=code,
            customers=len({p for p, _, _ in items}),
            cases=len(items),
            unresolved=sum(1 for _, s, _ in items if s != "resolved"),
            touchpoints=tuple(Counter(t for _, _, t in items if t).most_common(3)),
        )
        for code, items in groups.items()
    ]
    return sorted(out, key=lambda r: (-r.customers, r.code))


@dataclass(frozen=True)
class Recorded:
    """An answer, and the case it opened (if it broke a rule)."""

    answer: Answer
    case: Case | None


def record_answer(
    ingestor: Ingestor,
    token: str,
    answers: dict[str, Any],
    *,
    channel: str | None = None,
    now: datetime | None = None,
    queue: str = "customer-care",
    sla_hours: dict[str, float] | None = None,
) -> Recorded:
    """Answer an invitation and close the loop at once: an unhappy answer opens a case."""
    now = now or datetime.now(UTC)
    got = answer(ingestor, token, answers, channel=channel, now=now)
    props: dict[str, Any] = {
        "survey_id": got.survey.id, "survey_type": got.survey.survey_type, "score": got.score,
        "comment": got.comment, "touchpoint": got.invitation.touchpoint,
        "sentiment_score": got.sentiment[0] if got.sentiment else None,
    }  # fmt: skip
    case = open_case(
        ingestor, person_id=got.invitation.person_id, source_message_id=got.message_id,
        properties=props, now=now, queue=queue, sla_hours=sla_hours,
    )  # fmt: skip
    return Recorded(got, case)


def give_feedback(
    ingestor: Ingestor,
    survey: Survey,
    answers: dict[str, Any],
    *,
    email: str | None = None,
    channel: str = "web",
    now: datetime | None = None,
) -> Case | None:
    """An answer to an always-open feedback form: no invitation, nobody interrupted.

    With an email the answer joins that person's timeline (and may open a case); without
    one it is kept anonymously. Returns the case it opened, if any.
    """
    now = now or datetime.now(UTC)
    values, score, comment, sentiment = check_answers(survey, answers)
    message_id = f"feedback:{survey.id}:{secrets.token_hex(8)}"
    properties: dict[str, Any] = {
        "survey_id": survey.id, "survey_type": survey.survey_type, "score": score,
        "comment": comment, "touchpoint": survey.touchpoint, "answers": values,
    }  # fmt: skip
    if sentiment is not None:
        properties["sentiment_score"], properties["sentiment_label"] = sentiment
    message: dict[str, Any] = {
        "type": "track", "event": "Survey Responded" if survey.survey_type else "Feedback Given",
        "messageId": message_id, "properties": properties, "timestamp": now.isoformat(),
        "anonymousId": f"feedback-{secrets.token_hex(8)}", "context": {"channel": channel},
    }  # fmt: skip
    if email:
        message["context"]["traits"] = {"email": email}
    result = ingestor.ingest([message], SourceContext(SOURCE, channel, origin="feedback"))
    if result.rejected:
        raise InvalidInput(f"the feedback was refused: {result.errors}")
    if not email or survey.survey_type is None:
        return None
    person = fetch_one(
        ingestor.store.cursor().execute(
            "SELECT person_id FROM resolved_events WHERE message_id = ?", [message_id]
        )
    )
    if person is None or person[0] is None:
        return None
    return open_case(
        ingestor, person_id=person[0], source_message_id=message_id, properties=properties,
        now=now,
    )  # fmt: skip
