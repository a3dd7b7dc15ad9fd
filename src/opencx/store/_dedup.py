"""The message-id index: which events are stored already, in 8 bytes per event.

Every stored event's 64-bit message-id hash (DuckDB's `hash`, computed in bulk) is kept
in a sorted array plus a set of recent ones. A miss proves an event new; a hit is
confirmed against the log itself, so a hash collision can never drop a valid event.
Hashes are never stored: the index is rebuilt from the log at start, so a different
hash function in another DuckDB version cannot make old and new hashes disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa

_MERGE_AT = 50_000


class MessageIndex:
    """Membership test for stored message ids, by hash; confirmed exactly on a hit."""

    def __init__(self, hashes: np.ndarray | None = None) -> None:
        self._base = (
            np.sort(hashes.astype(np.uint64)) if hashes is not None else np.empty(0, np.uint64)
        )
        self._recent: set[int] = set()

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> MessageIndex:
        with con.cursor() as cur:
            column = cur.sql("SELECT hash(message_id) AS h FROM events").fetchnumpy()["h"]
        return cls(np.asarray(column, dtype=np.uint64))

    def __len__(self) -> int:
        return len(self._base) + len(self._recent)

    def maybe_stored(self, hashes: np.ndarray) -> list[int]:
        """Positions in `hashes` that may be stored already (every stored one among them)."""
        if not len(hashes):
            return []
        recent = self._recent
        hits = [i for i, h in enumerate(hashes.tolist()) if h in recent] if recent else []
        base = self._base
        if len(base):
            arr = hashes
            pos = np.searchsorted(base, arr)
            pos[pos == len(base)] = len(base) - 1
            found = np.nonzero(base[pos] == arr)[0]
            if len(found):
                hits = sorted(set(hits) | {int(i) for i in found})
        return hits

    def add(self, hashes: np.ndarray) -> None:
        self._recent.update(hashes.tolist())
        if len(self._recent) >= _MERGE_AT:
            fresh = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
            self._base = np.union1d(self._base, fresh)
            self._recent.clear()


class MessageHasher:
    """DuckDB's `hash` of message ids, in one vectorised call, on a connection of its own."""

    def __init__(self) -> None:
        self._con = duckdb.connect()

    def __call__(self, message_ids: Sequence[str]) -> np.ndarray:
        if not message_ids:
            return np.empty(0, np.uint64)
        self._con.register("_ids", pa.table({"id": pa.array(message_ids, pa.string())}))
        try:
            column = self._con.sql("SELECT hash(id) AS h FROM _ids").fetchnumpy()["h"]
        finally:
            self._con.unregister("_ids")
        return np.asarray(column, dtype=np.uint64)


def message_hashes(message_ids: Sequence[str]) -> np.ndarray:
    """The index's hashes of `message_ids` (a one-off; the writer keeps a `MessageHasher`)."""
    return MessageHasher()(message_ids)


def stored_message_ids(con: duckdb.DuckDBPyConnection, message_ids: Sequence[str]) -> set[str]:
    """Which of `message_ids` are in the event log (an exact check of index hits)."""
    if not message_ids:
        return set()
    rows = con.execute(
        "SELECT message_id FROM events WHERE message_id IN (SELECT unnest($ids::VARCHAR[]))",
        {"ids": list(message_ids)},
    ).fetchall()
    return {r[0] for r in rows}
