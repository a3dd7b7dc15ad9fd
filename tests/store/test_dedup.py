"""The message-id index finds every stored id, and a hit is always confirmed exactly."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import numpy as np

from opencx.config import Settings, load_settings
from opencx.ingest import Ingestor, SourceContext
from opencx.store import MessageIndex, Store, message_hashes, stored_message_ids

WEB = SourceContext("web", "web")


def pages(ids: list[str]) -> list[dict[str, str]]:
    return [{"type": "page", "anonymousId": "visitor", "messageId": mid} for mid in ids]


def test_every_added_hash_is_found_across_many_flushes_of_any_size() -> None:
    rng = np.random.default_rng(7)
    hashes = np.unique(rng.integers(0, 2**64 - 1, size=70_000, dtype=np.uint64))
    rng.shuffle(hashes)
    index = MessageIndex(hashes[:10_000])  # as loaded from the log at start
    cuts = [10_000, 10_001, 10_100, 13_000, 13_007, 40_000, 40_500, 69_000, len(hashes)]
    for lo, hi in itertools.pairwise(cuts):
        index.add(hashes[lo:hi])
        assert index.maybe_stored(hashes[:hi]) == list(range(hi))
    index.add(np.empty(0, np.uint64))
    assert len(index) == len(hashes)
    others = np.setdiff1d(rng.integers(0, 2**64 - 1, size=5_000, dtype=np.uint64), hashes)
    assert index.maybe_stored(others) == []


def test_runs_stay_few_however_many_small_flushes() -> None:
    index = MessageIndex()
    for flush in range(2_000):  # a quiet server: one event per flush
        index.add(np.array([flush * 7919 + 1], dtype=np.uint64))
    assert len(index) == 2_000
    assert len(index._runs) <= 11  # like a binary counter: at most log2(n) + 1 runs
    assert all(np.all(run[:-1] <= run[1:]) for run in index._runs)  # each run sorted


def test_python_and_duckdb_compute_the_same_hash() -> None:
    ids = ["ajs-next-1", "", "ü-ñ-日本", "a" * 500, "with space", "emoji-\U0001f600"]
    with duckdb.connect() as con:
        theirs = con.execute(
            "SELECT md5_number_lower(x) FROM unnest($ids::VARCHAR[]) WITH ORDINALITY t(x, n) "
            "ORDER BY n",
            {"ids": ids},
        ).fetchall()
    assert message_hashes(ids).tolist() == [r[0] for r in theirs]


def test_hits_are_positions_in_the_query_in_order_with_repeats() -> None:
    index = MessageIndex(np.array([30, 10, 20], dtype=np.uint64))  # unsorted in, sorted inside
    index.add(np.array([5, 99], dtype=np.uint64))
    query = np.array([1, 99, 10, 7, 30, 99, 5, 25, 31], dtype=np.uint64)
    assert index.maybe_stored(query) == [1, 2, 4, 5, 6]


def test_hashes_at_the_ends_of_the_range() -> None:
    top = np.uint64(2**64 - 1)
    index = MessageIndex(np.array([0, 2**63, top], dtype=np.uint64))
    query = np.array([top, top - np.uint64(1), 0, 1, 2**63], dtype=np.uint64)
    assert index.maybe_stored(query) == [0, 2, 4]
    below_top = MessageIndex(np.array([3, 2**64 - 2], dtype=np.uint64))
    assert below_top.maybe_stored(np.array([top], dtype=np.uint64)) == []  # past the last one


def test_empty_index_and_empty_query() -> None:
    empty = MessageIndex()
    assert len(empty) == 0
    assert empty.maybe_stored(message_hashes(["m-1", "m-2"])) == []
    full = MessageIndex(message_hashes(["m-1"]))
    assert full.maybe_stored(np.empty(0, np.uint64)) == []


def test_message_hashes_are_stable_and_distinct() -> None:
    ids = [f"ajs-next-{i}-{i * 7919:x}" for i in range(20_000)]
    once, again = message_hashes(ids), message_hashes(list(ids))
    assert once.dtype == np.uint64 and len(once) == len(ids)
    assert np.array_equal(once, again)
    assert len(np.unique(once)) == len(ids)
    assert message_hashes([]).dtype == np.uint64 and len(message_hashes([])) == 0


def test_the_index_loaded_from_the_log_finds_every_stored_id(ingestor: Ingestor) -> None:
    stored = [f"m-{i}" for i in range(300)]
    ingestor.ingest(pages(stored), WEB)
    con = ingestor.store.con
    index = MessageIndex.load(con)
    assert len(index) == 300
    assert index.maybe_stored(message_hashes(stored)) == list(range(300))
    query = ["new-1", *stored[::50], "new-2"]
    assert index.maybe_stored(message_hashes(query)) == list(range(1, len(query) - 1))


def test_stored_message_ids_confirms_exactly(ingestor: Ingestor) -> None:
    ingestor.ingest(pages(["a", "b", "c", "O'Brien; --"]), WEB)
    con = ingestor.store.con
    assert stored_message_ids(con, ["b", "zzz", "O'Brien; --", "B", "a "]) == {"b", "O'Brien; --"}
    assert stored_message_ids(con, []) == set()
    assert stored_message_ids(con, ["nothing"]) == set()


def test_a_hash_collision_never_drops_a_new_event(ingestor: Ingestor) -> None:
    # Pretend "fresh" collides with a stored id: the index says maybe, the log says no.
    ingestor.writer.index.add(message_hashes(["fresh"]))
    con = ingestor.store.con
    assert stored_message_ids(con, ["fresh"]) == set()
    result = ingestor.ingest(pages(["fresh"]), WEB)
    assert (result.accepted, result.duplicates) == (1, 0)
    assert stored_message_ids(con, ["fresh"]) == {"fresh"}


def test_the_same_events_are_stored_once_even_after_a_restart(settings: Settings) -> None:
    ids = [f"m-{i}" for i in range(40)]
    with Store(settings.db) as store:
        first = Ingestor(store, settings).ingest(pages(ids[:30]), WEB)
        again = Ingestor(store, settings).ingest(pages(ids[:30]), WEB)
    assert (first.accepted, first.duplicates) == (30, 0)
    assert (again.accepted, again.duplicates) == (0, 30)
    with Store(settings.db) as store:  # a new process: the index is rebuilt from the file
        ingestor = Ingestor(store, settings)
        assert len(ingestor.writer.index) == 30
        mixed = ingestor.ingest(pages(ids), WEB)
        assert (mixed.accepted, mixed.duplicates) == (10, 30)
        count = store.con.execute("SELECT count(*), count(DISTINCT message_id) FROM events")
        assert count.fetchone() == (40, 40)


def test_an_empty_log_has_an_empty_index(tmp_path: Path) -> None:
    with Store(tmp_path / "x.duckdb") as store:
        assert len(MessageIndex.load(store.con)) == 0


def test_a_clean_stop_keeps_the_index_and_the_next_start_reads_it(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "x.duckdb", ingest_workers=0)
    first = [f"m-{i}" for i in range(500)]
    with Store(settings.db) as store:
        ingestor = Ingestor(store, settings).start()
        ingestor.ingest(pages(first), WEB)
        ingestor.stop()  # a clean stop saves the index beside the database
        assert (tmp_path / "x.duckdb.msgidx.npy").exists()

        later = Ingestor(store, settings)  # reads the snapshot, hashes nothing old
        assert later.writer.index.from_snapshot
        assert later.writer.index.maybe_stored(message_hashes(first)) == list(range(500))
        more = [f"n-{i}" for i in range(40)]
        later.ingest(pages(more), WEB)  # no thread, no clean stop: no new snapshot

        again = Ingestor(store, settings)  # the old snapshot plus what came after it
        assert again.writer.index.from_snapshot
        assert len(again.writer.index) == 540
        assert again.writer.index.maybe_stored(message_hashes(more)) == list(range(40))
        assert again.ingest(pages(first[:3] + more[:2]), WEB).duplicates == 5

        store.con.execute("DELETE FROM events WHERE message_id = 'm-7'")  # an erasure
        rebuilt = Ingestor(store, settings)
        assert not rebuilt.writer.index.from_snapshot  # it no longer describes the log
        assert len(rebuilt.writer.index) == 539
        assert rebuilt.writer.index.maybe_stored(message_hashes(["m-7"])) == []


def test_a_snapshot_of_another_log_is_not_used(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "x.duckdb", ingest_workers=0)
    with Store(settings.db) as store:
        ingestor = Ingestor(store, settings).start()
        ingestor.ingest(pages([f"a-{i}" for i in range(50)]), WEB)
        ingestor.stop()
    snapshot = tmp_path / "x.duckdb.msgidx.npy"
    kept, meta = snapshot.read_bytes(), snapshot.with_suffix(".json").read_text()
    (tmp_path / "x.duckdb").unlink()
    with Store(settings.db) as store:  # another database in the same place (a restore)
        Ingestor(store, settings).ingest(pages([f"b-{i}" for i in range(50)]), WEB)
    snapshot.write_bytes(kept)
    snapshot.with_suffix(".json").write_text(meta)
    with Store(settings.db) as store:
        index = Ingestor(store, settings).writer.index
        assert not index.from_snapshot
        assert index.maybe_stored(message_hashes(["b-0", "a-0"])) == [0]
