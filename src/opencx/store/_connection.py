"""Opening the DuckDB file, applying migrations, and turning lock errors into clear ones."""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from opencx.errors import InvalidInput, StoreUnavailable
from opencx.store._schema import MIGRATIONS

if TYPE_CHECKING:
    from opencx.config import Settings

MEMORY = ":memory:"


def fetch_one(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a query, read to the end.

    DuckDB 2 refuses new work on a connection whose last result was only partly read,
    which a bare `fetchone()` leaves behind.
    """
    rows = result.fetchall()
    return rows[0] if rows else None


@dataclass(frozen=True)
class MemoryTag:
    """What DuckDB's buffer manager holds for one purpose (`BASE_TABLE`, `HASH_TABLE`, …)."""

    tag: str
    memory_bytes: int
    temporary_storage_bytes: int


@dataclass(frozen=True)
class StoreUsage:
    """DuckDB's memory against its limit, and the database's size on disk."""

    memory_limit: str  # as DuckDB reports it, e.g. "5.8 GiB"
    tags: tuple[MemoryTag, ...]
    block_size: int
    total_blocks: int
    used_blocks: int
    wal_bytes: int

    @property
    def memory_bytes(self) -> int:
        return sum(t.memory_bytes for t in self.tags)

    @property
    def temporary_storage_bytes(self) -> int:
        return sum(t.temporary_storage_bytes for t in self.tags)

    @property
    def file_bytes(self) -> int:
        return self.block_size * self.total_blocks

    @property
    def used_bytes(self) -> int:
        return self.block_size * self.used_blocks


class Store:
    """One DuckDB database: the owner process's connection, and cursors for other threads."""

    def __init__(
        self,
        path: Path | str = MEMORY,
        *,
        read_only: bool = False,
        memory_limit: str | None = None,
        temp_directory: Path | str | None = None,
    ) -> None:
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
        try:
            self.limit_resources(memory_limit, temp_directory)
        except InvalidInput:
            self.con.close()
            raise
        self._local = threading.local()
        self.write_lock = threading.RLock()
        if not read_only:
            migrate(self.con)

    @classmethod
    def for_settings(cls, settings: Settings, *, read_only: bool = False) -> Store:
        """The configured database, with the configured memory limit and spill folder."""
        return cls(
            settings.db, read_only=read_only, memory_limit=settings.memory_limit,
            temp_directory=settings.temp_directory,
        )  # fmt: skip

    def limit_resources(
        self, memory_limit: str | None = None, temp_directory: Path | str | None = None
    ) -> None:
        """Bound DuckDB's buffer manager (its block cache and queries' working memory) and
        say where queries spill past it; None keeps DuckDB's default (80% of RAM; spills to
        `<db file>.tmp`). Both are database-wide: every cursor shares them."""
        settings = {"memory_limit": memory_limit, "temp_directory": temp_directory}
        for name, value in settings.items():
            if value is None:
                continue
            try:
                self.con.execute(f"SET {name} = ?", [str(value)])
            except duckdb.Error as exc:
                raise InvalidInput(f"{name} {str(value)!r} is refused by DuckDB: {exc}") from exc

    def usage(self) -> StoreUsage:
        """DuckDB's memory by tag, its limit, and the database's size (file and log)."""
        try:
            cur = self.cursor()
            tags = cur.execute(
                "SELECT tag, memory_usage_bytes, temporary_storage_bytes FROM duckdb_memory() "
                "ORDER BY tag"
            ).fetchall()
            row = fetch_one(
                cur.execute(
                    "SELECT block_size, total_blocks, used_blocks, "
                    "current_setting('memory_limit') FROM pragma_database_size() "
                    "WHERE database_name = current_database()"
                )
            )
        except duckdb.Error as exc:  # e.g. invalidated by a failed checkpoint on a full disk
            raise StoreUnavailable(f"the database does not answer: {exc}") from exc
        block_size, total, used, limit = row if row else (0, 0, 0, "")
        wal_bytes = 0
        if self.path != MEMORY:
            with contextlib.suppress(OSError):  # a checkpoint may remove it meanwhile
                wal_bytes = os.path.getsize(f"{self.path}.wal")
        return StoreUsage(
            memory_limit=str(limit),
            tags=tuple(MemoryTag(str(t), int(m), int(s)) for t, m, s in tags),
            block_size=int(block_size), total_blocks=int(total), used_blocks=int(used),
            wal_bytes=wal_bytes,
        )  # fmt: skip

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
