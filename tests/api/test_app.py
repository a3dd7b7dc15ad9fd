"""The app's own routes: liveness and readiness, and the server's limits on its database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from opencx.access import add_source
from opencx.api import create_app
from opencx.api._state import ServerState
from opencx.config import Settings, load_settings
from opencx.ingest import EventWriter, SourceContext
from opencx.store import Store
from tests.conftest import basic_auth

EVENTS = [{"type": "track", "event": "Plan Viewed", "anonymousId": "a-1", "messageId": f"m-{i}"}
          for i in range(5)]  # fmt: skip


@dataclass
class Server:
    client: TestClient
    store: Store
    state: ServerState
    write_key: str


@contextmanager
def serving(settings: Settings, store: Store) -> Iterator[Server]:
    _, key = add_source(store.con, "web", "web")
    with TestClient(create_app(settings, store)) as client:
        yield Server(client, store, client.app.state.opencx, key)  # type: ignore[attr-defined]


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[Server]:
    """A server on a database file (a file can be invalidated; an in-memory one cannot)."""
    with Store(tmp_path / "ready.duckdb") as store, serving(settings, store) as running:
        yield running


def invalidate(store: Store) -> None:
    """Make DuckDB invalidate the database, as a checkpoint failing on a full disk does."""
    store.con.execute("CREATE TABLE scratch AS SELECT range AS n FROM range(1000)")
    store.con.execute("SET debug_checkpoint_abort = 'before_header'")
    with pytest.raises(duckdb.FatalException):
        store.con.execute("CHECKPOINT")


def not_ready(response: Any) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "NotReady" and error["message"].startswith("not ready: ")
    return error


# -- liveness and readiness ----------------------------------------------------------
def test_a_healthy_server_is_live_and_ready(server: Server) -> None:
    assert server.client.get("/healthz").json() == {"status": "ok"}
    ready = server.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "writer": "ok", "backlog": "ok"},
    }


def test_an_invalidated_database_is_not_ready_but_the_process_is_live(server: Server) -> None:
    invalidate(server.store)
    error = not_ready(server.client.get("/readyz"))
    assert error["details"]["database"].startswith("DuckDB invalidated the database")
    assert "restart the server" in error["message"]
    assert (error["details"]["writer"], error["details"]["backlog"]) == ("ok", "ok")
    assert str(server.store.path) not in server.client.get("/readyz").text  # no paths leak
    assert server.client.get("/healthz").status_code == 200  # liveness: the process answers
    # ... and ingestion agrees: nothing is acknowledged.
    sent = server.client.post(
        "/v1/batch", json={"batch": EVENTS}, headers=basic_auth(server.write_key)
    )
    assert sent.status_code == 503


def test_a_closed_connection_is_not_ready(server: Server) -> None:
    server.store.con.close()
    error = not_ready(server.client.get("/readyz"))
    assert error["details"]["database"] == (
        "the database does not answer queries (the server log has the error)"
    )


def test_a_stopped_writer_is_not_ready(server: Server) -> None:
    server.state.ingestor.writer.stop()
    error = not_ready(server.client.get("/readyz"))
    assert error["details"] == {
        "database": "ok",
        "writer": "the ingestion writer is not running: restart the server",
        "backlog": "ok",
    }


def test_a_backlog_over_max_queued_events_is_not_ready_until_it_drains(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"max_queued_events": 3})
    with Store() as store, serving(settings, store) as server:
        writer = server.state.ingestor.writer
        held, release = threading.Event(), threading.Event()

        def hold(con: duckdb.DuckDBPyConnection, _: EventWriter) -> None:
            held.set()
            release.wait(30)

        holder = threading.Thread(target=writer.call, args=(hold,))
        holder.start()
        assert held.wait(30)
        batch = server.state.ingestor.validate(EVENTS, SourceContext("web", "web"))
        written: Future[Any] = writer.submit(batch)  # 5 events queued behind the hold
        error = not_ready(server.client.get("/readyz"))
        assert error["details"]["backlog"] == (
            "5 events queued, over max_queued_events (3): ingestion answers 429 until the "
            "writer catches up"
        )
        release.set()
        holder.join(30)
        assert written.result(30).accepted == 5
        assert server.client.get("/readyz").status_code == 200


# -- the server's limits on its database ---------------------------------------------
def test_the_server_applies_its_memory_limit_and_spill_folder(
    settings: Settings, tmp_path: Path
) -> None:
    limits = {"memory_limit": "256MiB", "temp_directory": tmp_path / "spill"}
    settings = settings.model_copy(update=limits)
    # Opened by the caller, as `opencx serve` does: the server's settings still apply.
    with Store(tmp_path / "x.duckdb") as store, serving(settings, store):
        cur = store.cursor()
        limit = cur.execute("SELECT current_setting('memory_limit')").fetchall()
        spill = cur.execute("SELECT current_setting('temp_directory')").fetchall()
    assert (limit, spill) == ([("256.0 MiB",)], [(str(tmp_path / "spill"),)])


def test_the_memory_limit_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENCX_MEMORY_LIMIT", "10%")
    settings = load_settings(db=tmp_path / "x.duckdb", profiles_refresh_s=0)
    assert settings.memory_limit == "10%"
    monkeypatch.delenv("OPENCX_MEMORY_LIMIT")
    assert load_settings(db=tmp_path / "x.duckdb").memory_limit == "25%"
