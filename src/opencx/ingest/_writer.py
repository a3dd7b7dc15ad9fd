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
from typing import Any, TypeVar

import duckdb
import numpy as np
import orjson

from opencx.config import Settings
from opencx.errors import StoreUnavailable
from opencx.identity import IdentityGraph, load_graph, write_changes
from opencx.ingest._privacy import FieldRedactor, SuppressionList, privacy_salt
from opencx.ingest._validate import Failure, ValidatedBatch
from opencx.store import (
    MessageHasher,
    MessageIndex,
    Store,
    append_events,
    append_failed,
    events_table,
    next_seq,
    stored_message_ids,
)

log = logging.getLogger("opencx.ingest")
T = TypeVar("T")
_STOP = object()


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
class _Item:
    batch: ValidatedBatch
    future: Future[WriteResult]


class EventWriter:
    """Owns all writes to the event log and the identity graph of one database."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._con = store.con.cursor()
        self.graph: IdentityGraph = load_graph(self._con, settings.identity)
        self.index = MessageIndex.load(self._con)
        self._hasher = MessageHasher()
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

    @property
    def backlog(self) -> int:
        """Events queued and not yet committed."""
        return self._queued_events

    # -- submitting --------------------------------------------------------------
    def submit(self, batch: ValidatedBatch) -> Future[WriteResult]:
        """Queue a batch; the future completes once it is committed."""
        future: Future[WriteResult] = Future()
        if self._thread is None:
            with self._sync_lock:
                self._flush([_Item(batch, future)])
            return future
        with self._count_lock:
            self._queued_events += len(batch) + len(batch.failures)
        self._queue.put(_Item(batch, future))
        return future

    def write(self, batch: ValidatedBatch) -> WriteResult:
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
        finally:
            n = sum(len(i.batch) + len(i.batch.failures) for i in items)
            with self._count_lock:
                self._queued_events = max(0, self._queued_events - n)

    def _commit(self, items: list[_Item]) -> list[WriteResult]:
        con = self._con
        results = [WriteResult(failures=list(item.batch.failures)) for item in items]
        # Pick the new events: first of each message id in this flush, not stored before.
        picks: list[tuple[int, int]] = []
        seen: dict[str, int] = {}
        for n, item in enumerate(items):
            for i, mid in enumerate(item.batch.message_id):
                if mid in seen:
                    results[n].duplicates += 1
                else:
                    seen[mid] = len(picks)
                    picks.append((n, i))
        hashes = self._hasher(list(seen))
        maybe = self.index.maybe_stored(hashes)
        if maybe:
            candidates = [items[picks[p][0]].batch.message_id[picks[p][1]] for p in maybe]
            stored = stored_message_ids(con, candidates)
            if stored:
                drop = {
                    p for p in maybe if items[picks[p][0]].batch.message_id[picks[p][1]] in stored
                }
                for p in sorted(drop):
                    results[picks[p][0]].duplicates += 1
                picks = [pk for p, pk in enumerate(picks) if p not in drop]
                hashes = np.delete(hashes, sorted(drop))

        dropped: dict[str, int] = {}
        if self.suppressions:
            picks, hashes = self._suppress(items, picks, hashes, results, dropped)
        columns = _gather(items, picks)
        if self.redactor:
            for name in ("properties", "traits", "context"):
                columns[name] = self.redactor.column(name, columns[name])
        seq0 = self._seq
        seqs = list(range(seq0, seq0 + len(picks)))
        resolve = self.graph.resolve
        columns["seq"] = seqs
        columns["profile_id"] = [
            resolve(keys, mid, seq)
            for keys, mid, seq in zip(
                columns["identifiers"], columns["message_id"], seqs, strict=True
            )
        ]
        for n, _ in picks:
            results[n].accepted += 1
        failures = [_failure_row(f) for item in items for f in item.batch.failures]
        if self.redactor:
            for row in failures:
                row["payload"] = self.redactor.payload(row["payload"])

        con.execute("BEGIN")
        try:
            if picks:
                append_events(con, events_table(columns))
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
        self.index.add(hashes)
        self._seq = seq0 + len(picks)
        return results

    def _suppress(
        self,
        items: list[_Item],
        picks: list[tuple[int, int]],
        hashes: np.ndarray,
        results: list[WriteResult],
        dropped: dict[str, int],
    ) -> tuple[list[tuple[int, int]], np.ndarray]:
        """Leave out the events of erased people; count them per suppressed identifier."""
        matches = self.suppressions.matches
        gone: list[int] = []
        for p, (n, i) in enumerate(picks):
            found = matches(items[n].batch.identifiers[i])
            if found:
                gone.append(p)
                results[n].accepted += 1
                results[n].dropped += 1
                for h in found:
                    dropped[h] = dropped.get(h, 0) + 1
        if not gone:
            return picks, hashes
        skip = set(gone)
        return [pk for p, pk in enumerate(picks) if p not in skip], np.delete(hashes, gone)


_BATCH_COLUMNS = (
    "message_id", "type", "event", "channel", "source", "anonymous_id",
    "user_id", "group_id", "previous_id", "identifiers", "timestamp", "original_timestamp",
    "sent_at", "received_at", "properties", "traits", "context",
)  # fmt: skip


def _gather(items: list[_Item], picks: list[tuple[int, int]]) -> dict[str, list[Any]]:
    """Column lists of the picked events, in pick order (fast path: every event picked)."""
    if len(picks) == sum(len(item.batch) for item in items):
        if len(items) == 1:
            batch = items[0].batch
            return {name: getattr(batch, name) for name in _BATCH_COLUMNS}
        whole: dict[str, list[Any]] = {}
        for name in _BATCH_COLUMNS:
            out = whole[name] = []
            for item in items:
                out.extend(getattr(item.batch, name))
        return whole
    columns: dict[str, list[Any]] = {name: [] for name in _BATCH_COLUMNS}
    for name in _BATCH_COLUMNS:
        out = columns[name]
        lists = [getattr(item.batch, name) for item in items]
        out.extend(lists[n][i] for n, i in picks)
    return columns


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
