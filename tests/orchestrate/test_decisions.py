"""The gate: decide and record in one step, idempotently, safely under concurrency."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from opencx.errors import InvalidInput
from opencx.orchestrate import decisions
from opencx.orchestrate.decisions import (
    decision_counts,
    decisions_of,
    due_holds,
    gate,
    list_decisions,
    release_holds,
)
from opencx.orchestrate.policy import Decision, Proposal, parse_policy
from opencx.orchestrate.state import person_states as bulk
from opencx.store import Store

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in New York
ONE = parse_policy("budget: {max: 1, per: 7d}")


def service(person: str, key: str, at: datetime = NOW, priority: int = 0) -> Proposal:
    return Proposal(person, f"action-{key}", "email", "service", at, key, priority, "t", key)


def rows(store: Store) -> list[tuple[object, ...]]:
    return store.con.execute(
        "SELECT key, person_id, outcome, rule, CAST(reasons AS VARCHAR), outbox_id "
        "FROM decisions ORDER BY decided_at, key"
    ).fetchall()


def test_gate_records_every_decision_with_its_reasons(store: Store) -> None:
    decided = gate(store, [service("p1", "a"), service("p2", "b"), service("p1", "c")], ONE, NOW)
    assert [(d.proposal.key, d.outcome, d.rule) for d in decided] == [
        ("a", "send", None),
        ("b", "send", None),
        ("c", "drop", "arbitration"),
    ]
    stored = {r[0]: r for r in rows(store)}
    assert stored["c"][2:4] == ("drop", "arbitration")
    assert json.loads(stored["c"][4])[0].startswith("arbitration: lost to action-a (priority 0)")
    mine = decisions_of(store.con, "p1")
    assert {d.id for d in mine} == {decided[0].id, decided[2].id}
    assert {d.id: d for d in mine}[decided[2].id].reasons == decided[2].reasons


def test_a_send_reserves_the_budget_before_delivery(store: Store) -> None:
    [first] = gate(store, [service("p1", "a")], ONE, NOW)
    [second] = gate(store, [service("p1", "b", NOW + timedelta(hours=1))], ONE, NOW)
    assert (first.outcome, second.outcome, second.rule) == ("send", "drop", "budget")
    assert second.reasons[0] == "blocked: 1 contact in the last 7 days: email 11-23"


def test_a_key_sent_or_dropped_is_not_decided_again(store: Store) -> None:
    [sent] = gate(store, [service("p1", "a")], ONE, NOW)
    [dropped] = gate(store, [service("p1", "b")], ONE, NOW)
    again = gate(store, [service("p1", "a"), service("p1", "b"), service("p1", "a")], ONE, NOW)
    assert [d.id for d in again] == [sent.id, dropped.id, sent.id]
    assert len(rows(store)) == 2
    # The key is per person: another person's "a" is a new decision.
    [other] = gate(store, [service("p2", "a")], ONE, NOW)
    assert other.id != sent.id and other.outcome == "send"


def test_holds_are_released_when_due(store: Store) -> None:
    night = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # 23:00 in New York
    [held] = gate(store, [service("p1", "n", night)], ONE, night)
    assert (held.outcome, held.hold_until) == ("hold", datetime(2026, 11, 24, 13, 0, tzinfo=UTC))
    assert due_holds(store.con, night + timedelta(hours=8)) == []
    morning = datetime(2026, 11, 24, 13, 5, tzinfo=UTC)
    [due] = due_holds(store.con, morning)
    assert due.id == held.id and due.proposal == held.proposal
    [released] = release_holds(store, ONE, morning)
    assert released.outcome == "send" and released.proposal.key == "n"
    assert released.proposal.at == morning
    assert due_holds(store.con, morning + timedelta(days=1)) == []
    # Sent now: the key is final.
    assert gate(store, [service("p1", "n", night)], ONE, morning)[0].id == released.id


def test_on_send_runs_in_the_same_transaction(store: Store) -> None:
    store.con.execute("CREATE TABLE fake_outbox (id VARCHAR, decision_id VARCHAR)")
    seen: list[Decision] = []

    def enqueue(con: duckdb.DuckDBPyConnection, d: Decision) -> str:
        seen.append(d)
        con.execute("INSERT INTO fake_outbox VALUES (?, ?)", [f"ob-{d.proposal.key}", d.id])
        return f"ob-{d.proposal.key}"

    decided = gate(store, [service("p1", "a"), service("p1", "b")], ONE, NOW, on_send=enqueue)
    assert [d.outbox_id for d in decided] == ["ob-a", None]
    assert [d.proposal.key for d in seen] == ["a"]
    assert [r[5] for r in rows(store)] == ["ob-a", None]

    def broken(con: duckdb.DuckDBPyConnection, d: Decision) -> str:
        con.execute("INSERT INTO fake_outbox VALUES ('ob-x', ?)", [d.id])
        raise RuntimeError("outbox is down")

    with pytest.raises(RuntimeError, match="outbox is down"):
        gate(store, [service("p2", "x")], ONE, NOW, on_send=broken)
    assert len(rows(store)) == 2  # neither the decision nor the enqueue stayed
    assert store.con.execute("SELECT count(*) FROM fake_outbox").fetchall() == [(1,)]


def test_two_gates_at_the_same_instant_never_both_pass_a_budget_of_one(store: Store) -> None:
    rounds, outcomes = 8, []
    for n in range(rounds):
        person = f"p{n}"
        barrier = threading.Barrier(2, timeout=10)
        results: list[Decision] = []
        errors: list[BaseException] = []

        def fire(
            key: str,
            person: str = person,
            barrier: threading.Barrier = barrier,
            results: list[Decision] = results,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                barrier.wait()
                results.extend(gate(store, [service(person, key)], ONE, NOW))
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=fire, args=(k,)) for k in ("trigger-a", "trigger-b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not errors and not any(t.is_alive() for t in threads)
        outcomes.append(sorted(d.outcome for d in results))
    assert outcomes == [["drop", "send"]] * rounds
    sends = store.con.execute(
        "SELECT person_id, count(*) FROM decisions WHERE outcome = 'send' GROUP BY 1"
    ).fetchall()
    assert sorted(n for _, n in sends) == [1] * rounds


def test_the_decisions_stream_and_counts(store: Store) -> None:
    night = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
    gate(store, [service("p1", "a"), service("p1", "b"), service("p2", "c", night)], ONE, NOW)
    assert [d.outcome for d in list_decisions(store.con, outcome="drop")] == ["drop"]
    assert len(list_decisions(store.con, since=NOW - timedelta(hours=1))) == 3
    assert list_decisions(store.con, since=NOW + timedelta(hours=1)) == []
    with pytest.raises(InvalidInput, match="outcome must be one of send, hold, drop"):
        list_decisions(store.con, outcome="sent")
    counts = decision_counts(store.con, NOW - timedelta(days=1))
    assert counts == {
        "total": 3,
        "outcomes": {"send": 1, "hold": 1, "drop": 1},
        "rules": {"arbitration": 1, "quiet_hours": 1},
        "channels": {"email": {"send": 1, "hold": 1, "drop": 1}},
    }


def test_a_proposal_needs_an_aware_time(store: Store) -> None:
    with pytest.raises(InvalidInput, match="time zone"):
        gate(store, [service("p1", "a", datetime(2026, 11, 23, 15))], ONE, NOW)


def test_a_large_batch_reads_states_in_bulk_with_the_same_decisions(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decisions, "BULK_FROM", 8)
    read = []
    monkeypatch.setattr(decisions, "person_states", lambda *a, **k: read.append(a) or bulk(*a, **k))
    people = [f"p{n}" for n in range(12)]
    gate(store, [service(p, "first") for p in people[::2]], ONE, NOW)  # half already sent
    batch = [service(p, "second") for p in people] + [service(people[0], "first")]
    decided = gate(store, batch, ONE, NOW)
    assert [d.outcome for d in decided[:12]] == ["drop", "send"] * 6
    assert decided[12].proposal.key == "first" and decided[12].outcome == "send"
    assert all(d.rule == "budget" for d in decided[:12:2])
    assert len(read) == 1  # the second call, with 12 people, read them in bulk


def test_a_reservation_counts_for_a_gate_whose_clock_is_a_hair_behind(store: Store) -> None:
    [first] = gate(store, [service("p1", "a")], ONE, NOW)
    [second] = gate(store, [service("p1", "b")], ONE, NOW - timedelta(milliseconds=3))
    assert (first.outcome, second.outcome, second.rule) == ("send", "drop", "budget")
