"""The incremental Parquet export: only changed days are rewritten, and it equals a full one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from opencx.cli import app
from opencx.store import Store
from opencx.warehouse import MANIFEST, export_parquet, sync_parquet
from tests.journeys.conftest import write_events, write_profiles

DAY = 24.0  # hours: T0 is 2026-03-02 09:00 UTC


def _rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    """Everything a reader of the export sees in one table, partition column included."""
    hive = "true" if table == "analytics_events" else "false"
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(
            f"SELECT * FROM read_parquet('{path / table}/**/*.parquet', "
            f"hive_partitioning = {hive}) ORDER BY ALL"
        ).fetchall()


def _stamps(path: Path) -> dict[str, int]:
    """Every Parquet file and its inode + mtime: a rewrite changes both."""
    return {
        str(p.relative_to(path)): p.stat().st_ino * 10**12 + p.stat().st_mtime_ns % 10**12
        for p in path.rglob("*.parquet")
    }


def _same_as_full_export(con: duckdb.DuckDBPyConnection, folder: Path, scratch: Path) -> None:
    export_parquet(con, scratch)
    for table in ("analytics_events", "analytics_profiles", "computed_traits", "identity_edges"):
        assert _rows(folder, table) == _rows(scratch, table), table


def test_a_second_run_with_nothing_new_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    with Store() as store:
        write_events(
            store, [("p1", 0, "A", "web"), ("p1", DAY, "B", "app"), ("p2", 2 * DAY, "A", "web")]
        )
        write_profiles(store, {"p1": {"tier": "gold"}, "p2": {}})
        first = sync_parquet(store.con, folder)
        assert first.written_days == ["2026-03-02", "2026-03-03", "2026-03-04"]
        assert first.events == 3 and set(first.written_tables) == {
            "analytics_profiles", "computed_traits", "identity_edges"
        }  # fmt: skip
        before = _stamps(folder)
        again = sync_parquet(store.con, folder)
        assert not again.wrote_anything and again.unchanged_days == 3
        assert _stamps(folder) == before
        _same_as_full_export(store.con, folder, tmp_path / "full")


def test_new_and_late_events_rewrite_only_their_days(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    with Store() as store:
        write_events(
            store, [("p1", 0, "A", "web"), ("p1", DAY, "B", "app"), ("p2", 2 * DAY, "A", "web")]
        )
        sync_parquet(store.con, folder)
        before = _stamps(folder)
        # A late event for the first day and one for a new day; the middle day is untouched.
        write_events(store, [("p3", 1, "C", "web"), ("p3", 5 * DAY, "D", "web")], seq_start=10)
        report = sync_parquet(store.con, folder)
        assert report.written_days == ["2026-03-02", "2026-03-07"]
        # p3 is a new identifier set: the identity edges change too.
        assert report.unchanged_days == 2 and report.written_tables == ["identity_edges"]
        after = _stamps(folder)
        middle = "analytics_events/day=2026-03-03/data_0.parquet"
        assert after[middle] == before[middle]
        assert (
            after["analytics_events/day=2026-03-02/data_0.parquet"]
            != before["analytics_events/day=2026-03-02/data_0.parquet"]
        )
        manifest = json.loads((folder / MANIFEST).read_text())
        assert manifest["days"]["2026-03-02"]["rows"] == 2
        assert manifest["days"]["2026-03-02"]["max_seq"] == 10
        _same_as_full_export(store.con, folder, tmp_path / "full")


def test_a_merge_rewrites_the_days_of_the_absorbed_profile(tmp_path: Path) -> None:
    """person_id follows merges, so old days change without any new event in them."""
    folder = tmp_path / "export"
    with Store() as store:
        write_events(
            store, [("p1", 0, "A", "web"), ("p2", DAY, "B", "app"), ("p1", 2 * DAY, "C", "web")]
        )
        sync_parquet(store.con, folder)
        store.con.execute(
            "INSERT INTO profile_merges VALUES ('p2', 'p1', 'p1', 99, 'm99', 'email:x@y.z')"
        )
        report = sync_parquet(store.con, folder)
        assert report.written_days == ["2026-03-03"]
        assert {r[0] for r in _rows(folder, "analytics_events")} == {"p1"}
        _same_as_full_export(store.con, folder, tmp_path / "full")


def test_days_without_events_any_more_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    with Store() as store:
        write_events(store, [("p1", 0, "A", "web"), ("p2", DAY, "B", "app")])
        sync_parquet(store.con, folder)
        store.con.execute("DELETE FROM events WHERE user_id = 'p2'")
        report = sync_parquet(store.con, folder)
        assert report.removed_days == ["2026-03-03"] and report.written_days == []
        assert not (folder / "analytics_events" / "day=2026-03-03").exists()
        _same_as_full_export(store.con, folder, tmp_path / "full")


def test_a_full_export_without_manifest_is_taken_over(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    with Store() as store:
        write_events(store, [("p1", 0, "A", "web")])
        export_parquet(store.con, folder)
        (folder / "analytics_events" / "day=2020-01-01").mkdir()  # a stray old partition
        report = sync_parquet(store.con, folder)
        assert report.written_days == ["2026-03-02"] and report.removed_days == ["2020-01-01"]
        assert not sync_parquet(store.con, folder).wrote_anything


def test_a_broken_manifest_means_a_full_rewrite(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    with Store() as store:
        write_events(store, [("p1", 0, "A", "web"), ("p1", DAY, "B", "web")])
        sync_parquet(store.con, folder)
        (folder / MANIFEST).write_text("{not json")
        assert sync_parquet(store.con, folder).written_days == ["2026-03-02", "2026-03-03"]


def test_profile_and_trait_changes_rewrite_those_tables(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    with Store() as store:
        write_events(store, [("p1", 0, "A", "web")])
        write_profiles(store, {"p1": {"tier": "gold"}})
        sync_parquet(store.con, folder)
        store.con.execute("INSERT INTO computed_traits VALUES ('p1', 'effort_x', '3'::JSON, now())")
        report = sync_parquet(store.con, folder)
        assert report.written_tables == ["computed_traits"] and report.written_days == []
        _same_as_full_export(store.con, folder, tmp_path / "full")


def test_the_cli_exports_and_says_what_it_wrote(tmp_path: Path) -> None:
    db = tmp_path / "opencx.duckdb"
    with Store(db) as store:
        write_events(store, [("p1", 0, "A", "web"), ("p1", DAY, "B", "web")])
    runner = CliRunner()
    out = tmp_path / "parquet"
    first = runner.invoke(app, ["export", "parquet", "--to", str(out), "--db", str(db)])
    assert first.exit_code == 0, first.output
    assert "2 day partitions written" in first.output and "2 events" in first.output
    second = runner.invoke(app, ["export", "parquet", "--to", str(out), "--db", str(db)])
    assert second.exit_code == 0 and "up to date" in second.output
    assert len(_rows(out, "analytics_events")) == 2


@pytest.mark.parametrize("bad", ["  ", "\t"])
def test_the_cli_needs_a_folder(tmp_path: Path, bad: str) -> None:
    result = CliRunner().invoke(
        app, ["export", "parquet", "--to", bad, "--db", str(tmp_path / "x.duckdb")]
    )
    assert result.exit_code != 0
    assert "--to" in result.output
