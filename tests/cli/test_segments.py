"""`opencx segments refresh` and `opencx consistency` on a database file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from opencx.cli import app
from opencx.journeys import save_touchpoint_model
from opencx.segments import save_segment
from opencx.store import Store
from tests.journeys.conftest import T0, write_events

runner = CliRunner()
NOW_H = (datetime.now(UTC) - T0).total_seconds() / 3600  # write_events' hours for "now"


def test_refresh_writes_traits_then_members(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    with Store(db) as store:
        write_events(store, [
            ("p1", NOW_H - 5, "Password Reset Failed", "app"),
            ("p1", NOW_H - 4.5, "Call Started", "phone", {"topic": "password"}),
            ("p2", NOW_H - 3, "Order Completed", "web", {"revenue": 5}),
        ])  # fmt: skip
        save_segment(store.con, {"name": "hoppers", "rule": "effort_channel_hops_90d >= 1"})
        save_segment(store.con, {"name": "buyers", "rule": "orders > 0"})
    result = runner.invoke(app, ["segments", "refresh", "--db", str(db)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "2 segments refreshed, 10 computed traits written" in result.stdout
    with Store(db) as store:
        members = store.con.execute(
            "SELECT segment, person_id FROM segment_members ORDER BY 1, 2"
        ).fetchall()
    assert members == [("buyers", "p2"), ("hoppers", "p1")]


def test_consistency_prints_each_stage_and_the_lagging_channel(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    scores = {"billing@chat": [2] * 40, "billing@phone": [6] * 40}
    with Store(db) as store:
        model = [
            "- {id: billing@chat, name: Chat, event: Chat Ended, channel: chat, stage: service}",
            "- {id: billing@phone, name: Call, event: Call Ended, channel: phone, stage: service}",
        ]
        save_touchpoint_model(store.con, "touchpoints:\n" + "\n".join(model) + "\n")
        write_events(store, [
            (f"{tp}-{i}", i, "Survey Responded", "email",
             {"survey_type": "ces", "score": s, "touchpoint": tp})
            for tp, values in scores.items() for i, s in enumerate(values)
        ])  # fmt: skip
    result = runner.invoke(app, ["consistency", "--kind", "ces", "--db", str(db)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "service" in result.stdout and "█" in result.stdout and "lags" in result.stdout
    assert "CES for service in chat is 2.0 vs 6.0 on the other channels" in result.stdout
    refused = runner.invoke(app, ["consistency", "--kind", "smiles", "--db", str(db)])
    assert refused.exit_code != 0 and "--kind must be nps, csat or ces" in refused.output
