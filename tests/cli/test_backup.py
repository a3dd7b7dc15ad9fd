"""`opencx backup --to FILE` and `opencx restore FILE`: exit codes and one clear line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from opencx.cli import app
from opencx.config import load_settings
from opencx.ingest import Ingestor, SourceContext
from opencx.store import Store

runner = CliRunner()


def _brand(db: Path) -> None:
    with Store(db) as store:
        Ingestor(store, load_settings(db=db, profiles_refresh_s=0)).ingest(
            [{"type": "identify", "messageId": f"m{i}", "userId": f"u{i}",
              "traits": {"email": f"p{i}@example.com"}} for i in range(20)],
            SourceContext("crm", "web"),
        )  # fmt: skip


def test_backup_then_restore_into_a_new_file(tmp_path: Path) -> None:
    db, file, restored = tmp_path / "a.duckdb", tmp_path / "a.zip", tmp_path / "b.duckdb"
    _brand(db)
    made = runner.invoke(app, ["backup", "--to", str(file), "--db", str(db)])
    assert made.exit_code == 0, made.output
    assert "20 events" in made.output
    done = runner.invoke(app, ["restore", str(file), "--db", str(restored)])
    assert done.exit_code == 0, done.output
    assert "20 events" in done.output and "checked against the manifest" in done.output
    with Store(restored) as store:
        assert store.con.execute("SELECT count(*) FROM identities").fetchall() == [(40,)]


def test_restore_over_data_needs_force(tmp_path: Path) -> None:
    db, file = tmp_path / "a.duckdb", tmp_path / "a.zip"
    _brand(db)
    assert runner.invoke(app, ["backup", "--to", str(file), "--db", str(db)]).exit_code == 0
    refused = runner.invoke(app, ["restore", str(file), "--db", str(db)])
    assert refused.exit_code == 5
    assert "already holds data" in refused.output and "--force" in refused.output
    forced = runner.invoke(app, ["restore", str(file), "--db", str(db), "--force"])
    assert forced.exit_code == 0, forced.output


def test_a_damaged_backup_is_refused_with_a_clear_line(tmp_path: Path) -> None:
    db, file = tmp_path / "a.duckdb", tmp_path / "a.zip"
    _brand(db)
    assert runner.invoke(app, ["backup", "--to", str(file), "--db", str(db)]).exit_code == 0
    file.write_bytes(file.read_bytes()[:-200])
    result = runner.invoke(app, ["restore", str(file), "--db", str(tmp_path / "new.duckdb")])
    assert result.exit_code == 2
    assert "truncated or not an OpenCX backup" in result.output
    assert not (tmp_path / "new.duckdb").exists()


def test_backup_of_a_missing_database_says_so(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["backup", "--to", str(tmp_path / "x.zip"), "--db", str(tmp_path / "none.duckdb")]
    )
    assert result.exit_code == 7
    assert "cannot open database" in result.output
    assert not (tmp_path / "x.zip").exists()
