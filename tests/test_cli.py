"""The command line, end to end on a database file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from opencx.access import source_for_write_key, token_for_secret
from opencx.cli import app
from opencx.store import Store

runner = CliRunner()


def run(*args: str, input: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=input)
    assert result.exit_code == 0, result.output
    return result.output


def flat(text: str) -> str:
    """Output with Rich's line wrapping undone."""
    return " ".join(text.split())


def test_sources_and_tokens_print_their_secret_on_the_last_line(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    key = run("sources", "add", "website", "--channel", "web", "--db", db).strip().splitlines()[-1]
    token = run("tokens", "create", "crm", "--role", "agent", "--db", db).strip().splitlines()[-1]
    with Store(db) as store:
        assert source_for_write_key(store.con, key) is not None
        found = token_for_secret(store.con, token)
        assert found is not None and found.role == "agent"
    assert "website" in run("sources", "list", "--db", db)
    assert "crm" in run("tokens", "list", "--db", db)


def test_errors_are_one_clear_line_and_an_exit_code(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    result = runner.invoke(app, ["tokens", "create", "x", "--role", "root", "--db", db])
    assert result.exit_code == 2
    assert "role must be one of admin, analyst, agent" in result.output
    result = runner.invoke(app, ["profile", "email:nobody@example.com", "--db", db])
    assert result.exit_code == 4 and "no profile" in result.output


def test_import_profile_rebuild_split_and_failed_events(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    run("sources", "add", "contact-center", "--channel", "phone", "--db", db)
    calls = tmp_path / "calls.csv"
    calls.write_text(
        "kind,caller,email,at,topic\n"
        "Call Started,(555) 123-4567,ana@example.com,2026-11-20 10:00,billing\n"
        "Call Ended,555-123-4567,,2026-11-20 10:05,billing\n"
        ",555-123-4567,,2026-11-20 10:06,billing\n"
    )
    out = run("import", str(calls), "--source", "contact-center", "--map", "event=kind",
              "--map", "phone=caller", "--map", "email=email", "--map", "timestamp=at",
              "--map", "properties.topic=topic", "--db", db)  # fmt: skip
    assert "3 rows: 2 stored, 0 already stored, 1 rejected" in flat(out)
    profile = run("profile", "phone:+1 555 123 4567", "--db", db)
    assert "ana@example.com" in profile and "Call Ended" in profile
    assert "0 events changed profile" in flat(run("identity", "rebuild", "--db", db))
    assert "required" in run("failed-events", "list", "--db", db)
    assert "1 examined: 0 stored" in flat(run("failed-events", "replay", "--db", db))
    pid = profile.split("profile", 1)[1].split()[0]
    out = flat(run("identity", "split", pid, "email:ana@example.com", "--db", db))
    assert "email:ana@example.com" in out and "blocked" in out


def test_users_add_reads_the_password_from_stdin(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    run("users", "add", "Ana@Example.com", "--role", "admin", "--password-stdin", "--db", db,
        input="correct horse battery\n")  # fmt: skip
    assert "ana@example.com" in run("users", "list", "--db", db)
    run("users", "disable", "ana@example.com", "--db", db)
    assert "disabled" in run("users", "list", "--db", db)


def test_demo_loads_the_sample_brand_once(tmp_path: Path) -> None:
    db = str(tmp_path / "x.duckdb")
    out = run("demo", "--customers", "20", "--db", db)
    assert "Northwind Mobile" in out and "Sign in as admin: admin@northwind.example" in flat(out)
    assert "already loaded" in flat(run("demo", "--customers", "20", "--db", db))
    assert "0.1.0" in run("version")
