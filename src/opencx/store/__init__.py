"""Storage: the DuckDB database, its schema, and the writes every other package relies on."""

from __future__ import annotations

from opencx.store._connection import MEMORY, Store, migrate, schema_version
from opencx.store._dedup import MessageHasher, MessageIndex, message_hashes, stored_message_ids
from opencx.store._events import (
    EVENT_COLUMNS,
    EVENT_SCHEMA,
    append_events,
    append_failed,
    events_table,
    next_seq,
)
from opencx.store._schema import MIGRATIONS

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_SCHEMA",
    "MEMORY",
    "MIGRATIONS",
    "MessageHasher",
    "MessageIndex",
    "Store",
    "append_events",
    "append_failed",
    "events_table",
    "message_hashes",
    "migrate",
    "next_seq",
    "schema_version",
    "stored_message_ids",
]
