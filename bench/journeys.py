"""Journeys at scale: a 4-step funnel and transitions over 10 M events, against hand-written SQL.

Each side is timed against the fastest hand-written DuckDB SQL we know for the same
answer, in the same run. Both return the same table (people per step with median and
p90 seconds from the previous step; for transitions, counts and people per pair) and the
bench stops if any number differs.

The log is synthetic and generated in SQL (hash-based, so every run gets the same
events): 500 K customers with a few sessions each over 90 days; browsing, sign-ins,
e-mails, calls, chats and store visits around a shopping funnel that thins out step by
step. Log order is not time order and some events share a timestamp: the tie-break by
`seq` is part of what is measured.
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import duckdb

from opencx.journeys import (
    FunnelQuery,
    FunnelResult,
    FunnelStep,
    PathQuery,
    Touchpoint,
    TouchpointModel,
    Transition,
    model_from_counts,
    run_funnel,
    transitions,
)
from opencx.journeys.paths import END, START
from opencx.store import Store
from opencx.warehouse import embedded

EVENTS = 10_000_000
PEOPLE = 500_000
DAYS = 90
SESSIONS = 6  # per customer; an event falls in one of them
STEPS = ("Product Viewed", "Product Added", "Checkout Started", "Order Completed")
WINDOW_HOURS = 7 * 24
RULES: tuple[Literal["first", "any"], ...] = ("first", "any")
RUNS = 3  # timed runs of each side, after one warm-up

T = TypeVar("T")

# Per mille of all events, in CASE order; what is left over is the app's account screen.
_MIX: tuple[tuple[str, int], ...] = (
    ("Product Viewed", 160),
    ("Product Added", 60),
    ("Checkout Started", 30),
    ("Order Completed", 15),
    ("Home", 150),  # a web page view
    ("Products Searched", 100),
    ("Signed In", 100),
    ("Email Opened", 80),
    ("Password Reset Started", 40),
    ("Support Ticket Opened", 30),
    ("Call Started", 40),
    ("Chat Started", 40),
    ("Store Visited", 25),
    ("Survey Answered", 30),
)


def _generate_sql(events: int, people: int) -> str:
    """One INSERT building the whole log; every choice is a hash of the event number."""
    bounds, total = [], 0
    for name, share in _MIX:
        total += share
        bounds.append(f"WHEN e < {total} THEN '{name}'")
    # Funnel steps sit later in a session the deeper they are, so they mostly come in
    # order; 3% of events fall on the session's first second, which makes ties.
    offsets = " ".join(
        f"WHEN event = '{name}' THEN {300 * k} + o // 2" for k, name in enumerate(STEPS)
    )
    return f"""
        INSERT INTO events
        WITH r AS (
            SELECT i, hash(i, 'p') % {people} AS p, hash(i, 'e') % 1000 AS e,
                   hash(i, 'c') % 10 AS c, hash(i, 's') % {SESSIONS} AS s,
                   hash(i, 'o') % 1800 AS o
            FROM range({events}) t(i)
        ), named AS (
            SELECT i, p, s, o, c, CASE {" ".join(bounds)} ELSE 'Account' END AS event FROM r
        ), timed AS (
            SELECT *, TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(
                (hash(p, s) % {DAYS * 86_400})::BIGINT
                + CASE WHEN o < 54 THEN 0 {offsets} ELSE o END
            ) AS ts
            FROM named
        )
        SELECT
            i + 1, 'm' || i,
            CASE event WHEN 'Home' THEN 'page' WHEN 'Account' THEN 'screen' ELSE 'track' END,
            event,
            CASE
                WHEN event IN ('Email Opened', 'Survey Answered') THEN 'email'
                WHEN event = 'Call Started' THEN 'phone'
                WHEN event = 'Chat Started' THEN 'chat'
                WHEN event = 'Store Visited' THEN 'store'
                WHEN event = 'Home' THEN 'web'
                WHEN event = 'Account' OR c >= 6 THEN 'app'
                ELSE 'web'
            END,
            'bench', NULL, 'c' || p, NULL, NULL, 'c' || p, []::VARCHAR[],
            ts, ts, NULL, ts, '{{}}', NULL, NULL
        FROM timed
    """


def generate(con: duckdb.DuckDBPyConnection, events: int, people: int) -> None:
    """Fill the store's `events` table with the synthetic log."""
    con.execute(_generate_sql(events, people))
    con.execute("CHECKPOINT")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _after(a: str, b: str) -> str:
    return f"({a}.ts > {b}.ts OR ({a}.ts = {b}.ts AND {a}.seq > {b}.seq))"


def hand_written_funnel(steps: Sequence[str], hours: int, start: str) -> str:
    """The funnel as we would write it by hand: (step, entered, median_s, p90_s).

    Each step joins the previous step's table alone and keeps the earliest match per
    attempt; for start="any", only people who got past step 1 need their best attempt
    picked. Variants tried and found no faster: a window-numbered log (compare positions
    instead of (ts, seq)), min() over a (ts, seq) struct instead of row_number.
    """
    names = ", ".join(_literal(s) for s in steps)
    first = _literal(steps[0])
    step1 = f"SELECT person_id, seq AS seq0, ts AS t0, ts, seq FROM e WHERE event = {first}"
    if start == "first":
        keys = "e.person_id"
        step1 += " QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY ts, seq) = 1"
    else:
        keys = "e.person_id, p.seq0"
    parts = [f"f0 AS ({step1})"]
    for k in range(1, len(steps)):
        parts.append(
            f"f{k} AS (SELECT e.person_id, p.seq0, p.t0, e.ts, e.seq, p.ts AS t_prev "
            f"FROM e JOIN f{k - 1} p USING (person_id) WHERE e.event = {_literal(steps[k])} "
            f"AND {_after('e', 'p')} AND e.ts <= p.t0 + INTERVAL {hours} HOUR "
            f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY e.ts, e.seq) = 1)"
        )
    stats = []
    for k in range(len(steps)):
        table = f"f{k}"
        if start == "any" and k:
            table += " SEMI JOIN best USING (person_id, seq0)"
        gap = "epoch(ts) - epoch(t_prev)" if k else "NULL::DOUBLE"
        people = "count(DISTINCT person_id)" if start == "any" and not k else "count(*)"
        stats.append(
            f"SELECT {k + 1} AS step, {people} AS entered, quantile_cont({gap}, 0.5) AS "
            f"median_s, quantile_cont({gap}, 0.9) AS p90_s FROM {table}"
        )
    if start == "any":
        levels = " UNION ALL ".join(
            f"SELECT person_id, seq0, t0, {k} AS level FROM f{k}" for k in range(1, len(steps))
        )
        parts.append(
            f"best AS (SELECT person_id, seq0 FROM ({levels}) QUALIFY row_number() OVER "
            "(PARTITION BY person_id ORDER BY level DESC, t0, seq0) = 1)"
        )
    return (
        "WITH e AS (SELECT person_id, timestamp AS ts, seq, event FROM analytics_events "
        f"WHERE person_id IS NOT NULL AND event IN ({names})), "
        + ", ".join(parts)
        + " "
        + " UNION ALL ".join(stats)
        + " ORDER BY step"
    )


def _matches(tp: Touchpoint) -> str:
    cond = f"type = {_literal(tp.type)} AND event = {_literal(tp.event)}"
    return cond + (f" AND channel = {_literal(tp.channel)}" if tp.channel else "")


def hand_written_transitions(model: TouchpointModel) -> str:
    """(source, target, transitions, people), repeats collapsed, with entries and exits.

    Touchpoints travel as small integers (their place in the model) and get their names
    back once counted; one window gives both neighbours: a change of touchpoint is a
    transition, a first event an entry, a last one an exit. A person enters and exits
    once, so only transitions need counting per person for `people`.
    """
    code = " ".join(f"WHEN {_matches(tp)} THEN {i}" for i, tp in enumerate(model.touchpoints))
    names = [f"WHEN -1 THEN {_literal(START)}", f"WHEN -2 THEN {_literal(END)}"]
    names += [f"WHEN {i} THEN {_literal(tp.id)}" for i, tp in enumerate(model.touchpoints)]

    def name(column: str) -> str:
        return f"CASE {column} {' '.join(names)} END"

    return f"""
        WITH coded AS (
            SELECT person_id, timestamp AS ts, seq, CASE {code} END AS tp
            FROM analytics_events WHERE person_id IS NOT NULL
        ), steps AS (
            SELECT person_id, tp, lag(tp) OVER o AS prev, lead(tp) OVER o AS next
            FROM coded WHERE tp IS NOT NULL
            WINDOW o AS (PARTITION BY person_id ORDER BY ts, seq)
        ), counts AS (
            SELECT source, target, sum(n) AS transitions, count(*) AS people FROM (
                SELECT prev AS source, tp AS target, person_id, count(*) AS n
                FROM steps WHERE prev <> tp GROUP BY ALL
            ) GROUP BY source, target
            UNION ALL
            SELECT -1, tp, count(*), count(*) FROM steps WHERE prev IS NULL GROUP BY tp
            UNION ALL
            SELECT tp, -2, count(*), count(*) FROM steps WHERE next IS NULL GROUP BY tp
        )
        SELECT {name("source")} AS source, {name("target")} AS target,
               CAST(transitions AS BIGINT), people
        FROM counts ORDER BY transitions DESC, source, target
    """


def _timed(pair: dict[str, Callable[[], T]]) -> dict[str, tuple[float, list[float], T]]:
    """Median seconds of RUNS runs after one warm-up; the sides take turns, so a busy
    moment on the machine hurts both."""
    results: dict[str, T] = {}
    for name, fn in pair.items():
        results[name] = fn()
    runs: dict[str, list[float]] = {name: [] for name in pair}
    for _ in range(RUNS):
        for name, fn in pair.items():
            start = time.perf_counter()
            results[name] = fn()
            runs[name].append(time.perf_counter() - start)
    return {name: (statistics.median(runs[name]), runs[name], results[name]) for name in pair}


StepRow = tuple[int, int, float | None, float | None]
"""(step, people, median seconds from the previous step, p90 seconds)."""


def _funnel_table(result: FunnelResult) -> list[StepRow]:
    return [(r.step, r.entered, r.median_s, r.p90_s) for r in result.overall()]


def _sql_funnel_table(rows: list[tuple[Any, ...]]) -> list[StepRow]:
    # The same rounding as run_funnel (milliseconds are the log's resolution).
    def seconds(value: float | None) -> float | None:
        return None if value is None else round(float(value), 3)

    return [(int(s), int(n), seconds(med), seconds(p90)) for s, n, med, p90 in rows]


def _check(what: str, ours: object, theirs: object) -> None:
    if ours != theirs:
        raise RuntimeError(f"{what}: OpenCX and hand-written SQL differ:\n{ours}\n{theirs}")


def _model(con: duckdb.DuckDBPyConnection) -> TouchpointModel:
    """The default model of the log, from its (type, event, channel) triples, most
    frequent first, as `infer_touchpoints` builds it."""
    triples = con.execute(
        "SELECT type, event, channel FROM analytics_events "
        "WHERE person_id IS NOT NULL AND type IN ('track', 'page', 'screen') "
        "AND event IS NOT NULL GROUP BY ALL ORDER BY count(*) DESC, type, event, channel"
    ).fetchall()
    return model_from_counts(triples)


def _compare_funnels(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    warehouse = embedded(con)
    out: dict[str, Any] = {}
    for rule in RULES:
        query = FunnelQuery(
            steps=tuple(FunnelStep(event=s) for s in STEPS),
            window=timedelta(hours=WINDOW_HOURS),
            start=rule,
        )
        sql = hand_written_funnel(STEPS, WINDOW_HOURS, rule)
        timed = _timed(
            {
                "opencx": lambda q=query: _funnel_table(run_funnel(q, warehouse)),
                "sql": lambda s=sql: _sql_funnel_table(con.execute(s).fetchall()),
            }
        )
        ours, theirs = timed["opencx"][2], timed["sql"][2]
        _check(f"funnel, start={rule}", ours, theirs)
        out[f"funnel_{rule}"] = {
            **_summary(timed),
            "entered": [row[1] for row in ours],
        }
    return out


def _compare_transitions(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    warehouse = embedded(con)
    model = _model(con)
    sql = hand_written_transitions(model)

    def ours() -> list[tuple[Any, ...]]:
        flows: list[Transition] = transitions(PathQuery(), warehouse, model)
        return [(t.source, t.target, t.transitions, t.people) for t in flows]

    timed = _timed({"opencx": ours, "sql": lambda: con.execute(sql).fetchall()})
    _check("transitions", timed["opencx"][2], timed["sql"][2])
    return {
        **_summary(timed),
        "pairs": len(timed["sql"][2]),
        "touchpoints": len(model.touchpoints),
    }


def _summary(timed: dict[str, tuple[float, list[float], Any]]) -> dict[str, Any]:
    return {
        "opencx_s": timed["opencx"][0],
        "opencx_runs": timed["opencx"][1],
        "sql_s": timed["sql"][0],
        "sql_runs": timed["sql"][1],
        "ratio": timed["opencx"][0] / timed["sql"][0],
    }


def measure(events: int = EVENTS, people: int = PEOPLE) -> dict[str, Any]:
    """Generate the log, time both funnels and the transitions, check the answers agree."""
    out: dict[str, Any] = {"events": events, "people": people}
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "journeys.duckdb") as store:
        # DuckDB draws a progress bar on long queries when it thinks it has a terminal.
        store.con.execute("SET enable_progress_bar = false")
        start = time.perf_counter()
        generate(store.con, events, people)
        out["generate_s"] = time.perf_counter() - start
        out.update(_compare_funnels(store.con))
        out["transitions"] = _compare_transitions(store.con)
    # Linux reports kilobytes; DuckDB works inside this process, so this counts it too.
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run(events: int = EVENTS, people: int = PEOPLE) -> dict[str, Any]:
    """`measure` in a fresh process, so that the peak RSS is this benchmark's alone."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(measure, events, people).result()


if __name__ == "__main__":
    print(run())
