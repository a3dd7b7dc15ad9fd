"""Named YAML documents the analysts edit: the touchpoint model, designed journeys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from opencx.errors import NotFound


@dataclass(frozen=True)
class Document:
    kind: str
    name: str
    body: str
    updated_at: datetime
    updated_by: str | None


def get_document(con: duckdb.DuckDBPyConnection, kind: str, name: str) -> Document | None:
    rows = con.execute(
        "SELECT kind, name, body, updated_at, updated_by FROM documents "
        "WHERE kind = ? AND name = ?",
        [kind, name],
    ).fetchall()
    return Document(*rows[0]) if rows else None


def require_document(
    con: duckdb.DuckDBPyConnection, kind: str, name: str, missing: str, listed: str = "saved"
) -> Document:
    """The document, or `NotFound` saying `missing` and naming those there are."""
    doc = get_document(con, kind, name)
    if doc is None:
        known = ", ".join(d.name for d in list_documents(con, kind)) or "none yet"
        raise NotFound(f"{missing} ({listed}: {known})")
    return doc


def list_documents(con: duckdb.DuckDBPyConnection, kind: str) -> list[Document]:
    rows = con.execute(
        "SELECT kind, name, body, updated_at, updated_by FROM documents WHERE kind = ? "
        "ORDER BY name",
        [kind],
    ).fetchall()
    return [Document(*r) for r in rows]


def put_document(
    con: duckdb.DuckDBPyConnection, kind: str, name: str, body: str, by: str | None = None
) -> None:
    """Create or replace one document (the caller has validated the body)."""
    con.execute(
        "INSERT INTO documents (kind, name, body, updated_at, updated_by) "
        "VALUES (?, ?, ?, now(), ?) ON CONFLICT (kind, name) DO UPDATE SET "
        "body = excluded.body, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        [kind, name, body, by],
    )


def delete_document(con: duckdb.DuckDBPyConnection, kind: str, name: str) -> bool:
    rows = con.execute(
        "DELETE FROM documents WHERE kind = ? AND name = ? RETURNING name", [kind, name]
    ).fetchall()
    return bool(rows)
