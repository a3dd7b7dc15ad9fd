"""The suppression list and the erasure log, as the CLI and API show them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import orjson


@dataclass(frozen=True)
class Suppression:
    """One erased identifier: its salted hash, never its value, and what it has dropped."""

    identifier_hash: str
    kind: str
    reason: str
    erasure_id: str | None
    created_at: datetime
    created_by: str
    dropped: int
    last_dropped_at: datetime | None


def list_suppressions(con: duckdb.DuckDBPyConnection, *, limit: int = 1000) -> list[Suppression]:
    """Suppressed identifiers, newest first."""
    rows = con.execute(
        "SELECT identifier_hash, kind, reason, erasure_id, created_at, created_by, dropped, "
        "last_dropped_at FROM suppressions ORDER BY created_at DESC, identifier_hash LIMIT ?",
        [limit],
    ).fetchall()
    return [Suppression(*r) for r in rows]


def list_erasures(con: duckdb.DuckDBPyConnection, *, limit: int = 100) -> list[dict[str, Any]]:
    """Stored reports of erasures, anonymisations and purges, newest first."""
    rows = con.execute(
        "SELECT CAST(report AS VARCHAR) FROM erasures ORDER BY requested_at DESC LIMIT ?",
        [limit],
    ).fetchall()
    return [orjson.loads(r[0]) for r in rows]
