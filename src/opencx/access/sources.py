"""Sources: each system that sends events, with its default channel and write key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import duckdb

from opencx.access._secrets import hint, new_secret, row_for_secret, secret_hash
from opencx.errors import Conflict, InvalidInput, NotFound
from opencx.store import fetch_one
from opencx.types import CHANNELS

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class Source:
    """A sender of events: the source's name, its default channel, and its key's hint."""

    name: str
    channel: str
    write_key_hint: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _check_channel(channel: str) -> str:
    value = channel.strip().lower()
    if value not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    return value


def add_source(con: duckdb.DuckDBPyConnection, name: str, channel: str) -> tuple[Source, str]:
    """Create a source; returns it and its write key (shown once, stored hashed)."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"source name {name!r} must be 1-63 lower-case letters, digits, '.', '_' or '-'"
        )
    channel = _check_channel(channel)
    if fetch_one(con.execute("SELECT 1 FROM sources WHERE name = ?", [name])):
        raise Conflict(f"a source named {name!r} exists already")
    key = new_secret("wk")
    con.execute(
        "INSERT INTO sources (name, channel, write_key_hash, write_key_hint) VALUES (?, ?, ?, ?)",
        [name, channel, secret_hash(key), hint(key)],
    )
    return get_source(con, name), key


def get_source(con: duckdb.DuckDBPyConnection, name: str) -> Source:
    row = fetch_one(
        con.execute(
            "SELECT name, channel, write_key_hint, created_at, revoked_at FROM sources "
            "WHERE name = ?",
            [name],
        )
    )
    if row is None:
        raise NotFound(f"no source named {name!r} (see `opencx sources list`)")
    return Source(*row)


def list_sources(con: duckdb.DuckDBPyConnection) -> list[Source]:
    rows = con.execute(
        "SELECT name, channel, write_key_hint, created_at, revoked_at FROM sources ORDER BY name"
    ).fetchall()
    return [Source(*row) for row in rows]


def rotate_write_key(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """Give a source a new write key; the old one stops working at once."""
    get_source(con, name)
    key = new_secret("wk")
    con.execute(
        "UPDATE sources SET write_key_hash = ?, write_key_hint = ?, revoked_at = NULL "
        "WHERE name = ?",
        [secret_hash(key), hint(key), name],
    )
    return key


def revoke_source(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Stop accepting events from a source (its history stays)."""
    get_source(con, name)
    con.execute("UPDATE sources SET revoked_at = now() WHERE name = ?", [name])


def source_for_write_key(con: duckdb.DuckDBPyConnection, write_key: str) -> Source | None:
    """The active source a write key belongs to, or None."""
    row = row_for_secret(
        con, "sources", "name, channel, write_key_hint, created_at, revoked_at",
        "write_key_hash", write_key,
    )  # fmt: skip
    return None if row is None else Source(*row)
