"""API tokens: bearer secrets for the read API, each with a role."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import duckdb

from opencx.access._secrets import new_secret, row_for_secret, secret_hash
from opencx.errors import InvalidInput, NotFound
from opencx.store import fetch_one
from opencx.types import ROLES


@dataclass(frozen=True)
class Token:
    """A named API token with its role (the secret itself is never stored)."""

    id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None = None


def create_token(con: duckdb.DuckDBPyConnection, name: str, role: str) -> tuple[Token, str]:
    """Create a token; returns it and the secret (shown once)."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if not name.strip():
        raise InvalidInput("token name must not be empty")
    secret = new_secret("ocx")
    token_id = f"t_{secrets.token_hex(6)}"
    con.execute(
        "INSERT INTO tokens (id, name, role, token_hash) VALUES (?, ?, ?, ?)",
        [token_id, name.strip(), role, secret_hash(secret)],
    )
    return _get(con, token_id), secret


def _get(con: duckdb.DuckDBPyConnection, token_id: str) -> Token:
    row = fetch_one(
        con.execute(
            "SELECT id, name, role, created_at, revoked_at FROM tokens WHERE id = ?", [token_id]
        )
    )
    if row is None:
        raise NotFound(f"no token with id {token_id!r}")
    return Token(*row)


def list_tokens(con: duckdb.DuckDBPyConnection) -> list[Token]:
    rows = con.execute(
        "SELECT id, name, role, created_at, revoked_at FROM tokens ORDER BY created_at"
    ).fetchall()
    return [Token(*row) for row in rows]


def revoke_token(con: duckdb.DuckDBPyConnection, token_id: str) -> None:
    _get(con, token_id)
    con.execute("UPDATE tokens SET revoked_at = now() WHERE id = ?", [token_id])


def token_for_secret(con: duckdb.DuckDBPyConnection, secret: str) -> Token | None:
    """The active token a bearer secret belongs to, or None."""
    row = row_for_secret(
        con, "tokens", "id, name, role, created_at, revoked_at", "token_hash", secret
    )
    return None if row is None else Token(*row)
