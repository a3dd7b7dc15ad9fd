"""Opening the DuckDB file, applying migrations, and turning lock errors into clear ones."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from opencx.errors import StoreUnavailable
from opencx.store._schema import MIGRATIONS

MEMORY = ":memory:"


def fetch_one(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a query, read to the end.

    DuckDB 2 refuses new work on a connection whose last result was only partly read,
    which a bare `fetchone()` leaves behind.
    """
    rows = result.fetchall()
    return rows[0] if rows else None


class Store:
    """One DuckDB database: the owner process's connection, and cursors for other threads."""

    def __init__(self, path: Path | str = MEMORY, *, read_only: bool = False) -> None:
        self.path = str(path)
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreUnavailable(
                    f"database {self.path} is in use by another process (is `opencx serve` "
                    "running on it?): stop that process, or do this through the server's API"
                ) from exc
            raise StoreUnavailable(f"cannot open database {self.path}: {exc}") from exc
        self.con.execute("SET TimeZone = 'UTC'")
        self._local = threading.local()
        self.write_lock = threading.RLock()
        if not read_only:
            migrate(self.con)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for the calling thread (DuckDB connections are not thread-safe)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self.con.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cur
        return cur

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    row = fetch_one(con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations"))
    return int(row[0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply every migration newer than the database's version, each in its own transaction."""
    current = schema_version(con)
    for version, name, sql in MIGRATIONS:
        if version <= current:
            continue
        con.execute("BEGIN")
        try:
            con.execute(sql)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                [version, name, datetime.now(UTC)],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        current = version
    return current
