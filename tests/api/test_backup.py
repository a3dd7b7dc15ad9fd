"""`POST /api/v1/admin/backup`: admins download a consistent backup of a running server."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from opencx.config import load_settings
from opencx.errors import StoreUnavailable
from opencx.identity import rebuild
from opencx.store import Store
from opencx.store.backup import read_manifest, restore_backup
from tests.conftest import ApiClient, LiveServer, basic_auth


def test_only_admins_may_download_a_backup(api: ApiClient, tmp_path: Path) -> None:
    batch = [{"type": "track", "event": "A", "messageId": f"m{i}", "userId": "u"} for i in range(5)]
    api.client.post("/v1/batch", json={"batch": batch}, headers=api.ingest_auth)
    assert api.client.post("/api/v1/admin/backup").status_code == 401
    for role in ("agent", "analyst"):
        assert api.client.post("/api/v1/admin/backup", headers=api.bearer(role)).status_code == 403
    response = api.client.post("/api/v1/admin/backup", headers=api.bearer("admin"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["x-opencx-events"] == "5"
    file = tmp_path / "download.zip"
    file.write_bytes(response.content)
    report = restore_backup(file, tmp_path / "restored.duckdb")
    assert report.tables["events"] == 5 and report.tables["tokens"] == 3


@pytest.mark.slow
def test_a_running_server_is_backed_up_while_it_ingests(
    live_server: LiveServer, tmp_path: Path
) -> None:
    auth = basic_auth(live_server.write_key)
    admin = {"Authorization": f"Bearer {live_server.admin_token}"}
    stop = threading.Event()
    acked: list[int] = []

    def send() -> None:
        with httpx.Client(base_url=live_server.url, timeout=10) as client:
            for n in range(2000):  # bounded
                if stop.is_set():
                    return
                batch = [
                    {"type": "identify", "messageId": f"s{n}-{i}", "anonymousId": f"a{n}-{i}",
                     "userId": f"u{(n * 20 + i) // 4}"}
                    for i in range(20)
                ]  # fmt: skip
                if client.post("/v1/batch", json={"batch": batch}, headers=auth).status_code == 200:
                    acked.append(n)

    sender = threading.Thread(target=send)
    sender.start()
    files = []
    with httpx.Client(base_url=live_server.url, timeout=60) as client:
        for k in range(3):
            response = client.post("/api/v1/admin/backup", headers=admin)
            assert response.status_code == 200
            files.append(tmp_path / f"live-{k}.zip")
            files[-1].write_bytes(response.content)
    stop.set()
    sender.join(30)
    assert acked, "no batch was acknowledged while backing up"
    with pytest.raises(StoreUnavailable, match="in use by another process"):
        restore_backup(files[0], live_server.db, force=True)  # the server holds the file
    settings = load_settings()
    for k, file in enumerate(files):
        target = tmp_path / f"restored-{k}.duckdb"
        report = restore_backup(file, target)
        assert report.tables == read_manifest(file).tables
        with Store(target) as store:
            assert rebuild(store.con, settings.identity).events_moved == 0
            # Whole batches only: a batch is committed with all of its 20 events or none.
            assert store.con.execute(
                "SELECT count(*) FROM (SELECT split_part(message_id, '-', 1) AS b, count(*) AS n "
                "FROM events GROUP BY b) WHERE n <> 20"
            ).fetchall() == [(0,)]


def test_admins_refresh_the_parquet_export_of_a_running_server(
    api: ApiClient, settings: object, tmp_path: Path
) -> None:
    batch = [{"type": "track", "event": "A", "messageId": f"e{i}", "userId": "u"} for i in range(3)]
    api.client.post("/v1/batch", json={"batch": batch}, headers=api.ingest_auth)
    assert api.client.post("/api/v1/admin/export", headers=api.bearer("analyst")).status_code == 403
    first = api.client.post("/api/v1/admin/export", headers=api.bearer("admin"))
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["events"] == 3 and body["written_days"] == 1
    assert (Path(body["folder"]) / "analytics_events").is_dir()
    again = api.client.post("/api/v1/admin/export", headers=api.bearer("admin")).json()
    assert again["written_days"] == 0 and again["unchanged_days"] == 1
