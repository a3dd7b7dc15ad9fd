"""`opencx outbox list / deliver / retry` on a database file, against a local receiver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from opencx.cli import app
from opencx.cli import outbox as outbox_cli
from opencx.config import load_settings
from opencx.ingest import Ingestor
from opencx.orchestrate.outbox import enqueue, list_outbox
from opencx.store import Store
from tests.orchestrate.receivers import SECRET, WebhookReceiver, serve_webhooks
from tests.voc.conftest import person

runner = CliRunner()


def _queue(db: Path, receiver_url: str) -> None:
    with Store(db) as store:
        ingestor = Ingestor(store, load_settings(db=db, profiles_refresh_s=0))
        ana = person(ingestor, "ana")
        now = datetime.now(UTC)
        common = {"person_id": ana, "channel": "email", "purpose": "service"}
        enqueue(
            store.con,
            idempotency_key="ok",
            action="delivery-update",
            adapter="webhook",
            destination=receiver_url,
            payload={"order": "A-17"},
            at=now,
            **common,
        )
        enqueue(
            store.con,
            idempotency_key="gone",
            action="win-back",
            adapter="webhook",
            destination=receiver_url,
            payload={},
            at=now + timedelta(milliseconds=1),
            **common,
        )
        enqueue(store.con, idempotency_key="mail", action="receipt", adapter="email",
                destination="ana@example.com", payload={"subject": "s", "text": "t"}, at=now,
                **common)  # fmt: skip


def test_deliver_list_and_retry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_cli, "console", Console(width=200))
    db = tmp_path / "o.duckdb"
    env = {"OPENCX_WEBHOOK_SECRET": SECRET, "OPENCX_SMTP__HOST": ""}
    with serve_webhooks(WebhookReceiver(script=[200, 410])) as receiver:
        _queue(db, receiver.url)
        delivered = runner.invoke(app, ["outbox", "deliver", "--db", str(db)], env=env)
        assert delivered.exit_code == 0, delivered.output
        assert "1 delivered, 0 to retry, 1 dead" in delivered.stdout
        assert "1 wait for adapter email, which is not configured (set smtp.host)" in (
            delivered.stdout
        )
        assert "HTTP 410" in delivered.stdout
        assert list(receiver.processed) == ["ok"]

        listed = runner.invoke(app, ["outbox", "list", "--db", str(db)])
        assert listed.exit_code == 0, listed.output
        assert "1 pending, 0 sending, 1 delivered, 1 dead" in listed.stdout
        dead = runner.invoke(app, ["outbox", "list", "--status", "dead", "--db", str(db)])
        assert "win-back" in dead.stdout and "delivery-update" not in dead.stdout

        with Store(db) as store:
            [gone] = list_outbox(store.con, status="dead")
        revived = runner.invoke(app, ["outbox", "retry", gone.id, "--db", str(db)])
        assert revived.exit_code == 0, revived.output
        assert f"{gone.id} is pending again" in revived.stdout
        again = runner.invoke(app, ["outbox", "deliver", "--db", str(db)], env=env)
        assert "1 delivered, 0 to retry, 0 dead" in again.stdout  # the receiver is back
    assert sorted(receiver.processed) == ["gone", "ok"]


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    db = str(tmp_path / "o.duckdb")
    wrong = runner.invoke(app, ["outbox", "list", "--status", "lost", "--db", db])
    assert wrong.exit_code == 2
    assert "status must be one of pending, sending, delivered, dead" in wrong.stderr
    missing = runner.invoke(app, ["outbox", "retry", "ob_nope", "--db", db])
    assert missing.exit_code == 4
    assert "no outbox message with id 'ob_nope'" in missing.stderr
