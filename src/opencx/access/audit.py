"""The audit log: who viewed, exported, erased or changed what, and from where."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from opencx.errors import InvalidInput

MAX_ENTRIES = 10_000
_INSERT = (
    "INSERT INTO audit_log (logged_at, actor, action, target_kind, target, details, client) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class AuditEntry:
    """One audited act: `actor` (e.g. `token:ops`, `user:ann@example.com`, `cli`) did
    `action` (e.g. `profile.view`, `privacy.erase`) to `target_kind`/`target`."""

    id: int
    logged_at: datetime
    actor: str
    action: str
    target_kind: str | None
    target: str | None
    details: dict[str, Any]
    client: str | None


def record(
    con: duckdb.DuckDBPyConnection,
    actor: str,
    action: str,
    target_kind: str | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    client: str | None = None,
) -> None:
    """Append one entry now (one INSERT; a server queues views in an `AuditBuffer`).

    >>> record(con, "user:ann@example.com", "profile.view", "profile", "p_1a2b", client="10.0.0.7")
    """
    con.execute(_INSERT, _row(actor, action, target_kind, target, details, client))


def _row(
    actor: str,
    action: str,
    target_kind: str | None,
    target: str | None,
    details: dict[str, Any] | None,
    client: str | None,
) -> list[Any]:
    if not actor.strip() or not action.strip():
        raise InvalidInput("an audit entry needs an actor and an action")
    text = None if details is None else orjson.dumps(details, default=str).decode()
    return [datetime.now(UTC), actor, action, target_kind, target, text, client]


class AuditBuffer:
    """Audit entries of a busy server, written together: a single-row commit costs about
    3 ms on a database file, so page views and API reads are queued here and written in
    one transaction when `max_entries` are queued, when `flush()` is called (before the
    log is read, every second by the server, at shutdown)."""

    def __init__(
        self, connect: Callable[[], duckdb.DuckDBPyConnection], *, max_entries: int = 200
    ) -> None:
        self._connect = connect
        self._max = max_entries
        self._rows: list[list[Any]] = []
        self._lock = threading.Lock()
        self._write = threading.Lock()

    def record(
        self,
        actor: str,
        action: str,
        target_kind: str | None = None,
        target: str | None = None,
        details: dict[str, Any] | None = None,
        client: str | None = None,
        *,
        at_once: bool = False,
    ) -> None:
        """Queue one entry (as `record` would write it); `at_once` writes it (and what is
        queued) before returning: for changes, exports and erasures, which are rare."""
        row = _row(actor, action, target_kind, target, details, client)
        with self._lock:
            self._rows.append(row)
            full = len(self._rows) >= self._max
        if full or at_once:
            self.flush()

    def flush(self) -> int:
        """Write what is queued, in one transaction; returns how many entries."""
        with self._write:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            # One statement for all rows: DuckDB's executemany runs one insert per row.
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(rows))
            try:
                self._connect().execute(
                    _INSERT.partition("VALUES")[0] + "VALUES " + values,
                    [value for row in rows for value in row],
                )
            except BaseException:
                with self._lock:
                    self._rows[:0] = rows  # kept for the next flush
                raise
            return len(rows)


def audit_entries(
    con: duckdb.DuckDBPyConnection,
    *,
    target: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Entries newest first, filtered by target (e.g. a profile id), actor, action
    (exact, or a prefix ending in `.` such as `profile.`) and time."""
    if not 1 <= limit <= MAX_ENTRIES:
        raise InvalidInput(f"limit must be between 1 and {MAX_ENTRIES}, got {limit}")
    if since is not None and since.tzinfo is None:
        raise InvalidInput("since must include a time zone, e.g. 2026-11-01T00:00:00Z")
    clauses, params = [], []
    if target is not None:
        clauses.append("target = ?")
        params.append(target)
    if actor is not None:
        clauses.append("actor = ?")
        params.append(actor)
    if action is not None:
        clauses.append("starts_with(action, ?)" if action.endswith(".") else "action = ?")
        params.append(action)
    if since is not None:
        clauses.append("logged_at >= ?")
        params.append(since)
    where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
    rows = con.execute(
        "SELECT id, logged_at, actor, action, target_kind, target, details, client "
        f"FROM audit_log {where}ORDER BY id DESC LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [
        AuditEntry(*row[:6], details=orjson.loads(row[6]) if row[6] else {}, client=row[7])
        for row in rows
    ]
