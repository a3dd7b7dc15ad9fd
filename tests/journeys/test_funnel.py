"""Funnels: known answers, a hand-written SQL reference, a brute-force reference, options."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opencx.errors import InvalidInput
from opencx.journeys import FunnelQuery, compare_funnels, run_funnel
from opencx.warehouse import Warehouse
from tests.journeys.conftest import T0, Row

Log = Callable[..., Warehouse]


def q(*steps: str, **options: object) -> FunnelQuery:
    return FunnelQuery(steps=[{"event": s} for s in steps], **options)  # type: ignore[arg-type]


def entered(result: object) -> list[int]:
    return [r.entered for r in result.overall()]  # type: ignore[attr-defined]


# -- known answers --------------------------------------------------------------------
KNOWN: list[Row] = [
    # p1 converts through all three steps, events written out of order.
    ("p1", 5, "C", "web"),
    ("p1", 0, "A", "web"),
    ("p1", 2, "B", "web"),
    # p2: B at the very same instant as A, logged after it: the tie keeps log order.
    ("p2", 1, "A", "app"),
    ("p2", 1, "B", "app"),
    # p3: B before A only, then C: stops at step 1.
    ("p3", 0, "B", "web"),
    ("p3", 1, "A", "web"),
    ("p3", 2, "C", "web"),
    # p4: B after the 7-day window of the first A; a second A later would catch it.
    ("p4", 0, "A", "web"),
    ("p4", 24 * 8, "A", "web"),
    ("p4", 24 * 8 + 1, "B", "web"),
    # p5: repeated steps; converts once.
    ("p5", 0, "A", "web"),
    ("p5", 1, "A", "web"),
    ("p5", 2, "B", "web"),
    ("p5", 3, "B", "web"),
    ("p5", 4, "C", "web"),
]


def test_known_answers_with_the_first_step_one_rule(log: Log) -> None:
    result = run_funnel(q("A", "B", "C"), log(KNOWN))
    assert entered(result) == [5, 3, 2]
    rows = result.overall()
    assert rows[1].dropped == 2 and rows[1].conversion_from_previous == pytest.approx(3 / 5)
    assert rows[2].conversion_from_start == pytest.approx(2 / 5)
    # times from the previous step: p1 2 h, p2 0 h, p5 2 h; then p1 3 h, p5 2 h
    assert rows[1].median_s == pytest.approx(2 * 3600)
    assert rows[2].median_s == pytest.approx(2.5 * 3600)
    assert rows[0].median_s is None


def test_the_any_step_one_rule_counts_later_attempts(log: Log) -> None:
    result = run_funnel(q("A", "B", "C", start="any"), log(KNOWN))
    assert entered(result) == [5, 4, 2]  # p4's second attempt reaches B


def test_a_step_named_twice_needs_two_events(log: Log) -> None:
    wh = log([("p1", 0, "A", "web"), ("p2", 0, "A", "web"), ("p2", 1, "A", "web")])
    assert entered(run_funnel(q("A", "A"), wh)) == [2, 1]


def test_the_window_is_measured_from_step_one(log: Log) -> None:
    wh = log([("p1", 0, "A", "web"), ("p1", 47, "B", "web"), ("p1", 49, "C", "web")])
    assert entered(run_funnel(q("A", "B", "C", window="48h"), wh)) == [1, 1, 0]
    assert entered(run_funnel(q("A", "B", "C", window="2d"), wh)) == [1, 1, 0]
    assert entered(run_funnel(q("A", "B", "C", window="3d"), wh)) == [1, 1, 1]


def test_an_exclusion_step_disqualifies_the_attempt(log: Log) -> None:
    wh = log(
        [
            ("p1", 0, "A", "web"),
            ("p1", 1, "X", "web"),
            ("p1", 2, "B", "web"),
            ("p2", 0, "A", "web"),
            ("p2", 2, "B", "web"),
            ("p2", 3, "X", "web"),  # after the last step: does not count
        ]
    )
    query = q("A", "B", exclude={"event": "X"})
    assert entered(run_funnel(query, wh)) == [1, 1]


def test_step_one_must_fall_in_the_period_later_steps_may_not(log: Log) -> None:
    wh = log([("p1", 0, "A", "web"), ("p1", 30, "B", "web"), ("p2", 40, "A", "web")])
    query = q("A", "B", start_at=T0, end_at=T0 + timedelta(hours=24))
    assert entered(run_funnel(query, wh)) == [1, 1]


def test_steps_filter_by_channel_and_property(log: Log) -> None:
    wh = log(
        [
            ("p1", 0, "Reset", "app", {"method": "sms"}),
            ("p1", 1, "Done", "app"),
            ("p2", 0, "Reset", "web", {"method": "sms"}),
            ("p2", 1, "Done", "web"),
            ("p3", 0, "Reset", "app", {"method": "email"}),
            ("p3", 1, "Done", "app"),
        ]
    )
    query = FunnelQuery(
        steps=[{"event": "Reset", "channel": "app", "where": {"method": "sms"}}, {"event": "Done"}]
    )
    assert entered(run_funnel(query, wh)) == [1, 1]


def test_breakdowns_by_channel_property_and_trait(log: Log) -> None:
    rows: list[Row] = [
        ("p1", 0, "A", "web", {"plan": "pro"}),
        ("p1", 1, "B", "web"),
        ("p2", 0, "A", "app", {"plan": "pro"}),
        ("p3", 0, "A", "app", {"plan": "basic"}),
        ("p3", 1, "B", "app"),
    ]
    wh = log(rows, traits={"p1": {"tier": "gold"}, "p2": {"tier": "gold"}})
    by_channel = run_funnel(q("A", "B", by="channel"), wh)
    assert by_channel.groups() == ["app", "web"]
    table = {(r.group, r.step): r.entered for r in by_channel.rows}
    assert table[("app", 1)] == 2 and table[("app", 2)] == 1 and table[("web", 2)] == 1
    by_prop = run_funnel(q("A", "B", by="property:plan"), wh)
    assert {(r.group, r.step): r.entered for r in by_prop.rows if r.group}[("pro", 2)] == 1
    by_trait = run_funnel(q("A", "B", by="trait:tier"), wh)
    traits = {(r.group, r.step): r.entered for r in by_trait.rows if r.group}
    assert traits[("gold", 1)] == 2 and traits[("(none)", 2)] == 1


def test_two_periods_compared_with_a_p_value(log: Log) -> None:
    rows: list[Row] = []
    for i in range(200):
        day = 0 if i < 100 else 24 * 10
        rows.append((f"p{i}", day, "A", "web"))
        if (i < 100 and i % 2) or (i >= 100 and i % 10 == 0):
            rows.append((f"p{i}", day + 1, "B", "web"))
    wh = log(rows)
    first = (T0, T0 + timedelta(days=5))
    second = (T0 + timedelta(days=9), T0 + timedelta(days=15))
    comparison = compare_funnels(q("A", "B"), wh, [first, second])
    assert comparison.conversion_before == pytest.approx(0.5)
    assert comparison.conversion_after == pytest.approx(0.1)
    assert comparison.p_value is not None and comparison.p_value < 1e-6


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"steps": [{"event": "A"}]}, "2 to 12 steps"),
        ({"steps": [{"event": "A"}, {"event": "B"}], "window": "7 days"}, "unit"),
        ({"steps": [{"event": "A"}, {"event": "B"}], "by": "colour"}, "by must be"),
        ({"steps": [{"event": "A"}, {"event": "B", "touchpoint": "b"}]}, "exactly one of"),
        ({"steps": [{"event": "A", "where": {"a b": "1"}}, {"event": "B"}]}, "'a b'"),
    ],
)
def test_bad_queries_say_what_is_wrong(options: dict[str, object], message: str) -> None:
    with pytest.raises((InvalidInput, ValueError), match=message):
        FunnelQuery(**options)  # type: ignore[arg-type]


# -- an independent reference: hand-written DuckDB SQL ---------------------------------
def _after(a: str, b: str) -> str:
    return f"({a}.ts > {b}.ts OR ({a}.ts = {b}.ts AND {a}.seq > {b}.seq))"


def hand_written_first(steps: list[str], hours: int) -> str:
    parts = [
        f"s0 AS (SELECT person_id, ts, seq, ts AS t0 FROM e WHERE event = '{steps[0]}' "
        "QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY ts, seq) = 1)"
    ]
    for k in range(1, len(steps)):
        parts.append(
            f"s{k} AS (SELECT e.person_id, e.ts, e.seq, p.t0 FROM e JOIN s{k - 1} p "
            f"USING (person_id) WHERE e.event = '{steps[k]}' AND {_after('e', 'p')} "
            f"AND e.ts <= p.t0 + INTERVAL {hours} HOUR "
            "QUALIFY row_number() OVER (PARTITION BY e.person_id ORDER BY e.ts, e.seq) = 1)"
        )
    counts = ", ".join(f"(SELECT count(*) FROM s{k})" for k in range(len(steps)))
    return (
        "WITH e AS (SELECT person_id, timestamp AS ts, seq, event FROM analytics_events), "
        + ", ".join(parts)
        + f" SELECT {counts}"
    )


def hand_written_any(steps: list[str], hours: int) -> str:
    parts = [
        f"s0 AS (SELECT person_id, seq AS start, ts, seq, ts AS t0 FROM e "
        f"WHERE event = '{steps[0]}')"
    ]
    for k in range(1, len(steps)):
        parts.append(
            f"s{k} AS (SELECT e.person_id, p.start, e.ts, e.seq, p.t0 FROM e JOIN s{k - 1} p "
            f"USING (person_id) WHERE e.event = '{steps[k]}' AND {_after('e', 'p')} "
            f"AND e.ts <= p.t0 + INTERVAL {hours} HOUR "
            "QUALIFY row_number() OVER (PARTITION BY e.person_id, p.start "
            "ORDER BY e.ts, e.seq) = 1)"
        )
    counts = ", ".join(f"(SELECT count(DISTINCT person_id) FROM s{k})" for k in range(len(steps)))
    return (
        "WITH e AS (SELECT person_id, timestamp AS ts, seq, event FROM analytics_events), "
        + ", ".join(parts)
        + f" SELECT {counts}"
    )


def random_rows(seed: int, people: int = 300) -> list[Row]:
    rng = random.Random(seed)
    rows: list[Row] = []
    for p in range(people):
        for _ in range(rng.randint(2, 20)):
            # whole hours make equal timestamps common: ties are the hard part
            rows.append((f"p{p}", rng.randint(0, 150), rng.choice("ABCDX"), "web"))
    rng.shuffle(rows)  # log order is not time order
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("start", ["first", "any"])
def test_counts_equal_hand_written_sql(log: Log, seed: int, start: str) -> None:
    wh = log(random_rows(seed))
    steps, hours = ["A", "B", "C", "D"], 72
    sql = (hand_written_first if start == "first" else hand_written_any)(steps, hours)
    expected = list(wh.backend.con.execute(sql).fetchall()[0])
    result = run_funnel(q(*steps, window=f"{hours}h", start=start), wh)
    assert entered(result) == expected
    assert expected[0] > 100 and expected[-1] > 0  # the data exercises every step


# -- and a brute-force reference on random logs ----------------------------------------
def brute_force(rows: list[Row], steps: list[str], hours: int, start: str) -> list[int]:
    by_person: dict[str, list[tuple[float, int, str]]] = {}
    for seq, r in enumerate(rows, 1):
        by_person.setdefault(r[0], []).append((r[1], seq, r[2]))
    reached = [0] * len(steps)
    for events in by_person.values():
        events.sort()
        starts = [i for i, e in enumerate(events) if e[2] == steps[0]]
        if start == "first":
            starts = starts[:1]
        best = 0
        for s in starts:
            level, deadline, i = 1, events[s][0] + hours, s
            for step in steps[1:]:
                nxt = next((j for j in range(i + 1, len(events)) if events[j][2] == step), None)
                if nxt is None or events[nxt][0] > deadline:
                    break
                level, i = level + 1, nxt
            best = max(best, level)
        for k in range(best):
            reached[k] += 1
    return reached


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["p1", "p2", "p3"]),
            st.integers(0, 30),
            st.sampled_from(["A", "B", "C"]),
            st.just("web"),
        ),
        max_size=30,
    ),
    start=st.sampled_from(["first", "any"]),
)
def test_counts_equal_brute_force(log: Log, rows: list[Row], start: str) -> None:
    expected = brute_force(rows, ["A", "B", "C"], 10, start)
    wh = log(rows)
    assert entered(run_funnel(q("A", "B", "C", window="10h", start=start), wh)) == expected


def test_any_rule_with_exclusion_keeps_every_other_attempt(log: Log) -> None:
    wh = log(
        [
            ("p1", 0, "A", "web"),
            ("p1", 1, "X", "web"),  # spoils the first attempt only
            ("p1", 2, "A", "web"),
            ("p1", 3, "B", "web"),
            ("p1", 4, "C", "web"),
            ("p2", 0, "A", "web"),  # never goes on, never excluded
        ]
    )
    query = q("A", "B", "C", start="any", exclude={"event": "X"})
    result = run_funnel(query, wh)
    assert entered(result) == [2, 1, 1]
    assert result.overall()[1].median_s == 3600
    assert entered(run_funnel(q("A", "B", "C", exclude={"event": "X"}), wh)) == [1, 0, 0]
