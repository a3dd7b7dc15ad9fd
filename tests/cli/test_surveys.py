"""A survey export (CSV with email, score, comment, date) imports through the normal path."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from opencx.access import add_source
from opencx.cli import app
from opencx.store import Store
from opencx.voc import list_cases

runner = CliRunner()
EXPORT = (
    "Email,Score,Comment,Date\n"
    "ana@example.com,9,Great service,2026-11-02\n"
    "bo@example.com,3,The app reset never worked,2026-11-03\n"
    "cy@example.com,11,typo in the export,2026-11-04\n"  # out of range: refused, row 4
)


def test_a_survey_export_is_imported_checked_and_closes_the_loop(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with Store(db) as store:
        add_source(store.con, "surveys", "email")
    export = tmp_path / "nps.csv"
    export.write_text(EXPORT)
    args = [
        "import", str(export), "--source", "surveys", "--db", str(db),
        "--map", "email=Email", "--map", "properties.score=Score",
        "--map", "properties.comment=Comment", "--map", "timestamp=Date",
        "--set", "event=Survey Responded", "--set", "properties.survey_type=nps",
        "--set", "properties.survey_id=nps-export", "--set", "properties.touchpoint=relationship",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 rows: 2 stored, 0 already stored, 1 rejected" in result.stdout
    assert "1 closed-loop cases opened" in result.stdout
    with Store(db) as store:
        [failure] = store.con.execute("SELECT row_number, errors FROM failed_events").fetchall()
        assert failure[0] == 4 and "11 is out of range for nps (0-10)" in failure[1]
        [case] = list_cases(store.con)
        assert case.score == 3 and case.reason == "NPS 3 (≤ 6)"
    again = runner.invoke(app, args)
    assert "0 stored, 2 already stored" in again.stdout
