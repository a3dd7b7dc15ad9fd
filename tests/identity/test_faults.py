"""SIGKILL while a batch of merges is being applied: no half-applied merge, nothing lost.

A real server merges thousands of profiles (each merge event links a user id, an
anonymous id and an email that were three profiles) and is killed mid-stream. After the
kill, each person is either whole or untouched, the stored state equals a rebuild from
the log, and after a restart the rest of the merges apply exactly once.
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from opencx.access import add_source, create_token
from opencx.config import load_settings
from opencx.identity import rebuild
from opencx.ingest import Ingestor, SourceContext
from opencx.store import Store
from tests.conftest import LiveServer, basic_auth, start_server

pytestmark = pytest.mark.slow
PEOPLE = 6_000
PER_BATCH = 300
WEB = SourceContext("web", "web")


def _apart(i: int) -> list[dict[str, Any]]:
    """Person i as three profiles: a device, a signed-in user, an email from a form."""
    return [
        {"type": "page", "name": "Home", "messageId": f"dev-{i}", "anonymousId": f"dev-{i}"},
        {"type": "track", "event": "Signed In", "messageId": f"usr-{i}", "userId": f"u-{i}"},
        {"type": "identify", "messageId": f"frm-{i}", "anonymousId": f"frm-{i}",
         "traits": {"email": f"p{i}@example.com"}},
    ]  # fmt: skip


def _merge(i: int) -> dict[str, Any]:
    return {"type": "identify", "messageId": f"merge-{i}", "userId": f"u-{i}",
            "anonymousId": f"dev-{i}", "traits": {"email": f"p{i}@example.com"}}  # fmt: skip


def _owners(con: Any) -> dict[str, str]:
    """Each identifier's profile now (following merges)."""
    return dict(
        con.execute(
            "SELECT i.identifier, coalesce(m.canonical_id, i.profile_id) FROM identities i "
            "LEFT JOIN profile_merges m ON m.profile_id = i.profile_id"
        ).fetchall()
    )


def _persons(con: Any) -> dict[str, str]:
    return dict(con.execute("SELECT message_id, person_id FROM resolved_events").fetchall())


def _state_equals_a_rebuild(db: Path, scratch: Path) -> tuple[dict[str, str], set[str]]:
    """Compare the stored (incremental) identity state with a rebuild of a copy."""
    copy = scratch / f"copy-{time.monotonic_ns()}.duckdb"
    with Store(db) as store:  # replays the write-ahead log, as a restart does
        store.con.execute("CHECKPOINT")
        owners, persons = _owners(store.con), _persons(store.con)
        stored = set(persons)
    shutil.copy(db, copy)
    with Store(copy) as store:
        report = rebuild(store.con, load_settings().identity)
        assert report.events_moved == 0
        assert _owners(store.con) == owners
        assert _persons(store.con) == persons
    return owners, stored


def _each_person_is_whole_or_untouched(owners: dict[str, str], stored: set[str]) -> int:
    merged = 0
    for i in range(PEOPLE):
        profiles = {
            owners[f"user_id:u-{i}"],
            owners[f"anonymous_id:dev-{i}"],
            owners[f"email:p{i}@example.com"],
        }
        if f"merge-{i}" in stored:
            assert len(profiles) == 1, f"person {i} is half merged: {profiles}"
            merged += 1
        else:
            assert len(profiles) == 3, f"person {i} was merged without its event: {profiles}"
    return merged


def _send_merges(
    server: LiveServer, acked: list[int], stop: threading.Event
) -> list[threading.Thread]:
    auth = basic_auth(server.write_key)
    batches = list(range(0, PEOPLE, PER_BATCH))

    def send(mine: list[int]) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for start in mine:
                if stop.is_set():
                    return
                batch = [_merge(i) for i in range(start, start + PER_BATCH)]
                try:
                    response = client.post("/v1/batch", json={"batch": batch}, headers=auth)
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    assert response.json()["accepted"] + response.json()["duplicates"] == len(batch)
                    acked.append(start)

    workers = [threading.Thread(target=send, args=(batches[w::2],)) for w in range(2)]
    for w in workers:
        w.start()
    return workers


def test_sigkill_during_merges_leaves_no_half_applied_merge(tmp_path: Path) -> None:
    db = tmp_path / "merges.duckdb"
    settings = load_settings(db=db, profiles_refresh_s=0)
    with Store(db) as store:
        _, key = add_source(store.con, "web", "web")
        _, token = create_token(store.con, "admin", "admin")
        ingestor = Ingestor(store, settings)
        for start in range(0, PEOPLE, 1000):
            ingestor.ingest([m for i in range(start, start + 1000) for m in _apart(i)], WEB)
    server = start_server(db, key, token)
    acked: list[int] = []
    stop = threading.Event()
    try:
        workers = _send_merges(server, acked, stop)
        deadline = time.monotonic() + 60
        while len(acked) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Merges are still arriving and being applied: kill the server mid-stream.
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
    finally:
        stop.set()
        if server.process.poll() is None:
            server.process.kill()
    for w in workers:
        w.join(30)
    assert len(acked) >= 3, "too few merge batches acknowledged to make the test meaningful"

    owners, stored = _state_equals_a_rebuild(db, tmp_path)
    merged = _each_person_is_whole_or_untouched(owners, stored)
    for start in acked:  # no acknowledged merge is lost
        assert all(f"merge-{i}" in stored for i in range(start, start + PER_BATCH))
    assert merged < PEOPLE, "the server finished before the kill: nothing was interrupted"

    # After a restart every merge is sent again; each applies once, the state stays whole.
    restarted = start_server(db, key, token)
    again: list[int] = []
    try:
        for w in _send_merges(restarted, again, threading.Event()):
            w.join(120)
    finally:
        restarted.process.terminate()
        restarted.process.wait(30)
    assert len(again) == len(range(0, PEOPLE, PER_BATCH))
    owners, stored = _state_equals_a_rebuild(db, tmp_path)
    assert _each_person_is_whole_or_untouched(owners, stored) == PEOPLE
    with Store(db, read_only=True) as store:
        assert store.con.execute(
            "SELECT count(*), count(DISTINCT message_id) FROM events"
        ).fetchall() == [(4 * PEOPLE, 4 * PEOPLE)]
