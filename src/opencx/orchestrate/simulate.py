"""A dry run of a contact policy: replay the last days' contacts and count what it does.

Every outbound contact of the period is a proposal again: the brand's own sends on the
timeline (an ESP's `Email Sent`, `SMS Sent`, `Survey Invited`...) and every contact a
trigger proposed (its latest decision). Each person's proposals are decided in time order
under the policy being tried, starting from their state when the period began; only the
contacts the simulated policy lets through count against the budgets that follow, consent
changes, survey answers and cases take effect when they happened, and a held contact is
decided again when its hold ends. The report counts, per trigger or campaign and per
segment, what would have been sent, held (then sent) and dropped, and which rule of the
policy held or dropped it.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from opencx.errors import InvalidInput
from opencx.orchestrate.consent import (
    LEDGER_WHERE,
    ConsentRecord,
    current_consents,
    ledger_rows,
    ledger_select,
)
from opencx.orchestrate.policy import (
    PURPOSES,
    ContactPolicy,
    Decision,
    Proposal,
    arbitrate,
    with_contact,
)
from opencx.orchestrate.state import (
    CONTACT_EVENTS,
    PURPOSE_SQL,
    WHAT_SQL,
    PersonState,
    SurveyAnswer,
    last_detractor,
    person_states,
)

MAX_DAYS = 366
MAX_HOLDS = 5  # a contact held more often than this in the replay counts as dropped
SENT, HELD, DROPPED = "sent", "held, then sent", "dropped"
OUTCOMES: tuple[str, ...] = (SENT, HELD, DROPPED)
NO_SEGMENT = "(no segment)"
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Candidate:
    """One contact of the period, proposed again."""

    person_id: str
    at: datetime
    channel: str
    purpose: str
    source: str  # the trigger, or the campaign / message type on the timeline
    priority: int
    on_quiet_hours: str
    key: str


@dataclass
class SimulationReport:
    """What the policy would have done with the period's contacts."""

    start: datetime
    end: datetime
    proposals: int = 0
    people: int = 0
    actual_sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_source: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    by_segment: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    by_rule: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    by_purpose: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    examples: dict[str, str] = field(default_factory=dict)  # rule -> one reason, as said
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        def table(groups: Mapping[str, Counter[str]]) -> dict[str, dict[str, int]]:
            return {k: {o: groups[k][o] for o in OUTCOMES} for k in sorted(groups)}

        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "proposals": self.proposals,
            "people": self.people,
            "actual_sent": self.actual_sent,
            "outcomes": {o: self.outcomes[o] for o in OUTCOMES},
            "by_source": table(self.by_source),
            "by_segment": table(self.by_segment),
            "by_rule": table(self.by_rule),
            "by_purpose": table(self.by_purpose),
            "examples": dict(self.examples),
            "seconds": round(self.seconds, 3),
        }


def _us(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1e6, UTC)


def _candidates(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime
) -> tuple[list[_Candidate], int]:
    """The period's contacts: timeline sends not made by a decision, and the latest
    decision of each proposal the triggers made. Also how many were actually sent."""
    rows = con.execute(
        f"""
        SELECT person_id, epoch_us(timestamp), channel, {PURPOSE_SQL}, {WHAT_SQL}, 0,
               'hold', 'log:' || message_id, 1
        FROM resolved_events
        WHERE event IN (SELECT unnest($events::VARCHAR[])) AND person_id IS NOT NULL
          AND timestamp >= $start AND timestamp < $end
          AND (json_extract_string(properties, '$.decision_id') IS NULL
               OR json_extract_string(properties, '$.decision_id') NOT IN
                  (SELECT id FROM decisions))
        UNION ALL
        SELECT person_id, epoch_us(first_at), channel, purpose, coalesce(trigger, action),
               priority, 'hold', 'decision:' || key, CASE WHEN outcome = 'send' THEN 1 ELSE 0 END
        FROM (
            SELECT *, min(decided_at) OVER (PARTITION BY key) AS first_at,
                   row_number() OVER (PARTITION BY key ORDER BY decided_at DESC, id DESC) AS n
            FROM decisions WHERE decided_at >= $start AND decided_at < $end
        ) WHERE n = 1
        ORDER BY 1, 2
        """,
        {"events": list(CONTACT_EVENTS), "start": start, "end": end},
    ).fetchall()
    found = [
        _Candidate(
            p,
            _us(us),
            ch,
            purpose if purpose in PURPOSES else "marketing",
            src,
            int(prio),
            quiet,
            key,
        )
        for p, us, ch, purpose, src, prio, quiet, key, _sent in rows
    ]
    return found, sum(int(r[8]) for r in rows)


def _ledgers(
    con: duckdb.DuckDBPyConnection, people: list[str], end: datetime
) -> dict[str, list[ConsentRecord]]:
    rows = con.execute(
        f"SELECT person_id, {ledger_select('epoch_us(timestamp)')} FROM resolved_events "
        f"WHERE person_id IN (SELECT unnest($people::VARCHAR[])) AND timestamp < $end "
        f"AND {LEDGER_WHERE} ORDER BY person_id, timestamp, seq",
        {"people": people, "end": end},
    ).fetchall()
    grouped: defaultdict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        grouped[row[0]].append((_us(row[1]), *row[2:]))
    return {person: ledger_rows(found) for person, found in grouped.items()}


def _answers(
    con: duckdb.DuckDBPyConnection, people: list[str], start: datetime, end: datetime
) -> dict[str, list[SurveyAnswer]]:
    rows = con.execute(
        "SELECT person_id, epoch_us(timestamp), "
        "lower(json_extract_string(properties, '$.survey_type')), "
        "TRY_CAST(json_extract_string(properties, '$.score') AS DOUBLE) FROM resolved_events "
        "WHERE person_id IN (SELECT unnest($people::VARCHAR[])) AND event = 'Survey Responded' "
        "AND timestamp >= $start AND timestamp < $end ORDER BY 1, 2",
        {"people": people, "start": start, "end": end},
    ).fetchall()
    found: defaultdict[str, list[SurveyAnswer]] = defaultdict(list)
    for person, us, kind, score in rows:
        if kind is not None and score is not None:
            found[person].append(SurveyAnswer(_us(us), kind, score))
    return found


def _cases(
    con: duckdb.DuckDBPyConnection, people: list[str], end: datetime
) -> dict[str, list[tuple[datetime, datetime | None]]]:
    rows = con.execute(
        "SELECT person_id, opened_at, resolved_at FROM cases "
        "WHERE person_id IN (SELECT unnest($people::VARCHAR[])) AND opened_at < $end",
        {"people": people, "end": end},
    ).fetchall()
    found: defaultdict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for person, opened, resolved in rows:
        found[person].append((opened, resolved))
    return found


def _segments(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    found: defaultdict[str, list[str]] = defaultdict(list)
    for person, segment in con.execute(
        "SELECT person_id, segment FROM segment_members ORDER BY segment"
    ).fetchall():
        found[person].append(segment)
    return found


class _Person:
    """One person's replay: their state moves with the period's events as time passes."""

    def __init__(
        self,
        state: PersonState,
        ledger: list[ConsentRecord],
        answers: list[SurveyAnswer],
        cases: list[tuple[datetime, datetime | None]],
        thresholds: Mapping[str, float],
    ) -> None:
        self.state = state
        self.ledger = ledger
        self.answers = answers
        self.cases = cases
        self.thresholds = thresholds

    def at(self, moment: datetime) -> PersonState:
        consents = current_consents(r for r in self.ledger if r.at <= moment)
        recent = [a for a in self.answers if a.at <= moment]
        detractor = self.state.last_detractor_at
        if recent:
            latest = last_detractor(recent, self.thresholds)
            if latest is not None:
                detractor = latest
        open_cases = sum(
            1 for opened, resolved in self.cases if opened <= moment < (resolved or _NEVER)
        )
        return replace(
            self.state, consents=consents or self.state.consents, last_detractor_at=detractor,
            open_cases=open_cases,
        )  # fmt: skip


def simulate(
    con: duckdb.DuckDBPyConnection,
    policy: ContactPolicy,
    *,
    days: int = 30,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationReport:
    """Replay the last `days` of contacts under `policy` (nothing is sent or recorded)."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}, not {days}")
    started = time.perf_counter()
    end = (now or datetime.now(UTC)).astimezone(UTC)
    start = end - timedelta(days=days)
    candidates, actual = _candidates(con, start, end)
    report = SimulationReport(start, end, proposals=len(candidates), actual_sent=actual)
    by_person: defaultdict[str, list[_Candidate]] = defaultdict(list)
    for c in candidates:
        by_person[c.person_id].append(c)
    people = sorted(by_person)
    report.people = len(people)
    states = person_states(con, start, people, categories=policy.consent.categories)
    ledgers = _ledgers(con, people, end)
    answers = _answers(con, people, start, end)
    cases = _cases(con, people, end)
    segments = _segments(con)
    thresholds = policy.after_detractor.thresholds
    for done, person in enumerate(people, 1):
        replay = _Person(
            states.get(person) or PersonState(person), ledgers.get(person, []),
            answers.get(person, []), cases.get(person, []), thresholds,
        )  # fmt: skip
        for candidate, outcome, decision in _replay(replay, by_person[person], policy):
            _count(report, candidate, outcome, decision, segments.get(person) or [NO_SEGMENT])
        if progress is not None and (done % 500 == 0 or done == len(people)):
            progress(done, len(people))
    report.seconds = time.perf_counter() - started
    return report


def _replay(
    person: _Person, candidates: Iterable[_Candidate], policy: ContactPolicy
) -> Iterable[tuple[_Candidate, str, Decision]]:
    """Decide one person's contacts in time order; those held come back at their hold's
    end (same-instant proposals compete, highest priority first). A contact held and then
    sent is reported with the decision that held it."""
    queue: list[tuple[datetime, int, _Candidate]] = [(c.at, 0, c) for c in candidates]
    first_hold: dict[str, Decision] = {}
    sent = person.state
    while queue:
        queue.sort(key=lambda item: (item[0], -item[2].priority, item[2].key))
        moment = queue[0][0]
        batch = [item for item in queue if item[0] == moment]
        queue = queue[len(batch) :]
        state = replace(person.at(moment), contacts=sent.contacts,
                        last_survey_at=sent.last_survey_at)  # fmt: skip
        proposals = {
            c.key: Proposal(
                person_id=c.person_id,
                action=c.source,
                channel=c.channel,
                purpose=c.purpose,  # type: ignore[arg-type]
                at=moment,
                key=c.key,
                priority=c.priority,
                on_quiet_hours=c.on_quiet_hours,  # type: ignore[arg-type]
            )
            for _, _, c in batch
        }
        holds = {c.key: h for _, h, c in batch}
        originals = {c.key: c for _, _, c in batch}
        for decision in arbitrate(list(proposals.values()), state, policy, moment):
            key = decision.proposal.key
            candidate, held = originals[key], holds[key]
            if decision.outcome == "send":
                sent = with_contact(sent, decision)
                if held == 0:
                    yield candidate, SENT, decision
                else:
                    yield candidate, HELD, first_hold.get(key, decision)
            elif (
                decision.outcome == "hold"
                and decision.hold_until is not None
                and decision.hold_until > moment
                and held < MAX_HOLDS
            ):
                first_hold.setdefault(key, decision)
                queue.append((decision.hold_until, held + 1, candidate))
            else:
                yield candidate, DROPPED, decision


def _count(
    report: SimulationReport,
    candidate: _Candidate,
    outcome: str,
    decision: Decision,
    segments: list[str],
) -> None:
    report.outcomes[outcome] += 1
    report.by_source[candidate.source][outcome] += 1
    report.by_purpose[candidate.purpose][outcome] += 1
    for segment in segments:
        report.by_segment[segment][outcome] += 1
    rule = decision.rule or "sent"
    if outcome != SENT:
        report.by_rule[rule][outcome] += 1
        if decision.reasons and rule not in report.examples:
            report.examples[rule] = decision.reasons[0]
