"""The database file: migrations once and in order, a clear error when it is taken, and
the memory DuckDB may use."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from pydantic import ValidationError

import opencx.store._connection as connection
from opencx.access import add_source, source_for_write_key
from opencx.config import load_settings
from opencx.errors import InvalidInput, StoreUnavailable
from opencx.store import MEMORY, MIGRATIONS, Store, migrate, schema_version

CORE_TABLES = {
    "events", "failed_events", "identities", "profile_merges", "identity_conflicts",
    "identity_blocks", "profiles", "sources", "tokens",
}  # fmt: skip
LATEST = MIGRATIONS[-1][0]


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def applied(con: duckdb.DuckDBPyConnection) -> list[int]:
    rows = con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    return [version for (version,) in rows]


@contextmanager
def held_by_another_process(db: Path) -> Iterator[None]:
    """Another process with the database file open (as `opencx serve` would have it)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('held', flush=True); "
         "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_migrations_create_every_table(tmp_path: Path) -> None:
    with Store(tmp_path / "x.duckdb") as store:
        assert table_names(store.con) >= CORE_TABLES | {"schema_migrations"}
        views = store.con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal")
        assert ("resolved_events",) in views.fetchall()
        assert applied(store.con) == [version for version, _, _ in MIGRATIONS]
        assert schema_version(store.con) == LATEST


def test_migration_versions_are_increasing_and_named() -> None:
    versions = [version for version, _, _ in MIGRATIONS]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert all(name.strip() and sql.strip() for _, name, sql in MIGRATIONS)


def test_an_in_memory_store_is_migrated_too() -> None:
    with Store() as store:
        assert store.path == MEMORY
        assert table_names(store.con) >= CORE_TABLES
        assert schema_version(store.con) == LATEST


def test_reopening_applies_nothing_twice_and_keeps_the_data(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    with Store(db) as store:
        _, key = add_source(store.con, "website", "web")
        first_applied = store.con.execute("SELECT * FROM schema_migrations ORDER BY 1").fetchall()
    for _ in range(2):
        with Store(db) as store:
            rows = store.con.execute("SELECT * FROM schema_migrations ORDER BY 1").fetchall()
            assert rows == first_applied  # one row per version, same apply times
            assert migrate(store.con) == LATEST
            assert applied(store.con) == [version for version, _, _ in MIGRATIONS]
            assert source_for_write_key(store.con, key) is not None


def test_migrate_applies_only_what_is_missing() -> None:
    con = duckdb.connect()
    assert schema_version(con) == 0
    version, name, sql = MIGRATIONS[0]
    con.execute(sql)
    con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
    assert "users" not in table_names(con)
    assert migrate(con) == LATEST
    assert "users" in table_names(con)
    assert applied(con) == [v for v, _, _ in MIGRATIONS]
    con.close()


def test_a_failing_migration_leaves_no_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    # The second statement fails at run time, after the first has created its table.
    sql = "CREATE TABLE half_done (x INTEGER); INSERT INTO nope VALUES (1)"
    broken = (LATEST + 1, "broken", sql)
    monkeypatch.setattr(connection, "MIGRATIONS", (*MIGRATIONS, broken))
    con = duckdb.connect()
    with pytest.raises(duckdb.CatalogException):
        migrate(con)
    assert schema_version(con) == LATEST  # the good migrations stay applied
    assert "half_done" not in table_names(con)
    con.close()


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "x.duckdb"
    with Store(db) as store:
        assert store.path == str(db)
    assert db.is_file()


def test_sessions_are_in_utc_on_every_thread() -> None:
    with Store() as store:
        assert store.con.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
        mine = store.cursor()
        assert store.cursor() is mine  # one cursor per thread, reused
        seen: dict[str, object] = {}

        def other_thread() -> None:
            cur = store.cursor()
            seen["same"] = cur is mine
            seen["tz"] = cur.execute("SELECT current_setting('TimeZone')").fetchone()

        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        assert seen == {"same": False, "tz": ("UTC",)}


def test_a_read_only_store_reads_but_does_not_write(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    with Store(db) as store:
        add_source(store.con, "website", "web")
    with Store(db, read_only=True) as store:
        assert store.con.execute("SELECT name FROM sources").fetchall() == [("website",)]
        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            add_source(store.con, "kiosk", "store")


def test_a_database_held_by_another_process_gives_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "held.duckdb"
    Store(db).close()
    with held_by_another_process(db), pytest.raises(StoreUnavailable) as caught:
        Store(db)
    error = caught.value
    assert str(db) in error.message
    assert "in use by another process" in error.message and "opencx serve" in error.message
    assert (error.status_code, error.exit_code) == (503, 7)
    assert isinstance(error.__cause__, duckdb.IOException)
    Store(db).close()  # free again once the other process is gone


def test_a_path_that_is_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(StoreUnavailable, match=rf"cannot open database {folder}"):
        Store(folder)


# -- memory limit and spill folder ---------------------------------------------------
def current(con: duckdb.DuckDBPyConnection, setting: str) -> str:
    return str(con.execute("SELECT current_setting(?)", [setting]).fetchall()[0][0])


def test_the_memory_limit_applies_to_every_cursor(tmp_path: Path) -> None:
    with Store(tmp_path / "x.duckdb", memory_limit="512MiB") as store:
        assert current(store.con, "memory_limit") == "512.0 MiB"
        seen: list[str] = []
        worker = threading.Thread(
            target=lambda: seen.append(current(store.cursor(), "memory_limit"))
        )
        worker.start()
        worker.join()
        assert seen == ["512.0 MiB"]  # database-wide, not per connection


def test_without_a_limit_duckdb_keeps_its_own_default() -> None:
    with Store() as default, Store(memory_limit="1GB") as bounded:
        assert current(bounded.con, "memory_limit") == "953.6 MiB"  # 10^9 bytes
        assert current(default.con, "memory_limit") != "953.6 MiB"  # each database its own


def test_store_for_settings_applies_the_configured_limits(tmp_path: Path) -> None:
    settings = load_settings(
        db=tmp_path / "x.duckdb", memory_limit="256MiB", temp_directory=tmp_path / "spill"
    )
    with Store.for_settings(settings) as store:
        assert store.path == str(tmp_path / "x.duckdb")
        assert current(store.con, "memory_limit") == "256.0 MiB"
        assert current(store.con, "temp_directory") == str(tmp_path / "spill")
    with Store.for_settings(settings, read_only=True) as store:
        assert current(store.con, "memory_limit") == "256.0 MiB"


def test_a_query_bigger_than_the_limit_spills_to_the_temp_directory(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    with Store(tmp_path / "x.duckdb", memory_limit="64MiB", temp_directory=spill) as store:
        # ~100 MB of strings sorted and counted under a 64 MiB limit.
        rows = store.con.execute(
            "SELECT count(DISTINCT s) FROM "
            "(SELECT md5(range::VARCHAR) AS s FROM range(1500000) ORDER BY s)"
        ).fetchall()
        assert rows == [(1_500_000,)]
        assert spill.is_dir()  # DuckDB made the folder only once it had to spill


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("lots", "must be a size such as 2GB or 512MiB, or a percentage"),
        ("2", "must be a size such as 2GB"),
        ("-1GB", "must be a size such as 2GB"),
        ("0%", "must be a percentage above 0 and at most 100%"),
        ("150%", "must be a percentage above 0 and at most 100%"),
        ("1MB", "must be at least 64MB"),
    ],
)
def test_a_bad_memory_limit_setting_names_the_setting(value: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_settings(memory_limit=value)
    assert f"memory_limit {value!r} {says}" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "duckdb_says"),
    [("2GB", "1.8 GiB"), ("512 MiB", "512.0 MiB"), ("1.5gb", "1.3 GiB"), ("100%", None)],
)
def test_good_memory_limit_settings_reach_duckdb(value: str, duckdb_says: str | None) -> None:
    settings = load_settings(memory_limit=value)
    with Store(memory_limit=settings.memory_limit) as store:
        if duckdb_says is not None:
            assert current(store.con, "memory_limit") == duckdb_says
        else:  # all the memory DuckDB sees: more than any of the others
            assert current(store.con, "memory_limit").endswith("GiB")


def test_a_limit_duckdb_refuses_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match=r"memory_limit 'lots' is refused by DuckDB"):
        Store(memory_limit="lots")


def test_usage_reports_memory_by_tag_and_the_database_size(tmp_path: Path) -> None:
    with Store(tmp_path / "x.duckdb", memory_limit="256MiB") as store:
        store.con.execute("CREATE TABLE t AS SELECT range AS n FROM range(300000)")
        store.con.execute("CHECKPOINT")
        usage = store.usage()
        assert usage.memory_limit == "256.0 MiB"
        tags = {t.tag: t for t in usage.tags}
        assert {"BASE_TABLE", "HASH_TABLE", "ORDER_BY"} <= tags.keys()
        assert usage.memory_bytes == sum(t.memory_bytes for t in usage.tags) > 0
        assert usage.block_size > 0 and 0 < usage.used_bytes <= usage.file_bytes
        assert usage.file_bytes <= (tmp_path / "x.duckdb").stat().st_size
        assert usage.wal_bytes == 0  # just checkpointed
        store.con.execute("INSERT INTO t VALUES (1)")
        assert store.usage().wal_bytes > 0
    with Store() as memory:
        assert (memory.usage().file_bytes, memory.usage().wal_bytes) == (0, 0)


def test_usage_of_an_invalidated_database_says_so(tmp_path: Path) -> None:
    with Store(tmp_path / "x.duckdb") as store:
        store.con.execute("CREATE TABLE t AS SELECT range AS n FROM range(1000)")
        store.con.execute("SET debug_checkpoint_abort = 'before_header'")
        with pytest.raises(duckdb.FatalException):
            store.con.execute("CHECKPOINT")
        with pytest.raises(StoreUnavailable, match="invalidated"):
            store.usage()
