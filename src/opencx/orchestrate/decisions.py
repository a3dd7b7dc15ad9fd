"""The gate every outbound contact passes, and the log of every decision it took.

`gate` takes the store's write lock and decides a batch of proposals in one transaction:
check and record are one step, so two triggers firing for the same person at the same
instant can never both spend a budget of one. A send is handed to `on_send` (the
outbox) inside the same transaction, so a decision and its delivery commit together.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import duckdb

from opencx.errors import InvalidInput
from opencx.orchestrate.policy import ContactPolicy, Decision, Proposal, arbitrate
from opencx.orchestrate.state import PersonState, person_state, person_states
from opencx.store import Store

OnSend = Callable[[duckdb.DuckDBPyConnection, Decision], str | None]
OUTCOMES = ("send", "hold", "drop")
# People in one gate call from which their states are read in bulk: measured on 5 M
# events, 8 point reads take 0.13 s and a bulk read 0.3 s; at 64 people the bulk read wins.
BULK_FROM = 48
_COLUMNS = (
    "id, key, decided_at, person_id, action, trigger, cause, channel, purpose, priority, "
    "outcome, rule, hold_until, CAST(reasons AS VARCHAR), outbox_id, proposed_at, on_quiet_hours"
)


def _decision(row: Sequence[Any]) -> Decision:
    (id_, key, decided_at, person, action, trigger, cause, channel, purpose, priority,
     outcome, rule, hold_until, reasons, outbox_id, at, on_quiet) = row  # fmt: skip
    proposal = Proposal(
        person_id=person, action=action, channel=channel, purpose=purpose,
        at=at or decided_at, key=key, priority=priority, trigger=trigger, cause=cause,
        on_quiet_hours=on_quiet or "hold",
    )  # fmt: skip
    return Decision(
        id_, proposal, outcome, tuple(json.loads(reasons)), rule, hold_until, decided_at, outbox_id
    )


def _record(con: duckdb.DuckDBPyConnection, d: Decision) -> None:
    p = d.proposal
    con.execute(
        "INSERT INTO decisions (id, key, decided_at, person_id, action, trigger, cause, channel, "
        "purpose, priority, outcome, rule, hold_until, reasons, outbox_id, proposed_at, "
        "on_quiet_hours) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [d.id, p.key, d.decided_at, p.person_id, p.action, p.trigger, p.cause, p.channel,
         p.purpose, p.priority, d.outcome, d.rule, d.hold_until, json.dumps(list(d.reasons)),
         d.outbox_id, p.at, p.on_quiet_hours],
    )  # fmt: skip


def _finals(
    con: duckdb.DuckDBPyConnection, proposals: Sequence[Proposal]
) -> dict[tuple[str, str], Decision]:
    """The decisions already taken for these (person, key) pairs that were a send or a
    drop (the newest decision per pair counts: a hold may have been released since)."""
    wanted = {(p.person_id, p.key) for p in proposals}
    rows = con.execute(
        f"""
        SELECT {_COLUMNS} FROM (
            SELECT *, row_number() OVER (
                PARTITION BY person_id, key ORDER BY decided_at DESC, outcome <> 'hold' DESC
            ) AS newest
            FROM decisions WHERE key IN (SELECT unnest($keys::VARCHAR[]))
        ) WHERE newest = 1 AND outcome <> 'hold'
        """,
        {"keys": sorted({k for _, k in wanted})},
    ).fetchall()
    found = {(r[3], r[1]): _decision(r) for r in rows}
    return {pair: d for pair, d in found.items() if pair in wanted}


def _states(
    con: duckdb.DuckDBPyConnection, people: list[str], now: datetime, policy: ContactPolicy
) -> dict[str, PersonState]:
    """Point reads for a few people; past `BULK_FROM`, one grouped read for all of them
    (each point read scans the person's events; the bulk read scans once per aspect)."""
    categories = policy.consent.categories
    if len(people) >= BULK_FROM:
        return person_states(con, now, people, categories=categories, upcoming=True)
    return {p: person_state(con, p, now, categories=categories, upcoming=True) for p in people}


def gate(
    store: Store,
    proposals: Sequence[Proposal],
    policy: ContactPolicy,
    now: datetime,
    *,
    on_send: OnSend | None = None,
) -> list[Decision]:
    """Decide and record `proposals` (in their order in the result), under the write
    lock and in one transaction. A key already sent or dropped for that person returns
    the decision taken then; a hold is decided again (that is how holds are released)."""
    con = store.cursor()
    by_person: dict[str, list[Proposal]] = {}
    for p in proposals:
        if p.at.tzinfo is None:
            raise InvalidInput(f"proposal {p.key!r}: at must carry a time zone (UTC)")
        by_person.setdefault(p.person_id, []).append(p)
    decided: dict[tuple[str, str], Decision] = {}
    pending: dict[str, list[Proposal]] = {}
    with store.write_lock:
        con.execute("BEGIN")
        try:
            decided.update(_finals(con, proposals))
            for person, mine in by_person.items():
                fresh: list[Proposal] = []
                for p in mine:
                    if (person, p.key) not in decided and all(f.key != p.key for f in fresh):
                        fresh.append(p)
                if fresh:
                    pending[person] = fresh
            states = _states(con, list(pending), now, policy)
            for person, fresh in pending.items():
                for d in arbitrate(fresh, states[person], policy, now):
                    if d.outcome == "send" and on_send is not None:
                        d = replace(d, outbox_id=on_send(con, d))
                    _record(con, d)
                    decided[(person, d.proposal.key)] = d
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return [decided[(p.person_id, p.key)] for p in proposals]


def decisions_of(con: duckdb.DuckDBPyConnection, person_id: str, limit: int = 50) -> list[Decision]:
    """A person's decisions, newest first."""
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM decisions WHERE person_id = ? "
        "ORDER BY decided_at DESC, id LIMIT ?",
        [person_id, limit],
    ).fetchall()
    return [_decision(r) for r in rows]


def list_decisions(
    con: duckdb.DuckDBPyConnection,
    *,
    since: datetime | None = None,
    outcome: str | None = None,
    limit: int = 200,
) -> list[Decision]:
    """The decisions stream, newest first, optionally since a moment or of one outcome."""
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    if not 1 <= limit <= 10_000:
        raise InvalidInput(f"limit must be from 1 to 10,000, got {limit}")
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM decisions WHERE ($since IS NULL OR decided_at >= $since) "
        "AND ($outcome IS NULL OR outcome = $outcome) ORDER BY decided_at DESC, id LIMIT $limit",
        {"since": since, "outcome": outcome, "limit": limit},
    ).fetchall()
    return [_decision(r) for r in rows]


def decision_counts(con: duckdb.DuckDBPyConnection, since: datetime) -> dict[str, Any]:
    """For the dashboard: decisions since `since` by outcome, by rule and by channel.

    `{"total": 12, "outcomes": {"send": 7, "hold": 2, "drop": 3},
    "rules": {"budget": 2, ...}, "channels": {"email": {"send": 5, ...}, ...}}`
    """
    rows = con.execute(
        "SELECT outcome, rule, channel, count(*) FROM decisions WHERE decided_at >= ? GROUP BY ALL",
        [since],
    ).fetchall()
    outcomes = dict.fromkeys(OUTCOMES, 0)
    rules: dict[str, int] = {}
    channels: dict[str, dict[str, int]] = {}
    for outcome, rule, channel, n in rows:
        outcomes[outcome] = outcomes.get(outcome, 0) + n
        if rule is not None:
            rules[rule] = rules.get(rule, 0) + n
        per = channels.setdefault(channel, dict.fromkeys(OUTCOMES, 0))
        per[outcome] = per.get(outcome, 0) + n
    return {
        "total": sum(outcomes.values()),
        "outcomes": outcomes,
        "rules": dict(sorted(rules.items(), key=lambda kv: -kv[1])),
        "channels": dict(sorted(channels.items())),
    }


def due_holds(con: duckdb.DuckDBPyConnection, now: datetime) -> list[Decision]:
    """Held decisions whose `hold_until` has passed and that no later decision for the
    same person and key superseded, oldest hold first."""
    rows = con.execute(
        f"""
        SELECT {_COLUMNS} FROM (
            SELECT *, row_number() OVER (
                PARTITION BY person_id, key ORDER BY decided_at DESC, outcome <> 'hold' DESC
            ) AS newest
            FROM decisions
            WHERE person_id IN (SELECT person_id FROM decisions WHERE outcome = 'hold')
        ) WHERE newest = 1 AND outcome = 'hold' AND hold_until <= ?
        ORDER BY hold_until, id
        """,
        [now],
    ).fetchall()
    return [_decision(r) for r in rows]


def release_holds(
    store: Store, policy: ContactPolicy, now: datetime, *, on_send: OnSend | None = None
) -> list[Decision]:
    """Decide again every due hold, as if proposed now (the policy is checked afresh)."""
    due = due_holds(store.cursor(), now)
    if not due:
        return []
    return gate(store, [replace(d.proposal, at=now) for d in due], policy, now, on_send=on_send)
