"""The single writer: group-commits validated events with their identity resolution.

Requests hand their validated batch to a queue and wait; one thread takes everything
queued, drops duplicates, resolves identities in log order, and appends events,
failures and identity changes in one transaction. A request is answered only after
that commit, so an acknowledged event survives a crash. If the commit fails, the
in-memory identity state is rolled back with it and the requests get an error.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from opencx.config import Settings
from opencx.errors import StoreUnavailable
from opencx.identity import IdentityGraph, load_graph, write_changes
from opencx.ingest._privacy import FieldRedactor, SuppressionList, privacy_salt
from opencx.ingest._validate import Failure, ValidatedBatch
from opencx.store import (
    BATCH_SCHEMA,
    EVENT_SCHEMA,
    MEMORY,
    MessageIndex,
    Store,
    append_events,
    append_failed,
    batch_record,
    message_hashes,
    next_seq,
    stored_message_ids,
)

log = logging.getLogger("opencx.ingest")
T = TypeVar("T")
_STOP = object()
_SLOW_FLUSH_S = 1.0


@dataclass
class WriteResult:
    """What happened to one submitted batch."""

    accepted: int = 0
    duplicates: int = 0
    dropped: int = 0  # accepted, but of an erased person: never stored (counted in accepted)
    failures: list[Failure] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.failures)


@dataclass
class PreparedBatch:
    """A validated batch made ready for the writer by whoever submits it.

    Hashing the message ids, applying the PII rules and building the Arrow columns are
    the per-event costs of a write that need no shared state: each request pays its own
    (in a validation worker process, or its own thread), so the single writer only
    resolves identities and commits. Picklable, to come back from a worker.
    """

    message_id: list[str]
    identifiers: list[list[str]]
    failures: list[Failure]
    hashes: np.ndarray
    record: pa.RecordBatch

    def __len__(self) -> int:
        return len(self.message_id)


def prepare(batch: ValidatedBatch, redactor: FieldRedactor | None = None) -> PreparedBatch:
    """The writer's input from a validated batch (PII rules applied to its JSON columns)."""
    if redactor:
        for name in ("properties", "traits", "context"):
            setattr(batch, name, redactor.column(name, getattr(batch, name)))
    return PreparedBatch(
        batch.message_id,
        batch.identifiers,
        batch.failures,
        message_hashes(batch.message_id),
        batch_record(batch),
    )


@dataclass
class _Item:
    batch: PreparedBatch
    future: Future[WriteResult]


class EventWriter:
    """Owns all writes to the event log and the identity graph of one database."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._con = store.con.cursor()
        # A checkpoint rewrites the table's open row group: every 64 MB of log instead of
        # DuckDB's 16 MB costs less in all (measured: 10.7 vs 12.7-15.3 µs per event).
        self._con.execute(f"SET checkpoint_threshold = '{int(settings.checkpoint_mb)}MB'")
        self.graph: IdentityGraph = load_graph(self._con, settings.identity)
        _check_hash(self._con)
        self._snapshot = None if store.path == MEMORY else Path(f"{store.path}.msgidx.npy")
        self.index = MessageIndex.load(self._con, self._snapshot)
        self._seq = next_seq(self._con)
        privacy = settings.privacy
        salt = privacy_salt(self._con, privacy)
        self.suppressions = SuppressionList.load(self._con, salt)
        self.redactor = FieldRedactor(salt, privacy.hash_fields, privacy.drop_fields)
        self._queue: queue.Queue[Any] = queue.Queue()
        self._queued_events = 0
        self._count_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._sync_lock = threading.Lock()
        self.flushes = 0

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> EventWriter:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="opencx-writer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Write everything queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
            if self._snapshot is not None:
                try:
                    self.index.save(self._con, self._snapshot)
                except (OSError, duckdb.Error):  # the next start hashes the log instead
                    log.exception("could not keep the dedup index for the next start")

    @property
    def alive(self) -> bool:
        """Whether the writer thread runs (False before `start` and after `stop`)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def backlog(self) -> int:
        """Events queued and not yet committed."""
        return self._queued_events

    # -- submitting --------------------------------------------------------------
    def submit(self, batch: ValidatedBatch | PreparedBatch) -> Future[WriteResult]:
        """Queue a batch; the future completes once it is committed."""
        future: Future[WriteResult] = Future()
        if isinstance(batch, ValidatedBatch):
            batch = prepare(batch, self.redactor)
        item = _Item(batch, future)
        if self._thread is None:
            with self._sync_lock:
                self._flush([item])
            return future
        with self._count_lock:
            self._queued_events += len(batch) + len(batch.failures)
        self._queue.put(item)
        return future

    def write(self, batch: ValidatedBatch | PreparedBatch) -> WriteResult:
        """Submit a batch and wait for its commit."""
        return self.submit(batch).result()

    def call(self, fn: Callable[[duckdb.DuckDBPyConnection, EventWriter], T]) -> T:
        """Run `fn(connection, writer)` alone, between two flushes (for rebuilds, splits)."""
        future: Future[T] = Future()
        if self._thread is None:
            with self._sync_lock:
                future.set_result(fn(self._con, self))
            return future.result()
        self._queue.put((fn, future))
        return future.result()

    def reload_identity(self) -> None:
        """Re-read identity state after something rewrote it (call from `call`)."""
        self.graph = load_graph(self._con, self.settings.identity)

    # -- the thread --------------------------------------------------------------
    def _run(self) -> None:
        linger = self.settings.flush_ms / 1000
        limit = self.settings.flush_events
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            if isinstance(first, tuple):
                self._run_call(*first)
                continue
            items: list[_Item] = [first]
            count = len(first.batch)
            deadline = time.monotonic() + linger
            while count < limit:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    # Under load, wait a moment so one commit carries many requests.
                    remaining = deadline - time.monotonic()
                    if len(items) < 2 or remaining <= 0:
                        break
                    try:
                        nxt = self._queue.get(timeout=remaining)
                    except queue.Empty:
                        break
                if nxt is _STOP:
                    stopping = True
                    break
                if isinstance(nxt, tuple):
                    self._flush(items)
                    items = []
                    count = 0
                    self._run_call(*nxt)
                    continue
                items.append(nxt)
                count += len(nxt.batch)
            if items:
                self._flush(items)
        # Drain anything submitted before stop.
        rest: list[_Item] = []
        while True:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(nxt, _Item):
                rest.append(nxt)
            elif isinstance(nxt, tuple):
                self._run_call(*nxt)
        if rest:
            self._flush(rest)

    def _run_call(self, fn: Callable[..., Any], future: Future[Any]) -> None:
        try:
            future.set_result(fn(self._con, self))
        except BaseException as exc:  # handed to the caller
            future.set_exception(exc)

    # -- one group commit ---------------------------------------------------------
    def _flush(self, items: list[_Item]) -> None:
        started = time.monotonic()
        try:
            results = self._commit(items)
        except Exception as exc:
            log.exception("write of %d batches failed", len(items))
            self.graph.rollback()
            error = StoreUnavailable(f"events were not stored: {exc}")
            if isinstance(exc, duckdb.FatalException):  # e.g. a checkpoint on a full disk
                error = StoreUnavailable(
                    f"the database failed and must be reopened: restart the server, then send "
                    f"these events again (duplicates are dropped): {exc}"
                )
            for item in items:
                if not item.future.done():
                    item.future.set_exception(error)
        else:
            self.flushes += 1
            for item, result in zip(items, results, strict=True):
                item.future.set_result(result)
            took = time.monotonic() - started
            if took > _SLOW_FLUSH_S:  # requests waited that long: say so in the log
                events = sum(len(i.batch) for i in items)
                log.warning("a write of %d events took %.1f s", events, took)
        finally:
            n = sum(len(i.batch) + len(i.batch.failures) for i in items)
            with self._count_lock:
                self._queued_events = max(0, self._queued_events - n)

    def _commit(self, items: list[_Item]) -> list[WriteResult]:
        con = self._con
        results = [WriteResult(failures=list(item.batch.failures)) for item in items]
        sizes = [len(item.batch) for item in items]
        owner = np.repeat(np.arange(len(items)), sizes)  # the item of each event in the flush
        hashes = _concat([item.batch.hashes for item in items])
        ids = _flat([item.batch.message_id for item in items])
        # Pick the new events: first of each message id in this flush, not stored before.
        picks = np.arange(len(ids))
        if len(np.unique(hashes)) != len(hashes):  # equal hashes: maybe equal ids
            seen: set[str] = set()
            first = []
            for p, mid in enumerate(ids):
                if mid not in seen:
                    seen.add(mid)
                    first.append(p)
            picks = np.array(first, dtype=np.int64)
        maybe = self.index.maybe_stored(hashes[picks])
        if maybe:
            stored = stored_message_ids(con, [ids[picks[p]] for p in maybe])
            if stored:
                picks = np.delete(picks, [p for p in maybe if ids[picks[p]] in stored])
        identifiers = _flat([item.batch.identifiers for item in items])
        dropped: dict[str, int] = {}
        if self.suppressions:
            picks = self._suppress(identifiers, picks, owner, results, dropped)
        accepted = np.bincount(owner[picks], minlength=len(items))
        for result, size, n in zip(results, sizes, accepted, strict=True):
            result.accepted += int(n)
            result.duplicates += size - int(n) - result.dropped
        everything = len(picks) == len(ids)
        seq0 = self._seq
        resolve = self.graph.resolve
        positions = range(len(ids)) if everything else picks.tolist()
        profile_ids = [
            resolve(identifiers[p], ids[p], seq)
            for p, seq in zip(positions, range(seq0, seq0 + len(picks)), strict=True)
        ]
        failures = [_failure_row(f) for item in items for f in item.batch.failures]
        if self.redactor:
            for row in failures:
                row["payload"] = self.redactor.payload(row["payload"])

        con.execute("BEGIN")
        try:
            if len(picks):
                table = pa.Table.from_batches([i.batch.record for i in items], BATCH_SCHEMA)
                if not everything:
                    table = table.take(picks)
                table = table.combine_chunks()
                append_events(con, _with_seq_and_profile(table, seq0, profile_ids))
            append_failed(con, failures)
            write_changes(con, self.graph.changes, self.graph)
            if dropped:
                con.executemany(
                    "UPDATE suppressions SET dropped = dropped + ?, last_dropped_at = now() "
                    "WHERE identifier_hash = ?",
                    [(n, h) for h, n in dropped.items()],
                )
            con.execute("COMMIT")
        except Exception:
            # A COMMIT that failed (disk full) has ended the transaction itself; its
            # error, not ROLLBACK's "no transaction is active", is what callers see.
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        self.graph.commit()
        self.index.add(hashes[picks])
        self._seq = seq0 + len(picks)
        return results

    def _suppress(
        self,
        identifiers: list[list[str]],
        picks: np.ndarray,
        owner: np.ndarray,
        results: list[WriteResult],
        dropped: dict[str, int],
    ) -> np.ndarray:
        """Leave out the events of erased people; count them per suppressed identifier."""
        matches = self.suppressions.matches
        gone: list[int] = []
        for q, p in enumerate(picks.tolist()):
            found = matches(identifiers[p])
            if found:
                gone.append(q)
                results[owner[p]].dropped += 1
                for h in found:
                    dropped[h] = dropped.get(h, 0) + 1
        for result in results:  # a dropped event counts as accepted (it was not refused)
            result.accepted += result.dropped
        return np.delete(picks, gone) if gone else picks


def _check_hash(con: duckdb.DuckDBPyConnection) -> None:
    """Requests hash ids in Python, the index at start in SQL: they must agree, or dedup
    would silently stop working."""
    sample = ["opencx", "ajs-next-1700000000000-2f0c", "ü"]
    rows = con.execute(
        "SELECT md5_number_lower(x) FROM unnest($s::VARCHAR[]) WITH ORDINALITY t(x, n) ORDER BY n",
        {"s": sample},
    ).fetchall()
    if [r[0] for r in rows] != message_hashes(sample).tolist():
        raise RuntimeError(
            "this DuckDB's md5_number_lower differs from Python's MD5: the dedup index "
            "cannot work with it (report it, with the DuckDB version)"
        )


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _flat(lists: list[list[T]]) -> list[T]:
    if len(lists) == 1:
        return lists[0]
    out: list[T] = []
    for part in lists:
        out.extend(part)
    return out


def _with_seq_and_profile(table: pa.Table, seq0: int, profile_ids: list[str]) -> pa.Table:
    """The picked events in the event log's layout, with their sequence numbers and profiles."""
    extra = {
        "seq": pa.array(np.arange(seq0, seq0 + len(table), dtype=np.int64)),
        "profile_id": pa.array(profile_ids, pa.string()),
    }
    return pa.Table.from_arrays(
        [extra[f.name] if f.name in extra else table.column(f.name) for f in EVENT_SCHEMA],
        schema=EVENT_SCHEMA,
    )


def _failure_row(failure: Failure) -> dict[str, Any]:
    return {
        "received_at": failure.received_at,
        "source": failure.source,
        "origin": failure.origin,
        "row_number": failure.row_number,
        "message_id": failure.message_id,
        "payload": failure.payload,
        "errors": orjson.dumps(failure.errors).decode(),
    }
