"""The database file: migrations once and in order, and a clear error when it is taken."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from opencx.errors import StoreUnavailable
from opencx.store import MIGRATIONS, Store, schema_version

TABLES = {
    "events", "failed_events", "identities", "profile_merges", "identity_conflicts",
    "identity_blocks", "profiles", "sources", "tokens", "users", "sessions", "schema_migrations",
}  # fmt: skip


def test_migrations_create_every_table_once(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    with Store(db) as store:
        names = {
            r[0] for r in store.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        assert names >= TABLES
    with Store(db) as store:  # reopening applies nothing twice
        rows = store.con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        assert [v for (v,) in rows] == [m[0] for m in MIGRATIONS]
        assert schema_version(store.con) == MIGRATIONS[-1][0]


def test_a_database_held_by_another_process_gives_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "held.duckdb"
    Store(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('held', flush=True); "
         "time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreUnavailable, match="in use by another process"):
            Store(db)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    time.sleep(0.1)
    Store(db).close()  # free again once the other process is gone
