"""The message-id index: which events are stored already, in 8 bytes per event.

Every stored event's 64-bit message-id hash is kept in a few sorted runs of geometric
sizes, so adding a flush's hashes never re-sorts the index: a run merges only with runs
of about its size, in one linear pass. A miss proves an event new; a hit is confirmed
against the log itself, so a hash collision can never drop a valid event.

The hash is the lower half of the id's MD5 (DuckDB's `md5_number_lower`): the same in
Python, where a request computes its own, and in SQL, where the index is rebuilt from the
log at start. A standard digest cannot drift between DuckDB versions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from hashlib import md5
from pathlib import Path

import duckdb
import numpy as np

from opencx.store._connection import fetch_one


class MessageIndex:
    """Membership test for stored message ids, by hash; confirmed exactly on a hit."""

    def __init__(self, hashes: np.ndarray | None = None) -> None:
        self._runs: list[np.ndarray] = []  # each sorted; each at least twice the next
        self.from_snapshot = False
        if hashes is not None and len(hashes):
            self._runs.append(np.sort(hashes.astype(np.uint64)))

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, snapshot: Path | None = None) -> MessageIndex:
        """The index of every stored id: from the log, or from the snapshot of the last
        clean stop plus the events logged after it, when it still describes this log."""
        with con.cursor() as cur:
            if snapshot is not None and (index := cls._from_snapshot(cur, snapshot)):
                return index
            column = cur.sql("SELECT md5_number_lower(message_id) AS h FROM events").fetchnumpy()
        return cls(np.asarray(column["h"], dtype=np.uint64))

    @classmethod
    def _from_snapshot(cls, cur: duckdb.DuckDBPyConnection, path: Path) -> MessageIndex | None:
        try:
            meta = json.loads(path.with_suffix(".json").read_text())
            seq, count, last = int(meta["seq"]), int(meta["count"]), str(meta["last"])
            hashes = np.load(path, allow_pickle=False)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        # The log up to the snapshot's last event must be the one it was taken of: same
        # count, same last id (an erasure, a purge or another database's file fails this).
        found = fetch_one(
            cur.execute(
                "SELECT count(*), max(seq), arg_max(message_id, seq) FROM events WHERE seq <= ?",
                [seq],
            )
        )
        if found != (count, seq, last) or len(hashes) != count or hashes.dtype != np.uint64:
            return None
        index = cls(hashes)
        later = cur.execute(
            "SELECT md5_number_lower(message_id) AS h FROM events WHERE seq > ?", [seq]
        ).fetchnumpy()["h"]
        index.add(np.asarray(later, dtype=np.uint64))
        index.from_snapshot = True
        return index

    def save(self, con: duckdb.DuckDBPyConnection, path: Path) -> bool:
        """Keep the index beside the database (at a clean stop), so the next start reads it
        instead of hashing every stored id; False (and no snapshot) if it is not exact."""
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)
        with con.cursor() as cur:
            count, seq, last = fetch_one(
                cur.execute("SELECT count(*), max(seq), arg_max(message_id, seq) FROM events")
            ) or (0, None, None)
        if seq is None or count != len(self):  # events deleted meanwhile: rebuild next time
            return False
        hashes = np.concatenate(self._runs) if len(self._runs) > 1 else self._runs[0]
        part = path.with_name(path.name + ".part")
        with part.open("wb") as f:
            np.save(f, np.sort(hashes), allow_pickle=False)
        os.replace(part, path)
        meta = {"seq": int(seq), "count": int(count), "last": str(last)}
        path.with_suffix(".json").write_text(json.dumps(meta))  # written last: the seal
        return True

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def maybe_stored(self, hashes: np.ndarray) -> list[int]:
        """Positions in `hashes` that may be stored already (every stored one among them)."""
        if not len(hashes):
            return []
        found = np.zeros(len(hashes), dtype=bool)
        for run in self._runs:
            pos = np.searchsorted(run, hashes)
            pos[pos == len(run)] = len(run) - 1
            found |= run[pos] == hashes
        return np.flatnonzero(found).tolist()

    def add(self, hashes: np.ndarray) -> None:
        """Add one flush's hashes as a sorted run, merging the runs not twice its size.

        Like a binary counter: each hash is merged about log2(index / flush) times in its
        life, each merge one linear pass over two sorted arrays.
        """
        if not len(hashes):
            return
        run = np.sort(hashes.astype(np.uint64))
        runs = self._runs
        while runs and len(runs[-1]) < 2 * len(run):
            run = np.concatenate([runs.pop(), run])
            run.sort(kind="stable")  # timsort: two sorted runs merge in one linear pass
        runs.append(run)


def message_hashes(message_ids: Sequence[str]) -> np.ndarray:
    """The index's hash of each message id: the lower 64 bits of its MD5, as DuckDB has them."""
    digest = b"".join(
        [md5(mid.encode("utf-8", "surrogatepass")).digest()[8:] for mid in message_ids]
    )
    return np.frombuffer(digest, dtype="<u8").astype(np.uint64, copy=False)


def stored_message_ids(con: duckdb.DuckDBPyConnection, message_ids: Sequence[str]) -> set[str]:
    """Which of `message_ids` are in the event log (an exact check of index hits)."""
    if not message_ids:
        return set()
    rows = con.execute(
        "SELECT message_id FROM events WHERE message_id IN (SELECT unnest($ids::VARCHAR[]))",
        {"ids": list(message_ids)},
    ).fetchall()
    return {r[0] for r in rows}
