"""Customer-360 page latency on the sample brand: p95 over 100 different customers.

Baseline in the same run: the sign-in page (same server, templates and middleware, no
data), so the ratio shows what the customer's data costs.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from opencx.access import add_source, add_user, create_token
from opencx.config import load_settings
from opencx.demo import load_demo
from opencx.store import Store

PASSWORD = "bench password 1"


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def run(customers: int = 5000, pages: int = 100) -> dict[str, Any]:
    from tests.conftest import start_server

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "brand.duckdb"
        settings = load_settings(db=db, profiles_refresh_s=0)
        with Store(db) as store:
            report = load_demo(store, settings, customers=customers, seed=7)
            add_user(store.con, "bench@example.com", "agent", PASSWORD)
            _, key = add_source(store.con, "bench", "web")
            _, token = create_token(store.con, "bench", "admin")
            ids = [
                pid
                for (pid,) in store.con.execute(
                    "SELECT profile_id FROM profiles WHERE len(channels) >= 3 "
                    "ORDER BY hash(profile_id) LIMIT ?",
                    [pages],
                ).fetchall()
            ]
        server = start_server(db, key, token)
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
                assert csrf
                client.post(
                    "/login",
                    data={"email": "bench@example.com", "password": PASSWORD,
                          "csrf": csrf.group(1)},
                )  # fmt: skip
                baseline, latencies = [], []
                for _ in range(pages):
                    t = time.perf_counter()
                    client.get("/login")
                    baseline.append(time.perf_counter() - t)
                for pid in ids:
                    t = time.perf_counter()
                    response = client.get(f"/customers/{pid}")
                    latencies.append(time.perf_counter() - t)
                    assert response.status_code == 200, response.status_code
        finally:
            server.process.terminate()
            server.process.wait(10)
    return {
        "events": report.events,
        "pages": len(latencies),
        "p50_ms": _p(latencies, 50) * 1000,
        "p95_ms": _p(latencies, 95) * 1000,
        "baseline_p95_ms": _p(baseline, 95) * 1000,
    }


if __name__ == "__main__":
    print(run())
