"""Next best action: what to do for one person now, on one channel, and why (or why not).

`person_signals` gathers what is known about the person with a handful of point reads;
`next_best_actions` holds every catalogue action that fits the channel against them:

1. relevant: every `when` condition holds and the person is in the `audience` segment;
2. suppressed: any `unless` condition holds (returned, not allowed, with the reason);
3. outbound (sms, email, or an action that `sends`): the contact-policy `check` decides;
4. ranked: allowed first, then by score (the action's value plus up to 10 for how recent
   the events behind it are), then by id so equal scores keep one order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import duckdb
import orjson

from opencx.errors import InvalidInput
from opencx.journeys import touchpoint_id
from opencx.orchestrate.actions import (
    ANSWER_WINDOW,
    EVENT_WINDOW,
    Action,
    ActionCatalogue,
    Condition,
    load_actions,
    render_script,
)
from opencx.profiles import canonical_id
from opencx.store import fetch_one
from opencx.types import CHANNELS

PolicyCheck = Callable[[str, str, str], tuple[bool, tuple[str, ...]]]
"""`check(person_id, channel, purpose) -> (allowed, reasons)`: the contact policy."""

MAX_EVENTS = 2000
MAX_LIMIT = 50
RECENCY_BONUS = 10.0
SURVEY_EVENT = "Survey Responded"
FAILURE_WORDS = re.compile(
    r"\b(failed|failure|error|errored|declined|rejected|timed out|timeout|bounced|"
    r"undelivered|undeliverable)\b",
    re.IGNORECASE,
)
"""Event names that say something went wrong (`Password Reset Failed`, `Payment Declined`)."""


@dataclass(frozen=True)
class RecentEvent:
    """One of the person's events of the last 30 days."""

    event: str
    channel: str
    touchpoint: str
    timestamp: datetime
    failed: bool


@dataclass(frozen=True)
class OpenCase:
    """A case not yet resolved."""

    id: str
    status: str
    rule: str
    reason: str
    touchpoint: str | None
    priority: str
    opened_at: datetime


@dataclass(frozen=True)
class SurveyAnswer:
    """A scored survey answer of the last 90 days."""

    survey_type: str
    survey_id: str | None
    score: float
    touchpoint: str | None
    answered_at: datetime


@dataclass(frozen=True)
class Signals:
    """What NBA knows about the person now; every tuple is newest first."""

    person_id: str
    now: datetime
    events: tuple[RecentEvent, ...]
    cases: tuple[OpenCase, ...]
    answers: tuple[SurveyAnswer, ...]
    traits: Mapping[str, Any]
    computed: Mapping[str, Any]
    segments: frozenset[str]

    def failures(self, flagged: tuple[str, ...] = ()) -> tuple[RecentEvent, ...]:
        """Events that say they failed, plus those on touchpoints matching `flagged`."""
        return tuple(e for e in self.events if e.failed or _matches_any(e.touchpoint, flagged))


@dataclass(frozen=True)
class Recommendation:
    """One action for the person, in words an agent can use."""

    action: str
    title: str
    script: str
    channel: str
    purpose: str
    score: float
    reasons: tuple[str, ...]
    allowed: bool
    blocked_by: tuple[str, ...]


@dataclass(frozen=True)
class _Evidence:
    reason: str
    at: datetime | None = None
    facts: Mapping[str, str] = field(default_factory=dict)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _matches_any(touchpoint: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatchcase(touchpoint, p) for p in patterns)


def _json(raw: object) -> Any:
    if raw is None:
        return None
    return orjson.loads(raw) if isinstance(raw, str | bytes) else raw


def _who(members: list[str], column: str = "profile_id") -> tuple[str, dict[str, Any]]:
    """The filter for a person's profile ids (one id, the common case, is twice as fast)."""
    if len(members) == 1:
        return f"{column} = $person", {"person": members[0]}
    return f"{column} IN (SELECT unnest($members::VARCHAR[]))", {"members": members}


def _recent_events(
    con: duckdb.DuckDBPyConnection, members: list[str], now: datetime
) -> tuple[RecentEvent, ...]:
    # Each read has its own tight time range: the log is in time order, so DuckDB skips
    # the row groups outside it (one wide scan for events and answers was slower).
    who, params = _who(members)
    rows = con.execute(
        f"SELECT event, channel, timestamp FROM events WHERE {who} "
        "AND timestamp > $since AND timestamp <= $now AND event IS NOT NULL "
        "AND type IN ('track', 'page', 'screen') "
        "ORDER BY timestamp DESC, seq DESC LIMIT $limit",
        {**params, "since": now - EVENT_WINDOW, "now": now, "limit": MAX_EVENTS},
    ).fetchall()
    return tuple(
        RecentEvent(
            name, channel, touchpoint_id(name, channel), _utc(ts), bool(FAILURE_WORDS.search(name))
        )
        for name, channel, ts in rows
    )


def _answers(
    con: duckdb.DuckDBPyConnection, members: list[str], now: datetime
) -> tuple[SurveyAnswer, ...]:
    who, params = _who(members)
    rows = con.execute(
        f"SELECT timestamp, properties FROM events WHERE {who} AND event = $survey "
        "AND timestamp > $since AND timestamp <= $now ORDER BY timestamp DESC, seq DESC "
        "LIMIT $limit",
        {**params, "survey": SURVEY_EVENT, "since": now - ANSWER_WINDOW, "now": now,
         "limit": MAX_EVENTS},
    ).fetchall()  # fmt: skip
    answers = (_answer(properties, _utc(ts)) for ts, properties in rows)
    return tuple(a for a in answers if a is not None)


def _open_cases(
    con: duckdb.DuckDBPyConnection, members: list[str], now: datetime
) -> tuple[OpenCase, ...]:
    who, params = _who(members, "person_id")
    rows = con.execute(
        "SELECT id, status, rule, reason, touchpoint, priority, opened_at FROM cases "
        f"WHERE {who} AND status <> 'resolved' AND opened_at <= $now ORDER BY opened_at DESC",
        {**params, "now": now},
    ).fetchall()
    return tuple(OpenCase(r[0], r[1], r[2], r[3], r[4], r[5], _utc(r[6])) for r in rows)


def person_signals(con: duckdb.DuckDBPyConnection, person_id: str, now: datetime) -> Signals:
    """Recent events, open cases, answers, traits, computed traits and segments of a person.

    Merged profile ids are resolved to the surviving profile (`NotFound` for an unknown id).
    Nothing after `now` is read, so a replay at an earlier `now` sees what was known then.
    """
    now = _utc(now)
    person = canonical_id(con, person_id)
    members = [person] + [
        r[0]
        for r in con.execute(
            "SELECT profile_id FROM profile_merges WHERE canonical_id = ?", [person]
        ).fetchall()
    ]
    computed = {
        str(name): _json(value)
        for name, value in con.execute(
            "SELECT name, value FROM computed_traits WHERE person_id = ?", [person]
        ).fetchall()
    }
    segments = frozenset(
        r[0]
        for r in con.execute(
            "SELECT segment FROM segment_members WHERE person_id = ?", [person]
        ).fetchall()
    )
    return Signals(
        person_id=person,
        now=now,
        events=_recent_events(con, members, now),
        cases=_open_cases(con, members, now),
        answers=_answers(con, members, now),
        traits=_traits(con, person, members),
        computed=computed,
        segments=segments,
    )


def _answer(properties: object, ts: datetime) -> SurveyAnswer | None:
    props = _json(properties) or {}
    score, kind = props.get("score"), props.get("survey_type")
    if not isinstance(kind, str) or isinstance(score, bool) or not isinstance(score, int | float):
        return None
    return SurveyAnswer(kind, props.get("survey_id"), float(score), props.get("touchpoint"), ts)


def _traits(con: duckdb.DuckDBPyConnection, person: str, members: list[str]) -> dict[str, Any]:
    """The profile summary's traits; merged from the log when the summary is not built yet."""
    row = fetch_one(con.execute("SELECT traits FROM profiles WHERE profile_id = ?", [person]))
    if row is not None:
        return dict(_json(row[0]) or {})
    traits: dict[str, Any] = {}
    for (raw,) in con.execute(
        "SELECT traits FROM events WHERE profile_id IN (SELECT unnest(?::VARCHAR[])) "
        "AND traits IS NOT NULL ORDER BY timestamp, seq",
        [members],
    ).fetchall():
        traits.update(_json(raw) or {})
    return traits


def when_words(moment: datetime, now: datetime) -> str:
    """`today at 09:12 UTC`, `yesterday at 18:40 UTC`, `3 days ago`, `on 11-02`.

    >>> now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    >>> when_words(datetime(2026, 11, 30, 18, 40, tzinfo=UTC), now)
    'yesterday at 18:40 UTC'
    """
    days = (now.date() - moment.date()).days
    if days <= 0:
        return f"today at {moment:%H:%M} UTC"
    if days == 1:
        return f"yesterday at {moment:%H:%M} UTC"
    if days < 7:
        return f"{days} days ago"
    return f"on {moment:%m-%d}"


def _span_words(span: timedelta) -> str:
    """`7 days`, `1 day`, `12 hours`."""
    if span >= timedelta(days=1):
        days = round(span / timedelta(days=1))
        return f"{days} day{'s' if days != 1 else ''}"
    hours = max(1, round(span / timedelta(hours=1)))
    return f"{hours} hour{'s' if hours != 1 else ''}"


def _pattern_words(pattern: str) -> str:
    """`password_reset_completed@*` → `password reset completed`."""
    name, _, channel = pattern.partition("@")
    words = name.replace("_", " ").replace("*", "…").strip() or "anything"
    return f"{words} on {channel}" if channel and channel != "*" else words


def _event_evidence(
    cond: Condition, pattern: str, candidates: tuple[RecentEvent, ...], signals: Signals
) -> _Evidence | None:
    window = cond.window or EVENT_WINDOW
    hits = [
        e
        for e in candidates
        if fnmatchcase(e.touchpoint, pattern) and signals.now - e.timestamp <= window
    ]
    if not hits:
        return None
    latest = hits[0]
    if cond.not_followed_by is not None and any(
        e.timestamp > latest.timestamp and fnmatchcase(e.touchpoint, cond.not_followed_by)
        for e in signals.events
    ):
        return None
    when = when_words(latest.timestamp, signals.now)
    reason = f"{latest.event} on {latest.channel} {when}"
    if len(hits) > 1:
        reason += f" ({len(hits)} times in {_span_words(window)})"
    if cond.not_followed_by is not None:
        reason += f", no {_pattern_words(cond.not_followed_by)} since"
    prefix = "failure" if cond.failed is not None else "event"
    facts = {
        prefix: f"{latest.event} on {latest.channel}",
        f"{prefix}_when": when,
        f"{prefix}_date": f"{latest.timestamp:%m-%d}",
    }
    return _Evidence(reason, latest.timestamp, facts)


def _case_evidence(cond: Condition, signals: Signals) -> _Evidence | None:
    pattern = cond.open_case or "*"
    for case in signals.cases:
        if cond.rule is not None and case.rule != cond.rule:
            continue
        if not fnmatchcase(case.touchpoint or "", pattern):
            continue
        if cond.within is not None and signals.now - case.opened_at > cond.within:
            continue
        where = f" at {case.touchpoint}" if case.touchpoint else ""
        reason = (
            f"open case since {case.opened_at:%m-%d} ({case.reason}{where}, "
            f"{case.priority} priority)"
        )
        facts = {
            "case_id": case.id,
            "case_opened": f"{case.opened_at:%m-%d}",
            "case_reason": case.reason,
        }
        return _Evidence(reason, None, facts)
    return None


def _in_range(value: float, cond: Condition) -> bool:
    return (cond.min is None or value >= cond.min) and (cond.max is None or value <= cond.max)


def _answer_evidence(cond: Condition, signals: Signals) -> _Evidence | None:
    window = cond.window or ANSWER_WINDOW
    for answer in signals.answers:
        if answer.survey_type != cond.answer or signals.now - answer.answered_at > window:
            continue
        if not _in_range(answer.score, cond):
            continue
        score = f"{answer.survey_type.upper()} {answer.score:g}"
        when = when_words(answer.answered_at, signals.now)
        facts = {"answer_score": score, "answer_date": f"{answer.answered_at:%m-%d}"}
        return _Evidence(f"answered {score} {when}", answer.answered_at, facts)
    return None


def _value_evidence(cond: Condition, name: str, value: Any, label: str) -> _Evidence | None:
    if value is None:
        return None
    if cond.equals is not None and value != cond.equals:
        return None
    if cond.in_ is not None and value not in cond.in_:
        return None
    if cond.min is not None or cond.max is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not _in_range(float(value), cond):
            return None
    return _Evidence(f"{label} {name} is {value}")


def _evidence(cond: Condition, signals: Signals, flagged: tuple[str, ...]) -> _Evidence | None:
    """Why `cond` holds for the person, or None when it does not."""
    if cond.failed is not None:
        return _event_evidence(cond, cond.failed, signals.failures(flagged), signals)
    if cond.event is not None:
        return _event_evidence(cond, cond.event, signals.events, signals)
    if cond.open_case is not None:
        return _case_evidence(cond, signals)
    if cond.answer is not None:
        return _answer_evidence(cond, signals)
    if cond.trait is not None:
        return _value_evidence(cond, cond.trait, signals.traits.get(cond.trait), "trait")
    if cond.computed is not None:
        value = signals.computed.get(cond.computed)
        return _value_evidence(cond, cond.computed, value, "computed trait")
    assert cond.segment is not None
    if cond.segment in signals.segments:
        return _Evidence(f"in segment {cond.segment!r}")
    return None


def _script_values(signals: Signals, facts: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {
        k: v for k, v in signals.computed.items() if isinstance(v, str | int | float)
    }
    values.update({k: v for k, v in signals.traits.items() if isinstance(v, str | int | float)})
    name = values.get("name")
    if "first_name" not in values and isinstance(name, str) and name.strip():
        values["first_name"] = name.split()[0]
    values.update(facts)
    return values


def _recency(evidence: list[_Evidence], windows: list[timedelta], now: datetime) -> float:
    """Up to RECENCY_BONUS: full for what happened just now, none at the window's end."""
    bonus = 0.0
    for ev, window in zip(evidence, windows, strict=True):
        if ev.at is None or window <= timedelta(0):
            continue
        fresh = max(0.0, 1.0 - (now - ev.at) / window)
        bonus = max(bonus, RECENCY_BONUS * fresh)
    return bonus


def _recommend(
    action: Action,
    channel: str,
    signals: Signals,
    catalogue: ActionCatalogue,
    check: PolicyCheck | None,
) -> Recommendation | None:
    """The recommendation for `action`, or None when it is not relevant to the person."""
    flagged = catalogue.failure_touchpoints
    if action.audience is not None and action.audience not in signals.segments:
        return None
    found: list[_Evidence] = []
    for cond in action.when:
        ev = _evidence(cond, signals, flagged)
        if ev is None:
            return None
        found.append(ev)
    reasons = [ev.reason for ev in found] or ["no condition: fits everyone"]
    if action.audience is not None:
        reasons.append(f"in segment {action.audience!r}")
    blocked: list[str] = []
    for cond in action.unless:
        ev = _evidence(cond, signals, flagged)
        if ev is not None:
            blocked.append(f"{cond.note or 'not now'}: {ev.reason}")
    outbound = action.outbound_channel(channel)
    if not blocked and outbound is not None:
        if check is None:
            reasons.append(f"contact policy not checked for {outbound}")
        else:
            ok, why = check(signals.person_id, outbound, action.purpose)
            if ok:
                reasons.extend(why or (f"contact policy allows {action.purpose} {outbound}",))
            else:
                blocked.extend(
                    f"contact policy: {r}" for r in (why or (f"no {action.purpose} {outbound}",))
                )
    facts: dict[str, str] = {}
    for ev in found:
        facts.update(ev.facts)
    windows = [c.window or timedelta(0) for c in action.when]
    score = action.value + _recency(found, windows, signals.now)
    values = _script_values(signals, facts)
    return Recommendation(
        action=action.id,
        title=render_script(action.title, values, catalogue.defaults),
        script=render_script(action.script, values, catalogue.defaults),
        channel=channel,
        purpose=action.purpose,
        score=round(score, 1),
        reasons=tuple(reasons),
        allowed=not blocked,
        blocked_by=tuple(blocked),
    )


def rank(
    signals: Signals,
    catalogue: ActionCatalogue,
    *,
    channel: str | None = None,
    check: PolicyCheck | None = None,
    limit: int = 5,
) -> list[Recommendation]:
    """Rank the catalogue's actions for already gathered `signals` (see `next_best_actions`)."""
    found = []
    for action in catalogue.for_channel(channel):
        rec = _recommend(action, channel or action.channels[0], signals, catalogue, check)
        if rec is not None:
            found.append(rec)
    found.sort(key=lambda r: (not r.allowed, -r.score, r.action))
    return found[:limit]


def next_best_actions(
    con: duckdb.DuckDBPyConnection,
    person_id: str,
    *,
    channel: str | None,
    now: datetime,
    catalogue: ActionCatalogue | None = None,
    check: PolicyCheck | None = None,
    limit: int = 5,
) -> list[Recommendation]:
    """The best actions for the person now, allowed ones first, each with its reasons.

    `channel` keeps the actions that can be shown or done there (None: every action, on
    its first channel). Relevant actions that a suppression or the contact policy blocks
    come after the allowed ones, with `allowed=False` and `blocked_by` saying why
    ("do not offer the upgrade: open case since 11-28 (...)"), so the agent knows what
    not to do. `check` is asked for actions that contact the person (sms, email).
    """
    if channel is not None and channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit!r}")
    signals = person_signals(con, person_id, now)
    if catalogue is None:
        catalogue = load_actions(con)
    return rank(signals, catalogue, channel=channel, check=check, limit=limit)
