"""Ingestion over HTTP: OpenCX `/v1/batch` (acknowledged once committed) against a bare endpoint.

Both servers run the same stack (uvicorn + FastAPI, one process) on loopback and get
the same load: pre-built 100-event Segment batches sent by a few keep-alive
connections. The bare endpoint only parses the JSON, so the ratio shows what
validation, deduplication, identity resolution and the durable write cost.
"""

from __future__ import annotations

import base64
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from opencx.access import add_source
from opencx.store import Store

BATCH = 100
CONNECTIONS = 32
MAX_SECONDS = 60.0


def bodies(requests: int, tag: str) -> list[bytes]:
    """`requests` batch bodies of realistic web/app events, unique message ids throughout."""
    out = []
    for r in range(requests):
        batch: list[dict[str, Any]] = []
        for i in range(BATCH):
            person = (r * BATCH + i) // 8
            anon = f"{tag}-anon-{person}"
            if i % 8 == 7:
                message: dict[str, Any] = {
                    "type": "identify",
                    "anonymousId": anon,
                    "userId": f"{tag}-user-{person}",
                    "traits": {"email": f"{tag}-{person}@example.com", "plan": "pro"},
                }
            else:
                message = {
                    "type": "track" if i % 2 else "page",
                    "anonymousId": anon,
                    "event": "Product Viewed",
                    "name": "Product",
                    "properties": {"product_id": f"sku-{i}", "price": 19.99, "category": "phones"},
                }
            message["messageId"] = f"{tag}-{r}-{i}"
            message["timestamp"] = "2026-11-20T10:15:00.123Z"
            message["context"] = {
                "library": {"name": "analytics-python", "version": "2.3.0"},
                "page": {"path": "/phones", "url": "https://shop.example/phones"},
            }
            batch.append(message)
        out.append(orjson.dumps({"batch": batch, "sentAt": "2026-11-20T10:15:01.000Z"}))
    return out


def _wait(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited early")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def load(port: int, payloads: list[bytes], headers: dict[str, str]) -> tuple[float, int, int]:
    """Send every payload once over CONNECTIONS keep-alive connections; (seconds, ok, errors)."""
    lock = threading.Lock()
    cursor = iter(range(len(payloads)))
    counts = {"ok": 0, "errors": 0}
    start = time.perf_counter()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.perf_counter() - start < MAX_SECONDS:
            with lock:
                n = next(cursor, None)
            if n is None:
                break
            conn.request("POST", "/v1/batch", body=payloads[n], headers=headers)
            response = conn.getresponse()
            response.read()
            with lock:
                counts["ok" if response.status == 200 else "errors"] += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, counts["ok"], counts["errors"]


def _serve(args: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait(port, process)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def run(requests: int = 1000, rounds: int = 3) -> dict[str, Any]:
    """Median events/s over `rounds` alternating runs against each server."""
    from tests.conftest import free_port

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        with Store(db) as store:
            _, key = add_source(store.con, "bench", "web")
        auth = {
            "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
            "Content-Type": "application/json",
        }
        env = {**os.environ, "OPENCX_PROFILES_REFRESH_S": "0", "OPENCX_VOC_EVERY_S": "0"}
        bare_port, port = free_port(), free_port()
        bare = _serve(
            ["-m", "uvicorn", "bench._bare:app", "--port", str(bare_port), "--log-level",
             "warning", "--no-access-log"], bare_port, env,
        )  # fmt: skip
        server = _serve(
            ["-m", "opencx.cli", "serve", "--db", str(db), "--port", str(port)], port, env
        )
        bare_rates, rates, errors, sent = [], [], 0, 0
        try:
            load(bare_port, bodies(20, "warm-bare"), auth)
            load(port, bodies(20, "warm"), auth)
            sent += 20
            for r in range(rounds):
                seconds, ok, bad = load(bare_port, bodies(requests, f"bare{r}"), auth)
                bare_rates.append(ok * BATCH / seconds)
                errors += bad
                seconds, ok, bad = load(port, bodies(requests, f"run{r}"), auth)
                rates.append(ok * BATCH / seconds)
                errors += bad
                sent += ok
        finally:
            _stop(server)
            _stop(bare)
        with Store(db) as store:
            stored = store.con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    opencx_rate, bare_rate = statistics.median(rates), statistics.median(bare_rates)
    return {
        "opencx_events_s": opencx_rate,
        "opencx_runs": rates,
        "bare_events_s": bare_rate,
        "errors": errors,
        "stored": stored,
        "expected": sent * BATCH,
        "ratio": opencx_rate / bare_rate,
    }


if __name__ == "__main__":
    print(run())
