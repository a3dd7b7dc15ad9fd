"""`opencx privacy erase / export / anonymise / purge / suppressions` on a database file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import orjson
import pytest
from rich.console import Console
from typer.testing import CliRunner

from opencx.cli import app
from opencx.cli import privacy as privacy_cli
from opencx.config import load_settings
from opencx.ingest import Ingestor
from opencx.store import Store
from tests.privacy.conftest import WEB, XAVIER_SENT, XAVIER_VALUES, bianca_events, xavier_events

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(privacy_cli, "console", Console(width=200))
    path = tmp_path / "p.duckdb"
    with Store(path) as store:
        ingestor = Ingestor(store, load_settings(db=path, profiles_refresh_s=0))
        assert ingestor.ingest([*xavier_events(), *bianca_events()], WEB).accepted == 8
    return path


def _dump(db: Path) -> str:
    with Store(db) as store:
        tables = store.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        ).fetchall()
        return "\n".join(
            repr(store.con.execute(f'SELECT * FROM "{t}"').fetchall()) for (t,) in tables
        ).lower()


def test_export_then_erase_then_replays_are_dropped(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "xavier.zip"
    exported = runner.invoke(
        app, ["privacy", "export", f"email:{XAVIER_SENT[0]}", "--to", str(out), "--db", str(db)]
    )
    assert exported.exit_code == 0, exported.output
    with zipfile.ZipFile(out) as archive:
        assert len(orjson.loads(archive.read("person.json"))["events"]) == 5

    erased = runner.invoke(
        app, ["privacy", "erase", f"email:{XAVIER_SENT[0]}", "--reason", "art. 17", "--db", str(db)]
    )
    assert erased.exit_code == 0, erased.output
    assert "verified: nothing left" in erased.stdout
    assert "events" in erased.stdout
    text = _dump(db)
    assert [v for v in [*XAVIER_SENT, *XAVIER_VALUES] if v.lower() in text] == []
    assert "bianca@example.org" in text

    with Store(db) as store:
        replay = Ingestor(store, load_settings(db=db)).ingest(xavier_events(), WEB)
    assert replay.dropped == 5
    listed = runner.invoke(app, ["privacy", "suppressions", "--db", str(db)])
    assert listed.exit_code == 0, listed.output
    for kind in ("email", "phone", "user_id", "anonymous_id"):
        assert kind in listed.stdout


def test_anonymise_and_purge(db: Path) -> None:
    dry = runner.invoke(
        app,
        ["privacy", "purge", "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z",
         "--dry-run", "--db", str(db)],
    )  # fmt: skip
    assert dry.exit_code == 0, dry.output
    assert "Would purge 8 events" in dry.stdout
    anonymised = runner.invoke(
        app, ["privacy", "anonymise", "email:bianca@example.org", "--db", str(db)]
    )
    assert anonymised.exit_code == 0, anonymised.output
    assert "anonymise" in anonymised.stdout and "verified" in anonymised.stdout
    purged = runner.invoke(
        app,
        ["privacy", "purge", "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z",
         "--source", "web", "--db", str(db)],
    )  # fmt: skip
    assert purged.exit_code == 0 and "Purged 8 events" in purged.stdout


def test_errors_are_one_clear_line(db: Path) -> None:
    naive = runner.invoke(
        app, ["privacy", "purge", "--from", "2026-01-01", "--to", "2026-02-01Z", "--db", str(db)]
    )
    assert naive.exit_code != 0 and "time zone" in naive.output
    unknown = runner.invoke(app, ["privacy", "erase", "p_00000000deadbeef", "--db", str(db)])
    assert unknown.exit_code != 0 and "no profile" in unknown.output
