"""Validation workers prepare exactly what the server would, and losing one loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from opencx.access import add_source, create_token
from opencx.config import Settings, load_settings
from opencx.ingest import HASH_PREFIX, PreparedBatch, SourceContext, ValidationPool, default_workers
from opencx.ingest._workers import BodyValidator, WorkerConfig
from opencx.store import Store
from tests.conftest import start_server

SOURCE = SourceContext("web", "web")
RECEIVED = 1_790_000_000_000_000


def config(settings: Settings, hash_fields: tuple[str, ...] = ()) -> WorkerConfig:
    return WorkerConfig(
        settings.identity, settings.default_region, settings.max_event_bytes,
        settings.max_batch_events, b"per-database-salt", hash_fields, (),
    )  # fmt: skip


def body(n: int, bad: int = 0) -> bytes:
    batch = [
        {"type": "track", "event": "Viewed", "anonymousId": f"a-{i}", "messageId": f"m-{n}-{i}",
         "timestamp": "2026-11-20T10:15:00.123Z", "properties": {"sku": i},
         "context": {"traits": {"email": f"P{i}@Example.com"}}}
        for i in range(20)
    ]  # fmt: skip
    batch += [{"type": "track", "messageId": f"bad-{n}-{i}"} for i in range(bad)]  # no event
    return orjson.dumps({"batch": batch, "sentAt": "2026-11-20T10:15:01Z"})


@pytest.fixture
def pool() -> Iterator[ValidationPool]:
    started = ValidationPool(config(load_settings(), ("properties.sku",)), 1).start()
    yield started
    started.stop()


def same(a: PreparedBatch, b: PreparedBatch) -> None:
    assert a.message_id == b.message_id
    assert a.identifiers == b.identifiers
    assert np.array_equal(a.hashes, b.hashes)
    assert a.record.equals(b.record)
    assert [f.summary() for f in a.failures] == [f.summary() for f in b.failures]


def test_a_worker_prepares_what_the_server_would(pool: ValidationPool) -> None:
    here = BodyValidator(pool.config)

    async def run() -> list[PreparedBatch | None]:
        return await asyncio.gather(*(pool.validate(body(n, bad=n % 3), SOURCE, RECEIVED)
                                      for n in range(12)))  # fmt: skip

    results = asyncio.run(run())
    assert pool.restarts == 0
    for n, prepared in enumerate(results):
        assert prepared is not None
        expected = here(body(n, bad=n % 3), SOURCE, RECEIVED)
        assert expected is not None
        same(prepared, expected)
        assert len(prepared) == 20 and len(prepared.failures) == n % 3
    first = results[0]
    assert first is not None
    assert first.identifiers[0] == ["email:p0@example.com", "anonymous_id:a-0"]
    hashed = orjson.loads(first.record.column("properties")[0].as_py())["sku"]
    assert hashed.startswith(HASH_PREFIX)  # the PII rule ran in the worker


def test_a_body_the_fast_lane_cannot_read_comes_back_as_none(pool: ValidationPool) -> None:
    async def run() -> list[PreparedBatch | None]:
        return [
            await pool.validate(b"{not json", SOURCE, RECEIVED),
            await pool.validate(b'{"batch": 3}', SOURCE, RECEIVED),
        ]

    assert asyncio.run(run()) == [None, None]


def test_a_killed_worker_fails_its_requests_over_and_is_replaced() -> None:
    pool = ValidationPool(config(load_settings()), 1).start()
    try:
        victim = pool._live[0].process
        assert victim.pid is not None

        async def run() -> tuple[list[object], list[PreparedBatch | None]]:
            os.kill(victim.pid, signal.SIGSTOP)  # type: ignore[arg-type]
            pending = [asyncio.ensure_future(pool.validate(body(n), SOURCE, RECEIVED))
                       for n in range(5)]  # fmt: skip
            await asyncio.sleep(0.2)  # all five sent, none answered
            os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
            first = await asyncio.gather(*pending, return_exceptions=True)
            deadline = time.monotonic() + 60
            while not pool._live and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            after = [await pool.validate(body(100 + n), SOURCE, RECEIVED) for n in range(3)]
            return first, after

        first, after = asyncio.run(run())
        # Each failed with WorkerGone: the API then sends the body down the regular route,
        # which validates it in the server's process (tests/api/test_ingest.py).
        assert [type(outcome).__name__ for outcome in first] == ["WorkerGone"] * 5
        assert pool.restarts == 1
        assert pool._live and pool._live[0].process.pid != victim.pid
        assert all(isinstance(p, PreparedBatch) and len(p) == 20 for p in after)
        assert pool.sent == 8  # the three after the restart went to the new worker
    finally:
        pool.stop()


def test_a_hung_worker_never_blocks_the_event_loop() -> None:
    pool = ValidationPool(config(load_settings()), 1).start()
    worker = pool._live[0]
    assert worker.process.pid is not None
    try:
        os.kill(worker.process.pid, signal.SIGSTOP)  # alive, but reads nothing
        one = len(body(0)) + 200
        count = 3 * worker.capacity // one  # three times what its pipe holds

        async def run() -> tuple[int, list[PreparedBatch | None]]:
            pending = [asyncio.ensure_future(pool.validate(body(n), SOURCE, RECEIVED))
                       for n in range(count)]  # fmt: skip
            await asyncio.sleep(0.5)  # the loop ran: every write returned
            held = sum(not p.done() for p in pending)
            os.kill(worker.process.pid, signal.SIGCONT)  # type: ignore[arg-type]
            return held, await asyncio.gather(*pending)

        held, results = asyncio.run(run())
        assert 0 < held <= worker.capacity // (one - 400)  # only what the pipe held waited
        assert all(r is not None and len(r) == 20 for r in results)
        assert worker.queued == 0 and not worker.pending
    finally:
        os.kill(worker.process.pid, signal.SIGCONT)
        pool.stop()


def test_no_workers_means_validation_in_this_process() -> None:
    pool = ValidationPool(config(load_settings()), 0).start()
    prepared = asyncio.run(pool.validate(body(1), SOURCE, RECEIVED))
    assert prepared is not None and len(prepared) == 20
    assert pool._live == []
    assert 0 <= default_workers() <= 4


def test_a_live_server_stores_through_its_worker_and_the_worker_ends_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "live.duckdb"
    with Store(db) as store:
        _, key = add_source(store.con, "web", "web")
        _, token = create_token(store.con, "admin", "admin")
    monkeypatch.setenv("OPENCX_INGEST_WORKERS", "1")  # whatever this machine's cores
    live_server = start_server(db, key, token)
    try:
        auth = (live_server.write_key, "")
        for n in range(5):
            answer = httpx.post(f"{live_server.url}/v1/batch", content=body(n, bad=1), auth=auth)
            assert answer.status_code == 200, answer.text
            assert answer.json()["accepted"] == 20 and answer.json()["rejected"] == 1
        workers = _children(live_server.process.pid)
        assert workers, "the server started no validation worker"
        live_server.process.send_signal(signal.SIGKILL)
        live_server.process.wait(10)
        deadline = time.monotonic() + 20
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), "a worker outlived its server"
    finally:
        if live_server.process.poll() is None:
            live_server.process.kill()
    with Store(live_server.db, read_only=True) as store:
        stored = store.con.execute("SELECT count(*) FROM events").fetchone()
        failed = store.con.execute("SELECT count(*) FROM failed_events").fetchone()
    assert stored == (100,) and failed == (5,)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(line) for line in out.stdout.split()]


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False
