"""Next-best-action latency on the sample brand: p50 and p95 over a few hundred customers;
and the contact policy's dry run over the brand's last 30 days.

Each call is what the API serves (`opencx.orchestrate.engine.recommend`): the person's
signals, the brand's catalogue (saved by the demo), ranked, with the outbound actions
checked against the saved contact policy. Baseline in the same run: `get_profile` for the
same people (the customer-360 card). The dry run replays every contact of the period
under the policy in force (target: under 60 s).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opencx.config import load_settings
from opencx.demo import load_demo
from opencx.orchestrate.engine import recommend
from opencx.orchestrate.policy import load_policy
from opencx.orchestrate.simulate import simulate
from opencx.profiles import get_profile
from opencx.store import Store

CHANNELS = ("phone", "app", "web", "sms")


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def run(customers: int = 5000, people: int = 300) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "brand.duckdb"
        settings = load_settings(db=db, profiles_refresh_s=0)
        started = time.perf_counter()
        with Store(db) as store:
            report = load_demo(store, settings, customers=customers, seed=7)
        load_s = time.perf_counter() - started
        # Measured on the database file opened afresh, as the server that serves it would.
        with Store(db) as store:
            con = store.con
            # Half busy multi-channel customers, half who failed a reset in the app lately.
            ids = [
                pid
                for (pid,) in con.execute(
                    "SELECT profile_id FROM profiles WHERE len(channels) >= 3 "
                    "ORDER BY hash(profile_id) LIMIT ?",
                    [people // 2],
                ).fetchall()
            ]
            ids += [
                pid
                for (pid,) in con.execute(
                    "SELECT DISTINCT person_id FROM analytics_events "
                    "WHERE event = 'Password Reset Failed' AND channel = 'app' "
                    "AND timestamp > now() - INTERVAL 7 DAY ORDER BY person_id LIMIT ?",
                    [people - len(ids)],
                ).fetchall()
                if pid not in ids
            ]
            now = datetime.now(UTC)
            for pid in ids[:10]:  # warm the catalogue cache and DuckDB's buffers
                recommend(con, pid, channel="phone", now=now)
                get_profile(con, pid)
            latencies: list[float] = []
            baseline: list[float] = []
            firsts: Counter[str] = Counter()
            blocked = 0
            for index, pid in enumerate(ids):
                channel = CHANNELS[index % len(CHANNELS)]
                t = time.perf_counter()
                recs = recommend(con, pid, channel=channel, now=now)
                latencies.append(time.perf_counter() - t)
                t = time.perf_counter()
                get_profile(con, pid)
                baseline.append(time.perf_counter() - t)
                if recs:
                    firsts[f"{recs[0].action}@{channel}"] += 1
                blocked += sum(not r.allowed for r in recs)
            dry_run = simulate(con, load_policy(con), days=30)
    return {
        "events": report.events,
        "load_s": load_s,
        "people": len(latencies),
        "p50_ms": _p(latencies, 50) * 1000,
        "p95_ms": _p(latencies, 95) * 1000,
        "baseline_p50_ms": _p(baseline, 50) * 1000,
        "baseline_p95_ms": _p(baseline, 95) * 1000,
        "blocked": blocked,
        "top_firsts": firsts.most_common(4),
        "simulation_s": dry_run.seconds,
        "simulation_proposals": dry_run.proposals,
        "simulation_people": dry_run.people,
        "simulation_sent": dry_run.outcomes["sent"],
    }


if __name__ == "__main__":
    print(run())
