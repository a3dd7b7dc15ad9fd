"""Appends to the event log and to failed_events: Arrow in, one INSERT each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from opencx.store._connection import fetch_one

_TS = pa.timestamp("us", tz="UTC")

EVENT_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("message_id", pa.string()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("channel", pa.string()),
        ("source", pa.string()),
        ("anonymous_id", pa.string()),
        ("user_id", pa.string()),
        ("group_id", pa.string()),
        ("previous_id", pa.string()),
        ("profile_id", pa.string()),
        ("identifiers", pa.list_(pa.string())),
        ("timestamp", _TS),
        ("original_timestamp", _TS),
        ("sent_at", _TS),
        ("received_at", _TS),
        ("properties", pa.string()),
        ("traits", pa.string()),
        ("context", pa.string()),
    ]
)
EVENT_COLUMNS: tuple[str, ...] = tuple(EVENT_SCHEMA.names)
# What a request brings: everything but the log's sequence numbers and the resolved profile.
BATCH_SCHEMA = pa.schema([f for f in EVENT_SCHEMA if f.name not in ("seq", "profile_id")])


def events_table(columns: dict[str, Sequence[Any]]) -> pa.Table:
    """An Arrow table in the event log's layout from same-length column lists."""
    return pa.table(
        [pa.array(columns[f.name], type=f.type) for f in EVENT_SCHEMA], schema=EVENT_SCHEMA
    )


def batch_record(columns: Any) -> pa.RecordBatch:
    """One request's events as Arrow, from an object with a list attribute per column."""
    return pa.RecordBatch.from_arrays(
        [pa.array(getattr(columns, f.name), type=f.type) for f in BATCH_SCHEMA],
        schema=BATCH_SCHEMA,
    )


def append_events(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    """Bulk-append events (call inside a transaction)."""
    con.register("_append_events", table)
    try:
        con.execute(
            f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM _append_events"
        )
    finally:
        con.unregister("_append_events")


def next_seq(con: duckdb.DuckDBPyConnection) -> int:
    row = fetch_one(con.execute("SELECT coalesce(max(seq), 0) + 1 FROM events"))
    return int(row[0]) if row else 1


FAILED_SCHEMA = pa.schema(
    [
        ("received_at", _TS),
        ("source", pa.string()),
        ("origin", pa.string()),
        ("row_number", pa.int64()),
        ("message_id", pa.string()),
        ("payload", pa.string()),
        ("errors", pa.string()),
    ]
)


def append_failed(con: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Keep rejected payloads with their errors (call inside a transaction)."""
    if not rows:
        return
    table = pa.Table.from_pylist(list(rows), schema=FAILED_SCHEMA)
    con.register("_append_failed", table)
    try:
        con.execute(
            "INSERT INTO failed_events (received_at, source, origin, row_number, message_id, "
            "payload, errors) SELECT * FROM _append_failed"
        )
    finally:
        con.unregister("_append_failed")
