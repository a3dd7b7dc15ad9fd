"""Storage: the DuckDB database, its schema, and the writes every other package relies on."""

from __future__ import annotations

from opencx.store._connection import MEMORY, Store, fetch_one, migrate, schema_version
from opencx.store._dedup import MessageIndex, message_hashes, stored_message_ids
from opencx.store._documents import (
    Document,
    delete_document,
    get_document,
    list_documents,
    put_document,
    require_document,
)
from opencx.store._events import (
    BATCH_SCHEMA,
    EVENT_COLUMNS,
    EVENT_SCHEMA,
    append_events,
    append_failed,
    batch_record,
    events_table,
    next_seq,
)
from opencx.store._schema import MIGRATIONS

__all__ = [
    "BATCH_SCHEMA",
    "EVENT_COLUMNS",
    "EVENT_SCHEMA",
    "MEMORY",
    "MIGRATIONS",
    "Document",
    "MessageIndex",
    "Store",
    "append_events",
    "append_failed",
    "batch_record",
    "delete_document",
    "events_table",
    "fetch_one",
    "get_document",
    "list_documents",
    "message_hashes",
    "migrate",
    "next_seq",
    "put_document",
    "require_document",
    "schema_version",
    "stored_message_ids",
]
