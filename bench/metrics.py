"""KPIs and segments at scale, each against hand-written DuckDB SQL in the same run.

1. 1,000,000 survey answers (NPS, CSAT, CES) from 300,000 people over 90 days: NPS by
   channel, CSAT by segment (five segments, a person in up to two) and the alert scan
   (every KPI, overall and per channel and touchpoint, last 7 days against 8 weeks).
   Baseline: one plain SQL query of NPS by channel.
2. A segment refresh over 1,000,000 profiles with 4,000,000 events over 180 days: the
   feature table (the columns the rules read) and a rule, as members (Arrow), then the
   sizes of three saved segments in one pass. Baseline: hand-written SQL for that rule.

The logs are generated in SQL from hashes of the row number, so every run gets the same
data; the bench stops if the library and the baseline disagree.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import duckdb

from opencx.metrics import alerts, kpi
from opencx.segments import segment_expression, segment_sizes_now
from opencx.store import Store
from opencx.warehouse import Warehouse, embedded

ANSWERS = 1_000_000
RESPONDENTS = 300_000
PROFILES = 1_000_000
EVENTS_PER_PROFILE = 4
NOW = datetime(2026, 4, 1, tzinfo=UTC)
START = "TIMESTAMPTZ '2026-01-01 00:00:00+00'"
DAYS = 90  # of survey answers
HISTORY_DAYS = 180  # of the profiles' events, so some people have lapsed
RUNS = 3  # timed runs after one warm-up; the median is reported
CHANNELS = ("email", "sms", "app", "web", "phone", "chat")
RULE = 'purchases_90d >= 2 and last_nps <= 6 and trait.city = "Leeds"'
SAVED = {
    "unhappy-regulars": RULE,
    "lapsed-vips": 'lifecycle = "lapsed" and trait.plan in ("pro", "business")',
    "champions": "rfm_recency >= 4 and rfm_frequency >= 4 and not responded",
}

T = TypeVar("T")


def _channel(expr: str) -> str:
    cases = " ".join(f"WHEN {i} THEN '{c}'" for i, c in enumerate(CHANNELS))
    return f"CASE {expr} {cases} END"


def generate_answers(con: duckdb.DuckDBPyConnection) -> None:
    """1 M `Survey Responded` events: half NPS, 30% CSAT, 20% CES; scores skew high, and
    touchpoint tp3 got worse in the last week (so the alert scan has something to find)."""
    con.execute(f"""
        INSERT INTO events
        WITH r AS (
            SELECT i, hash(i, 'p') % {RESPONDENTS} AS p, hash(i, 'k') % 10 AS k,
                   hash(i, 's') % 1000 AS s, hash(i, 'c') % {len(CHANNELS)} AS c,
                   hash(i, 't') % 20 AS t, hash(i, 'd') % {DAYS * 86_400} AS secs
            FROM range({ANSWERS}) x(i)
        ), typed AS (
            SELECT *, CASE WHEN k < 5 THEN 'nps' WHEN k < 8 THEN 'csat' ELSE 'ces' END AS kind,
                   {START} + to_seconds(secs::BIGINT) AS ts,
                   t = 3 AND secs > {(DAYS - 7) * 86_400} AS worse
            FROM r
        ), scored AS (
            SELECT *, CASE kind
                WHEN 'nps' THEN least(10, (s * 11 // 1000) + CASE WHEN worse THEN 0 ELSE 2 END)
                WHEN 'csat' THEN least(5, 1 + (s * 5 // 1000) + CASE WHEN worse THEN 0 ELSE 1 END)
                ELSE least(7, 1 + (s * 7 // 1000) + CASE WHEN worse THEN 0 ELSE 1 END)
            END AS score FROM typed
        )
        SELECT i + 1, 'm' || i, 'track', 'Survey Responded', {_channel("c")}, 'bench',
               NULL, 'u' || p, NULL, NULL, 'u' || p, []::VARCHAR[], ts, ts, NULL, ts,
               '{{"survey_type":"' || kind || '","score":' || score || ',"touchpoint":"tp'
                   || t || '"}}',
               NULL, NULL
        FROM scored
    """)  # fmt: skip
    # Five segments computed elsewhere; a person is in one or two of them.
    con.execute(f"""
        CREATE TABLE bench_segments AS
        SELECT 'u' || i AS person_id, 'segment-' || (i % 5) AS segment
        FROM range({RESPONDENTS}) x(i)
        UNION ALL
        SELECT 'u' || i, 'segment-' || ((i + 1) % 5)
        FROM range({RESPONDENTS}) x(i) WHERE i % 3 = 0
    """)  # fmt: skip
    con.execute("CHECKPOINT")


def generate_profiles(con: duckdb.DuckDBPyConnection) -> None:
    """1 M profiles with traits, and 4 M events: orders, page views, survey answers."""
    con.execute(f"""
        INSERT INTO profiles (profile_id, identifiers, traits, event_count, refreshed_at)
        SELECT 'c' || i, []::VARCHAR[],
               '{{"city":"' || CASE hash(i, 'city') % 4 WHEN 0 THEN 'Leeds' WHEN 1 THEN 'York'
                   WHEN 2 THEN 'Hull' ELSE 'Bath' END || '","plan":"'
                   || CASE hash(i, 'plan') % 3 WHEN 0 THEN 'pro' WHEN 1 THEN 'basic'
                   ELSE 'business' END || '"}}',
               {EVENTS_PER_PROFILE}, {START}
        FROM range({PROFILES}) x(i)
    """)  # fmt: skip
    con.execute(f"""
        INSERT INTO events
        WITH r AS (
            SELECT i, hash(i, 'p') % {PROFILES} AS p, hash(i, 'e') % 10 AS e,
                   hash(i, 's') % 11 AS s, hash(i, 'v') % 200 AS v,
                   hash(i, 'c') % {len(CHANNELS)} AS c,
                   TIMESTAMPTZ '{NOW.isoformat()}'
                       - to_seconds((1 + hash(i, 'd') % {HISTORY_DAYS * 86_400})::BIGINT) AS ts
            FROM range({PROFILES * EVENTS_PER_PROFILE}) x(i)
        )
        SELECT i + 1, 'm' || i, 'track',
               CASE WHEN e < 3 THEN 'Order Completed' WHEN e < 4 THEN 'Survey Responded'
                    ELSE 'Page Viewed' END,
               {_channel("c")}, 'bench', NULL, 'c' || p, NULL, NULL, 'c' || p, []::VARCHAR[],
               ts, ts, NULL, ts,
               CASE WHEN e < 3 THEN '{{"revenue":' || (v + 5) || '}}'
                    WHEN e < 4 THEN '{{"survey_type":"nps","score":' || s || '}}'
                    ELSE '{{}}' END,
               NULL, NULL
        FROM r
    """)  # fmt: skip
    con.execute("CHECKPOINT")


BASELINE_NPS = """
    SELECT channel, count(*) AS n,
           100 * (avg((score >= 9)::INT) - avg((score <= 6)::INT)) AS nps
    FROM (
        SELECT channel, CAST(json_extract_string(properties, '$.score') AS DOUBLE) AS score
        FROM analytics_events
        WHERE person_id IS NOT NULL AND event = 'Survey Responded'
          AND lower(json_extract_string(properties, '$.survey_type')) = 'nps'
    ) GROUP BY channel
"""

BASELINE_RULE = f"""
    WITH e AS (
        SELECT * FROM analytics_events
        WHERE person_id IS NOT NULL AND timestamp < TIMESTAMPTZ '{NOW.isoformat()}'
    ), buys AS (
        SELECT person_id, count(*) AS purchases_90d FROM e
        WHERE event = 'Order Completed'
          AND timestamp >= TIMESTAMPTZ '{NOW.isoformat()}' - INTERVAL 90 DAY
        GROUP BY person_id
    ), nps AS (
        SELECT person_id, CAST(json_extract_string(properties, '$.score') AS DOUBLE) AS score
        FROM e WHERE event = 'Survey Responded'
          AND lower(json_extract_string(properties, '$.survey_type')) = 'nps'
        QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY timestamp DESC,
                                   message_id DESC) = 1
    )
    SELECT b.person_id FROM buys b JOIN nps USING (person_id)
    JOIN analytics_profiles p ON p.person_id = b.person_id
    WHERE b.purchases_90d >= 2 AND nps.score <= 6
      AND json_extract_string(p.traits, '$.city') = 'Leeds'
"""


def timed(work: Callable[[], T], runs: int = RUNS) -> tuple[float, T]:
    """The median seconds of `runs` timed calls after a warm-up, and the last result."""
    result = work()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def bench_kpis(warehouse: Warehouse, con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    nps_s, by_channel = timed(
        lambda: kpi(warehouse, "nps", start_at=None, end_at=None, by="channel")
    )
    baseline_s, rows = timed(lambda: con.execute(BASELINE_NPS).fetchall())
    plain = {channel: (n, value) for channel, n, value in rows}
    for r in by_channel.groups:
        n, value = plain[r.group]
        if r.n != n or abs(r.value - value) > 1e-9:
            raise SystemExit(f"NPS for {r.group} differs: {r.n}, {r.value} vs {n}, {value}")
    segments = warehouse.backend.table("bench_segments")
    segment_s, by_segment = timed(
        lambda: kpi(warehouse, "csat", start_at=None, end_at=None, by="segment", segments=segments)
    )
    alert_s, found = timed(lambda: alerts(warehouse, now=NOW))
    return {
        "answers": by_channel.overall.n if by_channel.overall else 0,
        "nps_by_channel_s": nps_s,
        "csat_by_segment_s": segment_s,
        "segments": len(by_segment.groups),
        "alerts_s": alert_s,
        "alerts": len(found),
        "first_alert": found[0].message if found else "",
        "baseline_nps_sql_s": baseline_s,
    }


def bench_refresh(warehouse: Warehouse, con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    members_s, members = timed(lambda: segment_expression(warehouse, RULE, NOW).to_pyarrow())
    sizes_s, sizes = timed(lambda: segment_sizes_now(warehouse, SAVED, NOW))
    baseline_s, rows = timed(lambda: con.execute(BASELINE_RULE).fetchall())
    ours = sorted(members.column("person_id").to_pylist())
    if ours != sorted(r[0] for r in rows) or sizes["unhappy-regulars"] != len(ours):
        raise SystemExit(f"segment members differ: {len(ours)} vs {len(rows)}")
    return {
        "profiles": PROFILES,
        "events": PROFILES * EVENTS_PER_PROFILE,
        "members": len(ours),
        "members_s": members_s,
        "sizes_s": sizes_s,
        "sizes": sizes,
        "baseline_rule_sql_s": baseline_s,
    }


def run() -> dict[str, Any]:
    with Store() as store:
        started = time.perf_counter()
        generate_answers(store.con)
        generate_s = time.perf_counter() - started
        kpis = bench_kpis(embedded(store.con), store.con)
    with Store() as store:
        started = time.perf_counter()
        generate_profiles(store.con)
        generate_profiles_s = time.perf_counter() - started
        refresh = bench_refresh(embedded(store.con), store.con)
    return {
        "kpis": {**kpis, "generate_s": generate_s},
        "refresh": {**refresh, "generate_s": generate_profiles_s},
    }


if __name__ == "__main__":
    print(run())
