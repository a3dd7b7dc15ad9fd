"""Contact-policy decisions per second for 1 M profiles with realistic histories.

A store is filled in SQL (from hashes of the row number, so every run gets the same
data) with 30 days of what a telecom's customers look like to the policy: consent given
at sign-up (most to marketing email, fewer to SMS, a few unsubscribed since), bills,
newsletters and promotions from the ESP, SMS alerts, opens and clicks, survey
invitations and NPS answers, a browser time zone, decisions already sent, open cases
and segment members. `person_states` loads everyone in bulk (timed), then `decide` runs
one proposal per person — a marketing email, a service SMS or a survey, at an hour of
the day that sometimes falls in quiet hours (timed: decisions per second). To keep the
run under a minute, states are loaded and decided for every 10th profile (100,000), read
from the store of 1 M.

Baseline, in the same run over the same states: a trivial check per person (count the
contacts of the last 7 days against a cap of 3), the floor any policy pays to loop.
Also: the gate's point read (`person_state`) p50 and p95 over 40 people (it scans the
events' profile_id column: no index on it).
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from opencx.orchestrate.policy import Proposal, decide, default_policy
from opencx.orchestrate.state import PersonState, person_state, person_states
from opencx.store import Store

PROFILES = 1_000_000
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
DAYS = 30
ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
    "Europe/London",
)
POINT_READS = 40
SAMPLE_EVERY = 10  # states loaded and decided: every 10th profile (100,000 of 1 M)
_COLUMNS = (
    "seq, message_id, type, event, channel, source, user_id, profile_id, identifiers, "
    "timestamp, received_at, properties, context"
)


def _zone(expr: str) -> str:
    cases = " ".join(f"WHEN {i} THEN '{z}'" for i, z in enumerate(ZONES))
    return f"CASE {expr} {cases} END"


def generate(con: duckdb.DuckDBPyConnection, profiles: int = PROFILES) -> int:
    """About seven events per profile over 30 days, and the tables the policy reads."""
    now = f"TIMESTAMPTZ '{NOW.isoformat()}'"
    con.execute(f"""
        CREATE TEMP TABLE slots AS
        SELECT i, j, 'p' || lpad(i::VARCHAR, 7, '0') AS pid, hash(i, j, 'r') % 1000 AS r,
               {now} - to_seconds((hash(i, j, 't') % ({DAYS} * 86400))::BIGINT) AS ts
        FROM range({profiles}) a(i), range(11) b(j)
    """)  # fmt: skip
    con.execute(f"""
        INSERT INTO events ({_COLUMNS})
        WITH picked AS (
            SELECT * FROM slots WHERE CASE j
                WHEN 0 THEN TRUE              -- marketing email consent at sign-up
                WHEN 1 THEN r < 600           -- asked about SMS marketing
                WHEN 2 THEN r < 750           -- a session with a browser time zone
                WHEN 3 THEN TRUE              -- the bill (transactional)
                WHEN 4 THEN r < 550           -- the newsletter
                WHEN 5 THEN r < 400           -- a promotion
                WHEN 6 THEN r < 300           -- an SMS data alert
                WHEN 7 THEN r < 450           -- an email opened
                WHEN 8 THEN r < 120           -- a survey invitation
                WHEN 9 THEN r < 60            -- an NPS answer
                ELSE r < 25 END               -- an unsubscribe
        )
        SELECT i * 11 + j + 1, 'b-' || i || '-' || j, 'track',
               CASE j WHEN 0 THEN 'Consent Updated' WHEN 1 THEN 'Consent Updated'
                      WHEN 2 THEN 'Page Viewed' WHEN 7 THEN 'Email Opened'
                      WHEN 6 THEN 'SMS Sent' WHEN 8 THEN 'Survey Invited'
                      WHEN 9 THEN 'Survey Responded' WHEN 10 THEN 'Email Unsubscribed'
                      ELSE 'Email Sent' END,
               CASE j WHEN 2 THEN 'web' WHEN 6 THEN 'sms' ELSE 'email' END, 'bench',
               'u' || i, pid, ['user_id:u' || i],
               CASE WHEN j < 2 THEN ts - INTERVAL 400 DAY ELSE ts END,
               CASE WHEN j < 2 THEN ts - INTERVAL 400 DAY ELSE ts END,
               CASE j
                 WHEN 0 THEN '{{"channel":"email","purpose":"marketing","granted":'
                             || (r < 800) || '}}'
                 WHEN 1 THEN '{{"channel":"sms","purpose":"marketing","granted":'
                             || (r < 250) || '}}'
                 WHEN 3 THEN '{{"email_type":"transactional","campaign_id":"bill-ready"}}'
                 WHEN 4 THEN '{{"email_type":"newsletter","campaign_id":"newsletter"}}'
                 WHEN 5 THEN '{{"email_type":"promotion","campaign_id":"promo-' || (r % 7)
                             || '"}}'
                 WHEN 6 THEN '{{"message_type":"data_usage_alert"}}'
                 WHEN 8 THEN '{{"survey_id":"nps-relationship"}}'
                 WHEN 9 THEN '{{"survey_type":"nps","score":' || (r % 11) || '}}'
                 ELSE '{{}}' END,
               CASE WHEN j = 2 THEN '{{"timezone":"' || {_zone("hash(i) % 6")} || '"}}' END
        FROM picked
    """)  # fmt: skip
    # Decisions already sent this week (reservations), open cases, segment members.
    con.execute(f"""
        INSERT INTO decisions (id, key, decided_at, person_id, action, channel, purpose,
                               priority, outcome, reasons)
        SELECT 'dec-' || i, 'bench:' || i,
               {now} - to_seconds((hash(i, 'dec') % (7 * 86400))::BIGINT), pid, 'win-back',
               CASE WHEN r % 2 = 0 THEN 'email' ELSE 'sms' END,
               CASE WHEN r % 2 = 0 THEN 'marketing' ELSE 'service' END, 0, 'send', '[]'
        FROM slots WHERE j = 0 AND r % 5 = 0
    """)  # fmt: skip
    con.execute(f"""
        INSERT INTO cases (id, person_id, source_message_id, rule, reason, queue, priority,
                           status, opened_at, due_at)
        SELECT 'case-' || i, pid, 'b-' || i || '-9', 'detractor', 'nps', 'care', 'high',
               'open', {now} - INTERVAL 2 DAY, {now} + INTERVAL 1 DAY
        FROM slots WHERE j = 9 AND r < 20
    """)  # fmt: skip
    con.execute(f"""
        INSERT INTO segment_members
        SELECT 'vip', pid, {now} FROM slots WHERE j = 0 AND r % 10 < 3
    """)  # fmt: skip
    con.execute("DROP TABLE slots")
    row = con.execute("SELECT count(*) FROM events").fetchall()
    return int(row[0][0])


def proposals(people: list[str]) -> list[Proposal]:
    """One proposal per person: mostly marketing email, some service SMS and surveys,
    from 10:00 to 23:00 New York time (so quiet hours bite for some)."""
    out = []
    kinds = (
        ("marketing", "email"),
        ("marketing", "email"),
        ("service", "sms"),
        ("survey", "email"),
    )
    for n, person in enumerate(people):
        purpose, channel = kinds[n % 4]
        at = NOW + timedelta(hours=(n * 7) % 14)
        out.append(Proposal(person, "offer", channel, purpose, at, f"bench:{n}"))  # type: ignore[arg-type]
    return out


def baseline(states: dict[str, PersonState], props: list[Proposal]) -> tuple[float, int]:
    """The trivial check: contacts of the last 7 days under a cap of 3."""
    started = time.perf_counter()
    week = NOW - timedelta(days=7)
    passed = 0
    for p in props:
        passed += sum(c.at > week for c in states[p.person_id].contacts) < 3
    return time.perf_counter() - started, passed


def run(profiles: int = PROFILES) -> dict[str, Any]:
    policy = default_policy()
    with Store() as store:
        started = time.perf_counter()
        events = generate(store.con, profiles)
        generate_s = time.perf_counter() - started

        everyone = [
            r[0] for r in store.con.execute("SELECT DISTINCT profile_id FROM events").fetchall()
        ]
        sample = sorted(everyone)[::SAMPLE_EVERY]
        started = time.perf_counter()
        states = person_states(store.con, NOW, sample)
        load_s = time.perf_counter() - started
        people = sample
        props = proposals(people)

        started = time.perf_counter()
        outcomes: dict[str, int] = {}
        rules: dict[str, int] = {}
        for p in props:
            d = decide(p, states[p.person_id], policy, NOW)
            outcomes[d.outcome] = outcomes.get(d.outcome, 0) + 1
            if d.rule:
                rules[d.rule] = rules.get(d.rule, 0) + 1
        decide_s = time.perf_counter() - started
        baseline_s, baseline_passed = baseline(states, props)

        reads = []
        cur = store.cursor()
        for person in people[:: max(1, len(people) // POINT_READS)][:POINT_READS]:
            started = time.perf_counter()
            point = person_state(cur, person, NOW)
            reads.append(time.perf_counter() - started)
            if point != states[person]:
                raise SystemExit(f"bulk and point reads disagree for {person}")
    reads.sort()
    return {
        "profiles": len(everyone),
        "states": len(states),
        "states_s": len(states) / load_s,
        "events": events,
        "generate_s": generate_s,
        "load_s": load_s,
        "decide_s": decide_s,
        "decisions_s": len(props) / decide_s,
        "baseline_s": baseline_s,
        "baseline_s_per": len(props) / baseline_s,
        "baseline_passed": baseline_passed,
        "outcomes": outcomes,
        "rules": dict(sorted(rules.items(), key=lambda kv: -kv[1])),
        "point_p50_ms": statistics.median(reads) * 1000,
        "point_p95_ms": reads[int(0.95 * (len(reads) - 1))] * 1000,
    }


if __name__ == "__main__":
    import sys

    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else PROFILES)
    for name, value in result.items():
        print(f"{name:>16}: {value:,.2f}" if isinstance(value, float) else f"{name:>16}: {value}")
