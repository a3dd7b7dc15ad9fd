"""Load test: the ingestion target rate, held for minutes, on loopback.

An open-loop generator schedules 100-event batches at the target rate (30,000 events/s
by default, docs/architecture.md) over keep-alive connections; each request's latency
is counted from the moment it was scheduled, so a server that falls behind shows it in
p99 instead of slowing the generator down. The server's RSS is sampled from /proc, and
split at the start and the end of the load by the server's own `/api/v1/admin/stats`:
DuckDB's buffer manager (bounded by `memory_limit`), the dedup index (8 bytes per stored
event, by design) and the rest, whose growth is what must stay flat.
The bare JSON endpoint (bench/_bare.py) gets the same schedule for a short run, as the
same-run baseline of what the HTTP stack and the generator alone cost.

`python -m bench.load --seconds 60` for a shorter run; `make bench` uses
BENCH_LOAD_SECONDS (default 180). The server runs with DuckDB's memory limit at 128 MiB
(LOAD_MEMORY_LIMIT), so the cache reaches its bound within minutes;
`OPENCX_MEMORY_LIMIT=25% python -m bench.load` runs it under the production default.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from bench.ingest import _serve, _stop
from opencx.access import add_source, create_token
from opencx.store import Store

BATCH = 100
CONNECTIONS = 48
PEOPLE = 50_000  # returning customers: identity state stops growing after the first pass
TARGET_EVENTS_S = 30_000
DEFAULT_SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "180"))
BASELINE_SECONDS = 20.0
LOAD_MEMORY_LIMIT = "128MiB"


def _template() -> bytes:
    """One batch body with `@R@` where the request number goes, and `@P@` for people."""
    batch: list[dict[str, Any]] = []
    for i in range(BATCH):
        message: dict[str, Any] = {
            "messageId": f"load-@R@-{i}",
            "anonymousId": f"anon-@P@{i:02d}",
            "timestamp": "2026-11-20T10:15:00.123Z",
            "context": {"library": {"name": "analytics-python", "version": "2.3.0"}},
        }
        if i % 10 == 9:
            message |= {"type": "identify", "userId": "user-@P@" + f"{i:02d}",
                        "traits": {"plan": "pro"}}  # fmt: skip
        else:
            message |= {"type": "track", "event": "Product Viewed",
                        "properties": {"product_id": f"sku-{i}", "price": 19.99}}  # fmt: skip
        batch.append(message)
    return orjson.dumps({"batch": batch, "sentAt": "2026-11-20T10:15:01.000Z"})


def _body(template: bytes, request: int) -> bytes:
    group = request % (PEOPLE // BATCH)  # each request speaks for 100 of the PEOPLE
    return template.replace(b"@R@", str(request).encode()).replace(b"@P@", f"{group}-".encode())


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _workers_rss_mb(pid: int) -> float:
    """RSS of the server's child processes (its validation workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return float("nan")
    total = 0.0
    for child in children:
        try:
            total += _rss_mb(int(child))
        except OSError:  # ended meanwhile
            continue
    return total


def _memory_split(port: int, token: str) -> dict[str, Any]:
    """The server's RSS as DuckDB's share, the dedup index's, and the rest (MB)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/api/v1/admin/stats", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"/api/v1/admin/stats answered {response.status}: {body[:200]!r}")
    stats = orjson.loads(body)
    mb = 2**20
    rss = stats["process"]["rss_bytes"] / mb
    duckdb = stats["duckdb"]["memory_bytes"] / mb
    index = stats["ingestion"]["dedup_index_bytes"] / mb
    return {
        "rss_mb": rss,
        "duckdb_mb": duckdb,
        "duckdb_limit": stats["duckdb"]["memory_limit"],
        "index_mb": index,
        "index_entries": stats["ingestion"]["dedup_index_entries"],
        "rest_mb": rss - duckdb - index,
        "database_mb": stats["database"]["file_bytes"] / mb,
    }


def drive(port: int, headers: dict[str, str], rate: float, seconds: float, tag: str,
          pid: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Send batches at `rate` events/s for `seconds`; latencies from the scheduled time."""
    template = _template().replace(b"load-@R@", f"{tag}-@R@".encode())
    interval = BATCH / rate
    total = int(seconds / interval)
    lock = threading.Lock()
    cursor = iter(range(total))
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0, "late_starts": 0}
    rss: list[float] = []
    start = time.perf_counter() + 0.2
    hard_stop = start + seconds * 1.5 + 10  # bounded even if the server stalls

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                n = next(cursor, None)
            if n is None or time.perf_counter() > hard_stop:
                break
            due = start + n * interval
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            late = wait < -0.05  # every connection was busy: the server is behind
            try:
                conn.request("POST", "/v1/batch", body=_body(template, n), headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            done = time.perf_counter()
            with lock:
                counts["ok" if ok else "errors"] += 1
                counts["late_starts"] += late
                latencies.append(done - due)
        conn.close()

    def sample() -> None:
        while pid is not None and not stopping.wait(1.0):
            rss.append(_rss_mb(pid))

    stopping = threading.Event()
    sampler = threading.Thread(target=sample, daemon=True)
    rss_start = _rss_mb(pid) if pid is not None else float("nan")
    sampler.start()
    threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    stopping.set()
    sampler.join()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "events_s": counts["ok"] * BATCH / elapsed,
        "seconds": elapsed,
        "requests": total,
        "ok": counts["ok"],
        "errors": counts["errors"],
        "late_starts": counts["late_starts"],
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "max_ms": latencies[-1] * 1000 if latencies else 0.0,
        "rss_start_mb": rss_start,
        "rss_end_mb": _rss_mb(pid) if pid is not None else float("nan"),
        "rss_half_mb": rss[len(rss) // 2] if rss else rss_start,  # does growth level off?
        "rss_peak_mb": max(rss, default=rss_start),
    }


def run(seconds: float = DEFAULT_SECONDS, rate: float = TARGET_EVENTS_S) -> dict[str, Any]:
    """Hold `rate` events/s for `seconds` against OpenCX, then check every event is stored."""
    from tests.conftest import free_port

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "load.duckdb"
        with Store(db) as store:
            _, key = add_source(store.con, "load", "web")
            _, token = create_token(store.con, "bench", "admin")
        headers = {
            "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
            "Content-Type": "application/json",
        }
        env = {
            **os.environ, "OPENCX_PROFILES_REFRESH_S": "0", "OPENCX_VOC_EVERY_S": "0",
            "OPENCX_ORCHESTRATE_EVERY_S": "0", "OPENCX_SEGMENTS_EVERY_S": "0",
            # DuckDB's block cache grows with the log up to its limit (25% of RAM by
            # default): a small one is reached within the run, so the plateau shows.
            "OPENCX_MEMORY_LIMIT": os.environ.get("OPENCX_MEMORY_LIMIT", LOAD_MEMORY_LIMIT),
        }  # fmt: skip
        bare_port, port = free_port(), free_port()
        bare = _serve(
            ["-m", "uvicorn", "bench._bare:app", "--port", str(bare_port), "--log-level",
             "warning", "--no-access-log"], bare_port, env,
        )  # fmt: skip
        try:
            baseline = drive(bare_port, headers, rate, min(BASELINE_SECONDS, seconds), "bare")
        finally:
            _stop(bare)
        server = _serve(
            ["-m", "opencx.cli", "serve", "--db", str(db), "--port", str(port)], port, env
        )
        try:
            # Warm-up: every customer seen once, so the start RSS includes their identities.
            warm = drive(port, headers, rate, PEOPLE / rate, "warm")
            split_start = _memory_split(port, token) | {"workers_mb": _workers_rss_mb(server.pid)}
            result = drive(port, headers, rate, seconds, "load", pid=server.pid)
            split_end = _memory_split(port, token) | {"workers_mb": _workers_rss_mb(server.pid)}
        finally:
            _stop(server)
        with Store(db, read_only=True) as store:
            stored = store.con.execute(
                "SELECT count(*) FILTER (WHERE starts_with(message_id, 'load-')), count(*) "
                "FROM events"
            ).fetchall()[0]
    result |= {
        "target_events_s": rate,
        "stored": int(stored[0]),
        "expected": result["ok"] * BATCH,
        "warm_errors": warm["errors"],
        "rss_growth_mb": result["rss_end_mb"] - result["rss_start_mb"],
        # The dedup index keeps 8 bytes per stored event by design (docs/architecture.md).
        "index_growth_mb": split_end["index_mb"] - split_start["index_mb"],
        "memory_start": split_start,
        "memory_end": split_end,
        **{
            f"{part}_growth_mb": split_end[f"{part}_mb"] - split_start[f"{part}_mb"]
            for part in ("duckdb", "rest")
        },
        "baseline": baseline,
        "p99_ratio": result["p99_ms"] / baseline["p99_ms"] if baseline["p99_ms"] else 0.0,
    }
    return result


def describe(r: dict[str, Any]) -> str:
    a, b = r["memory_start"], r["memory_end"]
    return (
        f"{r['events_s']:,.0f} events/s held of {r['target_events_s']:,.0f} for "
        f"{r['seconds']:.0f} s; p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms; "
        f"RSS {r['rss_start_mb']:.0f} → {r['rss_half_mb']:.0f} (half-way) → "
        f"{r['rss_end_mb']:.0f} MB ({r['rss_growth_mb']:+.0f} MB): "
        f"DuckDB {a['duckdb_mb']:.0f} → {b['duckdb_mb']:.0f} (limit {b['duckdb_limit']}), "
        f"dedup index {a['index_mb']:.0f} → {b['index_mb']:.0f}, "
        f"the rest {a['rest_mb']:.0f} → {b['rest_mb']:.0f} ({r['rest_growth_mb']:+.0f} MB); "
        f"validation workers {a['workers_mb']:.0f} → {b['workers_mb']:.0f} MB; "
        f"{r['errors']} errors; {r['stored']:,}/{r['expected']:,} stored"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--rate", type=float, default=TARGET_EVENTS_S, help="events/s")
    args = parser.parse_args()
    result = run(args.seconds, args.rate)
    print(describe(result))
    b = result["baseline"]
    print(
        f"baseline (bare JSON endpoint, same schedule): {b['events_s']:,.0f} events/s, "
        f"p50 {b['p50_ms']:.1f} ms, p99 {b['p99_ms']:.1f} ms; p99 ratio {result['p99_ratio']:.1f}"
    )
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode(), file=sys.stderr)


if __name__ == "__main__":
    main()
