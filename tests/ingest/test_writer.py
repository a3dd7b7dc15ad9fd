"""The group-commit writer: acknowledged means committed, a failed commit changes nothing."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from opencx.config import Settings, load_settings
from opencx.identity import load_graph, rebuild
from opencx.ingest import Ingestor, SourceContext
from opencx.ingest import _writer as writer_module
from opencx.store import Store
from tests.conftest import LiveServer, basic_auth, start_server

WEB = SourceContext("web", "web")


def _batch(prefix: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "identify" if i % 5 == 0 else "track",
            "event": "Page Scrolled",
            "messageId": f"{prefix}-{i}",
            "anonymousId": f"{prefix}-anon-{i // 5}",
            "userId": f"{prefix}-user-{i // 10}" if i % 5 == 0 else None,
            "traits": {"email": f"{prefix}-{i // 10}@example.com"} if i % 5 == 0 else None,
        }
        for i in range(n)
    ]


def test_threaded_writer_commits_before_answering(settings: Settings, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with Store(db) as store:
        ingestor = Ingestor(store, settings).start()
        futures = [
            ingestor.writer.submit(ingestor.validate(_batch(f"b{k}", 40), WEB)) for k in range(25)
        ]
        results = [f.result(timeout=30) for f in futures]
        ingestor.stop()
        assert sum(r.accepted for r in results) == 1000
        stored = store.con.execute(
            "SELECT count(DISTINCT message_id), count(*) FROM events"
        ).fetchall()
        assert stored == [(1000, 1000)]


def test_failed_commit_rolls_back_identity_and_stores_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store()
    ingestor = Ingestor(store, settings)
    ingestor.ingest(_batch("ok", 10), WEB)
    before = load_graph(store.con, settings.identity).profiles()

    def broken_append(*_args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(writer_module, "append_events", broken_append)
    with pytest.raises(Exception, match="disk full"):
        ingestor.ingest(_batch("lost", 10), WEB)
    monkeypatch.undo()

    assert ingestor.writer.graph.profiles() == before
    assert store.con.execute("SELECT count(*) FROM events").fetchall() == [(10,)]
    # The same events sent again after the fault are stored, with the same identities.
    result = ingestor.ingest(_batch("lost", 10), WEB)
    assert result.accepted == 10
    report = rebuild(store.con, settings.identity)
    assert report.events_moved == 0


def test_restart_resumes_identity_and_dedup(settings: Settings) -> None:
    with Store(settings.db) as store:
        Ingestor(store, settings).ingest(_batch("r", 20), WEB)
    with Store(settings.db) as store:
        ingestor = Ingestor(store, settings)
        again = ingestor.ingest(_batch("r", 20), WEB)
        assert (again.accepted, again.duplicates) == (0, 20)
        more = ingestor.ingest(
            [{"type": "track", "event": "X", "userId": "r-user-0", "messageId": "late"}], WEB
        )
        assert more.accepted == 1
        pids = store.con.execute(
            "SELECT DISTINCT person_id FROM resolved_events WHERE user_id = 'r-user-0' "
            "OR message_id = 'late'"
        ).fetchall()
        assert len(pids) == 1


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_event(live_server: LiveServer) -> None:
    acked: list[str] = []
    stop = threading.Event()
    auth = basic_auth(live_server.write_key)

    def send(worker: int) -> None:
        with httpx.Client(base_url=live_server.url, timeout=5) as client:
            for n in range(2000):  # bounded: at most 2,000 batches per worker
                if stop.is_set():
                    return
                batch = _batch(f"w{worker}-{n}", 50)
                try:
                    response = client.post("/v1/batch", json={"batch": batch}, headers=auth)
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    acked.extend(m["messageId"] for m in batch)

    workers = [threading.Thread(target=send, args=(w,)) for w in range(2)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 10
    while len(acked) < 5000 and time.monotonic() < deadline:
        time.sleep(0.05)
    live_server.process.send_signal(signal.SIGKILL)
    live_server.process.wait(10)
    stop.set()
    for w in workers:
        w.join(10)

    assert len(acked) >= 1000, "the server acknowledged too little to make the test meaningful"
    with Store(live_server.db) as store:
        stored = {m for (m,) in store.con.execute("SELECT message_id FROM events").fetchall()}
        assert set(acked) <= stored
        dupes = store.con.execute(
            "SELECT count(*) - count(DISTINCT message_id) FROM events"
        ).fetchall()
        assert dupes == [(0,)]
        # Identity written with the events is whole: a rebuild changes nothing.
        report = rebuild(store.con, load_settings().identity)
        assert report.events_moved == 0
    restarted = start_server(live_server.db, live_server.write_key, live_server.admin_token)
    try:
        response = httpx.post(
            f"{restarted.url}/v1/batch", json={"batch": _batch("after", 5)}, headers=auth
        )
        assert response.json()["accepted"] == 5
    finally:
        restarted.process.terminate()
        restarted.process.wait(10)
