"""What the contact policy needs to know about a person, read from the store.

Contacts counted against the budgets are the decisions already taken to send (so a
reservation counts at once, before delivery) plus the brand's own outbound events on the
timeline that did not come from a decision (an ESP's `Email Sent`, a gateway's `SMS
Sent`, the VoC module's `Survey Invited`). An event with a `decision_id` property is the
delivery of a decision and is counted once, as the decision. States are as of `now`;
with `upcoming=True` (what the gate asks for) decisions dated after `now` count too: two
gate calls whose clocks differ by a hair must still see each other's reservations.

`person_state` is a point read for the gate (one scan of the events, a few small
queries); `person_states` reads many people with one columnar query per aspect, for the
simulation and the benchmark.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from opencx.orchestrate.consent import (
    LEDGER_COLUMNS,
    LEDGER_SELECT,
    LEDGER_WHERE,
    ConsentRecord,
    current_consents,
    ledger_rows,
    ledger_select,
    sql_list,
)
from opencx.orchestrate.moments import RESPONSE_EVENTS, Response
from opencx.profiles import profile_members
from opencx.store import fetch_one

CONTACT_EVENTS: tuple[str, ...] = (
    "Email Sent",
    "SMS Sent",
    "Survey Invited",
    "Message Sent",
    "Push Notification Sent",
)
ANSWER_EVENTS: tuple[str, ...] = ("Survey Responded",)
RESPONSES_DAYS = 180  # how far back responses teach the best moment
ANSWERS_DAYS = 365
# Defaults that make `last_detractor_at`; the policy can apply its own to `answers`.
DETRACTOR_MAX = {"nps": 6.0, "csat": 2.0}

# The purpose of an outbound event: its `purpose` property, else what kind of message it is.
_PURPOSE_SQL = """
CASE
  WHEN json_extract_string(properties, '$.purpose')
       IN ('transactional', 'service', 'survey', 'marketing')
    THEN json_extract_string(properties, '$.purpose')
  WHEN event = 'Survey Invited' THEN 'survey'
  WHEN event = 'Email Sent' THEN
    CASE lower(json_extract_string(properties, '$.email_type'))
      WHEN 'transactional' THEN 'transactional' WHEN 'service' THEN 'service'
      ELSE 'marketing' END
  WHEN event = 'SMS Sent' THEN
    CASE WHEN json_extract_string(properties, '$.message_type')
              IN ('verification_code', 'bill_reminder', 'order_update', 'delivery_update')
         THEN 'transactional' ELSE 'service' END
  ELSE 'marketing'
END"""
_WHAT_SQL = (
    "coalesce(json_extract_string(properties, '$.campaign_id'), "
    "json_extract_string(properties, '$.survey_id'), "
    "json_extract_string(properties, '$.message_type'), "
    "json_extract_string(properties, '$.action'), event)"
)


@dataclass(frozen=True, slots=True)
class Contact:
    """One contact the brand made (or reserved): when, where, why, what."""

    at: datetime
    channel: str
    purpose: str
    what: str


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    at: datetime
    survey_type: str
    score: float


@dataclass(frozen=True)
class PersonState:
    """Everything `decide` reads about one person, as of one moment."""

    person_id: str
    timezone: str | None = None
    consents: Mapping[tuple[str, str], ConsentRecord] = field(default_factory=dict)
    contacts: tuple[Contact, ...] = ()
    open_cases: int = 0
    last_detractor_at: datetime | None = None
    last_survey_at: datetime | None = None
    segments: frozenset[str] = frozenset()
    responses: tuple[Response, ...] = ()
    answers: tuple[SurveyAnswer, ...] = ()


def last_detractor(
    answers: Sequence[SurveyAnswer], thresholds: Mapping[str, float] = DETRACTOR_MAX
) -> datetime | None:
    """When the person last gave a detractor answer (score at or under the threshold)."""
    found = [
        a.at
        for a in answers
        if a.survey_type in thresholds and a.score <= thresholds[a.survey_type]
    ]
    return max(found, default=None)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


# Public names for the SQL that classifies outbound events (the simulation reuses them).
PURPOSE_SQL = _PURPOSE_SQL
WHAT_SQL = _WHAT_SQL


def person_state(
    con: duckdb.DuckDBPyConnection,
    person_id: str,
    now: datetime,
    *,
    lookback_days: int = 30,
    categories: Mapping[str, str] | None = None,
    upcoming: bool = False,
) -> PersonState:
    """One person's state as of `now`: one pass over their events and four small reads."""
    canonical, members = profile_members(con, person_id)
    since = now - timedelta(days=lookback_days)
    # One parameter per member id (not a list to unnest): DuckDB then filters the scan
    # directly instead of joining, which is what keeps a point read fast.
    ids = {f"m{n}": m for n, m in enumerate(members)}
    of_member = "(" + ", ".join(f"${k}" for k in ids) + ")"
    params: dict[str, Any] = {
        **ids,
        "since": since,
        "resp_since": now - timedelta(days=RESPONSES_DAYS),
        "ans_since": now - timedelta(days=ANSWERS_DAYS),
        "now": now,
    }
    rows = con.execute(
        f"""
        SELECT {LEDGER_SELECT},
               json_extract_string(context, '$.timezone') AS tz,
               json_extract_string(traits, '$.timezone') AS trait_tz,
               CASE WHEN event IN {sql_list(CONTACT_EVENTS)} AND timestamp > $since
                    THEN {_PURPOSE_SQL} END AS purpose,
               CASE WHEN event IN {sql_list(CONTACT_EVENTS)} THEN {_WHAT_SQL} END,
               json_extract_string(properties, '$.decision_id') AS decision_id,
               event IN {sql_list(RESPONSE_EVENTS)} AND timestamp > $resp_since,
               CASE WHEN event IN {sql_list(ANSWER_EVENTS)} AND timestamp > $ans_since
                    THEN lower(json_extract_string(properties, '$.survey_type')) END,
               TRY_CAST(json_extract_string(properties, '$.score') AS DOUBLE) AS score
        FROM events
        WHERE profile_id IN {of_member} AND timestamp <= $now
        ORDER BY timestamp, seq
        """,
        params,
    ).fetchall()
    decided = con.execute(
        "SELECT id, decided_at, channel, purpose, action, outcome FROM decisions "
        f"WHERE person_id IN {of_member} AND decided_at > $since "
        "AND ($upcoming OR decided_at <= $now)",
        {**ids, "since": since - timedelta(days=7), "upcoming": upcoming, "now": now},
    ).fetchall()
    extra = fetch_one(
        con.execute(
            f"SELECT (SELECT count(*) FROM cases WHERE person_id IN {of_member} "
            "AND status <> 'resolved'), "
            f"(SELECT max(created_at) FROM survey_invitations WHERE person_id IN {of_member} "
            "AND created_at <= $now), "
            "(SELECT list(DISTINCT segment) FROM segment_members WHERE person_id = $m0)",
            {**ids, "now": now},
        )
    )
    open_cases, invited_at, segments = extra if extra else (0, None, None)

    contacts: list[Contact] = []
    responses: list[Response] = []
    answers: list[SurveyAnswer] = []
    tz: str | None = None
    trait_tz: str | None = None
    last_survey: datetime | None = invited_at
    decision_ids = {str(d[0]) for d in decided}
    for row in rows:
        at, _, _, event, channel = row[0], row[1], row[2], row[3], row[4]
        row_tz, row_trait_tz, purpose, what, decision_id, responded, survey_type, score = row[
            LEDGER_COLUMNS:
        ]
        if row_tz:
            tz = row_tz
        if row_trait_tz:
            trait_tz = row_trait_tz
        if event == "Survey Invited" and (last_survey is None or at > last_survey):
            last_survey = at
        if purpose is not None and decision_id not in decision_ids:
            contacts.append(Contact(at, channel, purpose, what))
        if responded:
            responses.append(Response(at, channel, event))
        if survey_type is not None and score is not None:
            answers.append(SurveyAnswer(at, survey_type, score))
    for _id, decided_at, channel, purpose, action, outcome in decided:
        if outcome == "send" and decided_at > since:
            contacts.append(Contact(decided_at, channel, purpose, action))
            if purpose == "survey" and (last_survey is None or decided_at > last_survey):
                last_survey = decided_at
    contacts.sort(key=lambda c: c.at)
    records = ledger_rows((r[:LEDGER_COLUMNS] for r in rows), categories)
    return PersonState(
        person_id=canonical,
        timezone=tz or trait_tz,
        consents=current_consents(records),
        contacts=tuple(contacts),
        open_cases=int(open_cases or 0),
        last_detractor_at=last_detractor(answers),
        last_survey_at=last_survey,
        segments=frozenset(segments or ()),
        responses=tuple(responses),
        answers=tuple(answers),
    )


def person_states(
    con: duckdb.DuckDBPyConnection,
    now: datetime,
    person_ids: Sequence[str] | None = None,
    *,
    lookback_days: int = 30,
    categories: Mapping[str, str] | None = None,
    upcoming: bool = False,
) -> dict[str, PersonState]:
    """Many people's states as of `now` (everyone on the log when `person_ids` is None),
    keyed by the ids asked for (a merged-away id gets its survivor's state): one grouped
    query per aspect, so a million profiles load in seconds."""
    since = now - timedelta(days=lookback_days)
    if person_ids is None:
        people = [
            str(r[0])
            for r in con.execute(
                "SELECT DISTINCT person_id FROM resolved_events WHERE person_id IS NOT NULL "
                "UNION SELECT DISTINCT person_id FROM decisions ORDER BY 1"
            ).fetchall()
        ]
        where, ev_where = "TRUE", "person_id IS NOT NULL"
    else:
        asked = list(dict.fromkeys(person_ids))
        merged = dict(
            con.execute(
                "SELECT profile_id, canonical_id FROM profile_merges "
                "WHERE profile_id IN (SELECT unnest($ids::VARCHAR[]))",
                {"ids": asked},
            ).fetchall()
        )
        people = list(dict.fromkeys(merged.get(p, p) for p in asked))
        where = "person_id IN (SELECT unnest($people::VARCHAR[]))"
        ev_where = where
    base = {"people": people} if person_ids is not None else {}
    ev = f"SELECT * FROM resolved_events WHERE {ev_where} AND timestamp <= $now"

    def q(sql: str, **params: Any) -> list[tuple[Any, ...]]:
        given = {**base, "now": now, "upcoming": upcoming, **params}
        used = set(re.findall(r"\$([a-z_]+)", sql))
        return con.execute(sql, {k: v for k, v in given.items() if k in used}).fetchall()

    tz_rows = q(
        f"""
        SELECT person_id,
               arg_max(json_extract_string(context, '$.timezone'), timestamp)
                 FILTER (WHERE json_extract_string(context, '$.timezone') IS NOT NULL),
               arg_max(json_extract_string(traits, '$.timezone'), timestamp)
                 FILTER (WHERE json_extract_string(traits, '$.timezone') IS NOT NULL)
        FROM ({ev}) e
        WHERE context LIKE '%"timezone"%' OR traits LIKE '%"timezone"%'
        GROUP BY person_id
        """
    )
    contact_rows = q(
        f"""
        SELECT c.person_id, epoch_us(c.timestamp), c.channel, c.purpose, c.what FROM (
            SELECT person_id, timestamp, channel, {_PURPOSE_SQL} AS purpose,
                   {_WHAT_SQL} AS what,
                   json_extract_string(properties, '$.decision_id') AS decision_id
            FROM ({ev}) e
            WHERE event IN {sql_list(CONTACT_EVENTS)} AND timestamp > $since
        ) c LEFT JOIN (SELECT id FROM decisions WHERE {where}) d ON d.id = c.decision_id
        WHERE d.id IS NULL
        UNION ALL
        SELECT person_id, epoch_us(decided_at), channel, purpose, action FROM decisions
        WHERE {where} AND outcome = 'send' AND decided_at > $since
          AND ($upcoming OR decided_at <= $now)
        ORDER BY 1, 2
        """,
        since=since,
    )
    response_rows = q(
        f"SELECT person_id, epoch_us(timestamp), channel, event FROM ({ev}) e "
        f"WHERE event IN {sql_list(RESPONSE_EVENTS)} AND timestamp > $since "
        "ORDER BY 1, 2",
        since=now - timedelta(days=RESPONSES_DAYS),
    )
    answer_rows = q(
        "SELECT person_id, epoch_us(timestamp), "
        "lower(json_extract_string(properties, '$.survey_type')), "
        "TRY_CAST(json_extract_string(properties, '$.score') AS DOUBLE) FROM "
        f"({ev}) e WHERE event IN {sql_list(ANSWER_EVENTS)} AND timestamp > $since "
        "AND json_extract_string(properties, '$.score') IS NOT NULL ORDER BY 1, 2",
        since=now - timedelta(days=ANSWERS_DAYS),
    )
    survey_rows = q(
        f"""
        SELECT person_id, epoch_us(max(t)) FROM (
            SELECT person_id, timestamp AS t FROM ({ev}) e WHERE event = 'Survey Invited'
            UNION ALL SELECT person_id, created_at FROM survey_invitations
            WHERE {where} AND created_at <= $now
            UNION ALL SELECT person_id, decided_at FROM decisions
            WHERE {where} AND outcome = 'send' AND purpose = 'survey'
              AND ($upcoming OR decided_at <= $now)
        ) GROUP BY person_id
        """
    )
    ledger = q(
        f"SELECT person_id, {ledger_select('epoch_us(timestamp)')} FROM ({ev}) e "
        f"WHERE {LEDGER_WHERE} "
        "ORDER BY person_id, timestamp, seq",
    )
    case_rows = q(
        f"SELECT person_id, count(*) FROM cases WHERE {where} AND status <> 'resolved' "
        "GROUP BY person_id"
    )
    segment_rows = q(
        f"SELECT person_id, list(DISTINCT segment) FROM segment_members WHERE {where} "
        "GROUP BY person_id"
    )

    contacts: defaultdict[str, list[Contact]] = defaultdict(list)
    for person, us, channel, purpose, what in contact_rows:
        contacts[person].append(Contact(_utc(us), channel, purpose, what))
    responses: defaultdict[str, list[Response]] = defaultdict(list)
    for person, us, channel, event in response_rows:
        responses[person].append(Response(_utc(us), channel, event))
    answers: defaultdict[str, list[SurveyAnswer]] = defaultdict(list)
    for person, us, survey_type, score in answer_rows:
        if survey_type is not None and score is not None:
            answers[person].append(SurveyAnswer(_utc(us), survey_type, score))
    ledgers: defaultdict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in ledger:
        ledgers[row[0]].append((_utc(row[1]), *row[2:]))
    zones = {p: tz or trait_tz for p, tz, trait_tz in tz_rows}
    surveys = {p: _utc(us) for p, us in survey_rows}
    cases = dict(case_rows)
    segments = dict(segment_rows)
    empty: tuple[Any, ...] = ()
    out: dict[str, PersonState] = {}
    for person in people:
        mine = answers.get(person)
        ledger_of = ledgers.get(person)
        out[person] = PersonState(
            person_id=person,
            timezone=zones.get(person),
            consents=current_consents(ledger_rows(ledger_of, categories)) if ledger_of else {},
            contacts=tuple(contacts.get(person, empty)),
            open_cases=int(cases.get(person, 0)),
            last_detractor_at=last_detractor(mine) if mine else None,
            last_survey_at=surveys.get(person),
            segments=frozenset(segments.get(person) or ()),
            responses=tuple(responses.get(person, empty)),
            answers=tuple(mine or ()),
        )
    if person_ids is None:
        return out
    return {p: out[merged.get(p, p)] for p in asked}
