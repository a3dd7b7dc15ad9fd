"""`opencx journeys ...` and `opencx touchpoints ...` on a database file."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from opencx.cli import app
from opencx.store import Store
from tests.journeys.conftest import write_events
from tests.journeys.test_diagnostics import brand

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "cli.duckdb"
    with Store(path) as store:
        write_events(store, brand(broken_app=True, people=300))
    return path


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_funnel_prints_a_chart_and_json(db: Path) -> None:
    steps = ["--step", "Password Reset Started", "--step", "Password Reset Completed|channel=web"]
    out = run("journeys", "funnel", *steps, "--window", "1d", "--by", "channel", "--db", str(db))
    assert "1. Password Reset Started" in out and "█" in out and "channel = app" in out
    data = orjson.loads(run("journeys", "funnel", *steps, "--json", "--db", str(db)))
    overall = [r for r in data["rows"] if r["group"] is None]
    assert overall[0]["entered"] > 100 and overall[1]["entered"] > 0


def test_bad_funnel_input_is_one_clear_line(db: Path) -> None:
    result = runner.invoke(app, ["journeys", "funnel", "--step", "A", "--db", str(db)])
    assert result.exit_code == 2 and "2 to 12 steps" in result.stderr
    result = runner.invoke(
        app, ["journeys", "funnel", "--step", "A|oops", "--step", "B", "--db", str(db)]
    )
    assert result.exit_code == 2 and "KEY=VALUE" in result.stderr


def test_diagnostics_rank_the_broken_touchpoint_first(db: Path) -> None:
    out = run("journeys", "diagnostics", "--db", str(db))
    first = out.split("\n2.")[0]
    assert "1. Password Reset Started (app)" in first and "confidence high" in first
    assert "Example customers for #1: p" in out
    data = orjson.loads(run("journeys", "diagnostics", "--json", "--db", str(db)))
    assert data[0]["touchpoint"] == "password_reset_started@app"


def test_paths_transitions_and_cohorts(db: Path) -> None:
    paths = run("journeys", "paths", "--touchpoint", "password_reset_started@app", "--db", str(db))
    assert "password_reset_started@app →" in paths
    assert "(start)" in run("journeys", "transitions", "--db", str(db))
    cohorts = orjson.loads(run("journeys", "cohorts", "--json", "--db", str(db)))
    assert cohorts[0]["retention"][0] == 1.0


def test_touchpoints_and_designs_from_files(db: Path, tmp_path: Path) -> None:
    shown = run("touchpoints", "show", "--db", str(db))
    assert "password_reset_started@app" in shown
    edited = tmp_path / "tp.yaml"
    edited.write_text(shown.replace("stage: service", "stage: usage"))
    assert "Saved" in run("touchpoints", "set", str(edited), "--db", str(db))
    assert "stage: service" not in run("touchpoints", "show", "--db", str(db))
    assert "stage: service" in run("touchpoints", "infer", "--db", str(db))
    assert "removed" in run("touchpoints", "reset", "--db", str(db))
    design = tmp_path / "design.yaml"
    design.write_text(
        "name: Reset\nstages:\n  - name: Reset\n    touchpoints: [password_reset_started@app]\n"
        "    targets: {effort: 0.01}\n  - name: Back\n    touchpoints: [product_viewed@app]\n"
    )
    assert "Saved 'Reset'" in run("journeys", "design", "set", str(design), "--db", str(db))
    assert "Reset: Reset → Back" in run("journeys", "design", "list", "--db", str(db))
    compared = run("journeys", "design", "compare", "Reset", "--db", str(db))
    assert "contact us" in compared
    missing = runner.invoke(app, ["journeys", "design", "compare", "Nope", "--db", str(db)])
    assert missing.exit_code == 4 and "no designed journey named 'Nope'" in missing.stderr
    unreadable = runner.invoke(
        app, ["touchpoints", "set", str(tmp_path / "no.yaml"), "--db", str(db)]
    )
    assert unreadable.exit_code == 2 and "cannot read" in unreadable.stderr
