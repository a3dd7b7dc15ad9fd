"""Secrets: generated with `secrets`, stored only as hashes, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import duckdb


def new_secret(prefix: str) -> str:
    """A random secret with a recognisable prefix, e.g. `wk_…` for write keys."""
    return f"{prefix}_{secrets.token_urlsafe(24)}"


def secret_hash(secret: str) -> str:
    """SHA-256 of a high-entropy secret (a slow KDF adds nothing for 190-bit random keys)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)


def hint(secret: str) -> str:
    """What may be shown of a secret after creation: its prefix and last four characters."""
    return f"{secret.split('_', 1)[0]}_…{secret[-4:]}"


def row_for_secret(
    con: duckdb.DuckDBPyConnection, table: str, columns: str, hash_column: str, secret: str
) -> tuple[Any, ...] | None:
    """The active row of `table` whose `hash_column` holds the secret's hash, or None."""
    digest = secret_hash(secret)
    rows = con.execute(
        f"SELECT {columns}, {hash_column} FROM {table} "
        f"WHERE {hash_column} = ? AND revoked_at IS NULL",
        [digest],
    ).fetchall()
    if not rows or not same_hash(rows[0][-1], digest):
        return None
    return tuple(rows[0][:-1])
