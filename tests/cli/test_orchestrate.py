"""`opencx triggers|policy|actions|nba|decisions|tasks` on a small store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from opencx.cli import app
from opencx.config import load_settings
from opencx.ingest import Ingestor, SourceContext
from opencx.store import Store
from tests.voc.conftest import person

runner = CliRunner()
TRIGGER = """
id: thanks
when: {event: Order Completed}
action: {type: message, channel: sms, purpose: service, text: "Thanks $first_name"}
"""


def _store_with_jane(db: Path) -> None:
    with Store(db) as store:
        ingestor = Ingestor(store, load_settings(db=db))
        person(ingestor, "jane", first_name="Jane", phone="+1 415 555 0100")


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_trigger_round_from_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "o.duckdb"
    _store_with_jane(db)
    file = tmp_path / "t.yaml"
    file.write_text(TRIGGER)
    assert "Saved trigger thanks (message)" in invoke("triggers", "set", str(file), "--db", str(db))
    assert "Order Completed" in invoke("triggers", "list", "--db", str(db))
    assert "id: thanks" in invoke("triggers", "show", "thanks", "--db", str(db))
    with Store(db) as store:
        Ingestor(store, load_settings(db=db)).ingest(
            [{"type": "track", "userId": "jane", "event": "Order Completed",
              "timestamp": datetime.now(UTC).isoformat(),
              "context": {"timezone": "Pacific/Kiritimati"}}],
            SourceContext("web", "web"),
        )  # fmt: skip
    ran = invoke("triggers", "run", "--db", str(db))
    assert "thanks: 1 to act on" in ran
    decisions = invoke("decisions", "--db", str(db))
    assert "thanks" in decisions and "sms" in decisions
    assert "1 to act on" not in invoke("triggers", "run", "--db", str(db))
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nwhen: {event: A}\naction: {type: message}")
    refused = runner.invoke(app, ["triggers", "set", str(bad), "--db", str(db)])
    assert refused.exit_code != 0 and "needs text" in refused.output


def test_policy_show_set_and_simulate(tmp_path: Path) -> None:
    db = tmp_path / "p.duckdb"
    _store_with_jane(db)
    assert "budget:" in invoke("policy", "show", "--db", str(db))
    tried = tmp_path / "policy.yaml"
    tried.write_text("budget: {max: 1, per: 3d}\n")
    report = invoke("policy", "simulate", "--days", "30", "--policy", str(tried), "--db", str(db))
    assert "0 contacts to 0 people" in report
    assert "Saved the contact policy" in invoke("policy", "set", str(tried), "--db", str(db))
    assert "per: 3d" in invoke("policy", "show", "--db", str(db))


def test_next_best_action_and_the_catalogue(tmp_path: Path) -> None:
    db = tmp_path / "n.duckdb"
    _store_with_jane(db)
    assert "id" in invoke("actions", "show", "--db", str(db))
    answer = invoke("nba", "user_id:jane", "--channel", "phone", "--db", str(db))
    assert answer.strip()
    missing = runner.invoke(app, ["nba", "email:nobody@example.com", "--db", str(db)])
    assert missing.exit_code != 0 and "no profile" in missing.output
    assert "task" in invoke("tasks", "--db", str(db))
