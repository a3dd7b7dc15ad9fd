"""Backup and restore: a round trip gives the same database; a damaged backup is refused."""

from __future__ import annotations

import threading
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from opencx.config import Settings, load_settings
from opencx.demo import load_demo
from opencx.errors import Conflict, InvalidInput
from opencx.identity import load_graph, rebuild
from opencx.ingest import Ingestor, SourceContext
from opencx.journeys import FunnelQuery, run_funnel
from opencx.orchestrate.decisions import gate
from opencx.orchestrate.policy import Proposal, parse_policy
from opencx.profiles import get_profile, refresh_profiles, timeline
from opencx.store import MIGRATIONS, Store
from opencx.store.backup import create_backup, read_manifest, restore_backup, verify_backup
from opencx.warehouse import embedded

WEB = SourceContext("web", "web")
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def _settings(db: Path) -> Settings:
    return load_settings(db=db, profiles_refresh_s=0, orchestrate_every_s=0, segments_every_s=0)


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small brand: events, identities and merges, profiles, cases, decisions, documents."""
    db = tmp_path_factory.mktemp("original") / "brand.duckdb"
    settings = _settings(db)
    with Store(db) as store:
        load_demo(store, settings, customers=30, seed=5)
        people = [p for (p,) in store.con.execute("SELECT profile_id FROM profiles").fetchall()]
        policy = parse_policy("budget: {max: 1, per: 7d}")
        gate(
            store,
            [
                Proposal(p, "delivery-update", "email", "service", NOW, f"k-{n}", 0, "t", "c")
                for n, p in enumerate(people[:12])
            ],
            policy,
            NOW,
        )
        ingestor = Ingestor(store, settings)
        ingestor.ingest([{"type": "track", "messageId": "bad", "userId": 5}], WEB)  # a failure
        refresh_profiles(store.con)
    return db


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY 1"
        ).fetchall()
    ]


def _contents(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: con.execute(f'SELECT * FROM "{name}" ORDER BY ALL').fetchall()
        for name in _tables(con)
        if name != "schema_migrations"
    }


def _views(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {
        name: con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
        for name in ("resolved_events", "analytics_events", "analytics_profiles")
    }


def test_a_restored_backup_is_the_same_database(original: Path, tmp_path: Path) -> None:
    file = tmp_path / "brand.zip"
    with Store(original, read_only=True) as store:
        manifest = create_backup(store.con, file)
        before = _contents(store.con)
        views = _views(store.con)
    for table in ("events", "identities", "profile_merges", "profiles", "cases", "decisions",
                  "documents", "failed_events", "sources", "tokens", "users"):  # fmt: skip
        assert manifest.tables[table] > 0, table
    report = restore_backup(file, tmp_path / "restored.duckdb")
    assert report.tables == manifest.tables
    with Store(tmp_path / "restored.duckdb") as restored:
        assert _contents(restored.con) == before
        assert _views(restored.con) == views
        assert sorted(restored.con.execute("SELECT * FROM duckdb_indexes()").fetchall()) != []


def test_queries_answer_the_same_after_a_restore(original: Path, tmp_path: Path) -> None:
    file = tmp_path / "brand.zip"
    with Store(original, read_only=True) as store:
        create_backup(store.con, file)
    restore_backup(file, tmp_path / "restored.duckdb")
    funnel = FunnelQuery(
        steps=[{"event": "Product Viewed"}, {"event": "Order Completed"}],  # type: ignore[list-item]
        window="30d",  # type: ignore[arg-type]
        by="channel",
    )
    answers = []
    for db in (original, tmp_path / "restored.duckdb"):
        with Store(db, read_only=True) as store:
            con = store.con
            people = [
                p for (p,) in con.execute("SELECT profile_id FROM profiles ORDER BY 1").fetchall()
            ]
            answers.append(
                {
                    "profiles": [get_profile(con, p) for p in people[:10]],
                    "timelines": [timeline(con, p, limit=50) for p in people[:10]],
                    "funnel": run_funnel(funnel, embedded(con)).rows,
                    "graph": load_graph(con, _settings(db).identity).profiles(),
                }
            )
    assert answers[0] == answers[1]
    assert answers[0]["funnel"] and answers[0]["profiles"]


def test_a_restored_database_carries_on_where_the_original_was(
    original: Path, tmp_path: Path
) -> None:
    file = tmp_path / "brand.zip"
    with Store(original, read_only=True) as store:
        create_backup(store.con, file)
        next_failed = store.con.execute("SELECT max(id) + 1 FROM failed_events").fetchall()
    db = tmp_path / "restored.duckdb"
    restore_backup(file, db)
    settings = _settings(db)
    with Store(db) as store:
        ingestor = Ingestor(store, settings)
        again = ingestor.ingest([{"type": "track", "messageId": "bad-2", "userId": 7}], WEB)
        assert again.rejected == 1
        # Sequences resume: the new failure gets the next id, not a reused one.
        assert store.con.execute("SELECT max(id) FROM failed_events").fetchall() == next_failed
        # Dedup and identity resume: a stored event is a duplicate, and nothing moves.
        mid, uid = store.con.execute(
            "SELECT message_id, user_id FROM events WHERE user_id IS NOT NULL LIMIT 1"
        ).fetchall()[0]
        dup = ingestor.ingest(
            [{"type": "track", "event": "X", "messageId": mid, "userId": uid}], WEB
        )
        assert (dup.accepted, dup.duplicates) == (0, 1)
        assert rebuild(store.con, settings.identity).events_moved == 0


def test_a_backup_taken_while_events_arrive_is_one_snapshot(tmp_path: Path) -> None:
    db = tmp_path / "busy.duckdb"
    settings = _settings(db)
    with Store(db) as store:
        ingestor = Ingestor(store, settings).start()
        stop = threading.Event()

        def send() -> None:
            for n in range(400):  # bounded
                if stop.is_set():
                    return
                ingestor.ingest(
                    [{"type": "identify", "messageId": f"b{n}-{i}", "anonymousId": f"a{n}-{i}",
                      "userId": f"u{(n * 10 + i) // 3}"} for i in range(10)],
                    WEB,
                )  # fmt: skip

        sender = threading.Thread(target=send)
        sender.start()
        manifests = [create_backup(store.con, tmp_path / f"b{k}.zip") for k in range(3)]
        stop.set()
        sender.join(30)
        ingestor.stop()
    for k, manifest in enumerate(manifests):
        target = tmp_path / f"r{k}.duckdb"
        report = restore_backup(tmp_path / f"b{k}.zip", target)
        assert report.tables == manifest.tables
        with Store(target) as restored:
            # Events and the identity rows committed with them are from the same moment.
            assert rebuild(restored.con, settings.identity).events_moved == 0
            assert restored.con.execute(
                "SELECT count(*) FROM identities WHERE seq NOT IN (SELECT seq FROM events)"
            ).fetchall() == [(0,)]
    assert manifests[-1].events >= manifests[0].events


def test_an_older_schema_is_migrated_forward(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMPTZ NOT NULL)"
    )
    for version, name, sql in MIGRATIONS[:-1]:
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
    con.execute("INSERT INTO sources VALUES ('web', 'web', 'h', 'wk_…', now(), NULL)")  # some data
    manifest = create_backup(con, tmp_path / "old.zip")
    con.close()
    assert manifest.schema_version == MIGRATIONS[-2][0]
    report = restore_backup(tmp_path / "old.zip", tmp_path / "new.duckdb")
    assert (report.backup_schema_version, report.schema_version) == (
        MIGRATIONS[-2][0],
        MIGRATIONS[-1][0],
    )
    with Store(tmp_path / "new.duckdb") as store:
        assert store.con.execute("SELECT max(version) FROM schema_migrations").fetchall() == [
            (MIGRATIONS[-1][0],)
        ]
        assert store.con.execute("SELECT name FROM sources").fetchall() == [("web",)]


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "future.duckdb") as store:
        store.con.execute("INSERT INTO schema_migrations VALUES (999, 'from the future', now())")
        create_backup(store.con, tmp_path / "future.zip")
    with pytest.raises(Conflict, match=r"schema version 999, newer than this OpenCX"):
        restore_backup(tmp_path / "future.zip", tmp_path / "restored.duckdb")
    assert not (tmp_path / "restored.duckdb").exists()


@pytest.fixture
def backup_file(original: Path, tmp_path: Path) -> Path:
    file = tmp_path / "brand.zip"
    with Store(original, read_only=True) as store:
        create_backup(store.con, file)
    return file


def test_an_existing_database_with_data_is_kept_unless_forced(
    backup_file: Path, tmp_path: Path
) -> None:
    target = tmp_path / "live.duckdb"
    with Store(target) as store:
        Ingestor(store, _settings(target)).ingest(
            [{"type": "track", "event": "Mine", "messageId": "mine", "userId": "me"}], WEB
        )
    with pytest.raises(Conflict, match=r"already holds data .* pass --force"):
        restore_backup(backup_file, target)
    with Store(target) as store:
        assert store.con.execute("SELECT message_id FROM events").fetchall() == [("mine",)]
    restore_backup(backup_file, target, force=True)
    with Store(target) as store:
        assert store.con.execute(
            "SELECT count(*) FROM events WHERE message_id = 'mine'"
        ).fetchall() == [(0,)]
        assert store.con.execute("SELECT count(*) FROM events").fetchall()[0][0] == (
            read_manifest(backup_file).events
        )


def test_an_empty_database_may_be_restored_over(backup_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "fresh.duckdb"
    Store(target).close()  # migrated, no data: e.g. after `opencx sources list` by mistake
    restore_backup(backup_file, target)
    with Store(target) as store:
        assert store.con.execute("SELECT count(*) FROM events").fetchall()[0][0] > 0


def test_a_truncated_backup_is_refused_and_the_target_untouched(
    backup_file: Path, tmp_path: Path
) -> None:
    data = backup_file.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 100):
        broken = tmp_path / f"cut-{cut}.zip"
        broken.write_bytes(data[:cut])
        with pytest.raises(InvalidInput, match=r"truncated or not an OpenCX backup"):
            restore_backup(broken, tmp_path / "target.duckdb")
    assert not (tmp_path / "target.duckdb").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".zip")] == []


def test_a_corrupted_byte_is_refused(backup_file: Path, tmp_path: Path) -> None:
    data = bytearray(backup_file.read_bytes())
    with zipfile.ZipFile(backup_file) as zf:
        info = zf.getinfo("export/events.parquet")
    spot = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[spot] ^= 0xFF
    broken = tmp_path / "flipped.zip"
    broken.write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match=r"is corrupted: events.parquet"):
        restore_backup(broken, tmp_path / "target.duckdb")
    assert not (tmp_path / "target.duckdb").exists()


def _rewrite(source: Path, dest: Path, change: dict[str, Any]) -> None:
    """A copy of a backup with some members replaced (valid zip, fresh CRCs)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w") as out:
        for name in src.namelist():
            out.writestr(name, change.get(name, src.read(name)))


def test_a_file_that_does_not_match_its_checksum_is_refused(
    backup_file: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "swapped.zip"
    with zipfile.ZipFile(backup_file) as zf:
        other = zf.read("export/cases.parquet")
    _rewrite(backup_file, broken, {"export/events.parquet": other})
    with pytest.raises(InvalidInput, match=r"events.parquet does not match its checksum"):
        verify_backup(broken)


def test_row_counts_that_disagree_with_the_manifest_are_refused(
    backup_file: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(backup_file) as zf:
        manifest = orjson.loads(zf.read("manifest.json"))
    manifest["tables"]["events"] += 1
    broken = tmp_path / "counts.zip"
    _rewrite(backup_file, broken, {"manifest.json": orjson.dumps(manifest)})
    with pytest.raises(InvalidInput, match=r"events: \d+ rows, manifest says \d+"):
        restore_backup(broken, tmp_path / "target.duckdb")
    assert not (tmp_path / "target.duckdb").exists()


def test_a_missing_file_or_a_foreign_zip_is_refused(backup_file: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.zip"
    with zipfile.ZipFile(backup_file) as src, zipfile.ZipFile(missing, "w") as out:
        for name in src.namelist():
            if name != "export/cases.parquet":
                out.writestr(name, src.read(name))
    with pytest.raises(InvalidInput, match=r"incomplete: cases.parquet is missing"):
        verify_backup(missing)
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as out:
        out.writestr("notes.txt", "hello")
    with pytest.raises(InvalidInput, match=r"not an OpenCX backup: it has no manifest.json"):
        verify_backup(foreign)
    with pytest.raises(InvalidInput, match=r"does not exist"):
        verify_backup(tmp_path / "nowhere.zip")
