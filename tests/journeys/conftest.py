"""Journey fixtures: events written straight into an in-memory log, with known people."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from opencx.store import Store, append_events, events_table
from opencx.warehouse import Warehouse, embedded

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
Row = tuple[str, float, str, str] | tuple[str, float, str, str, dict[str, Any]]
"""(person, hours after T0, event, channel[, properties])."""


def write_events(store: Store, rows: Iterable[Row], *, seq_start: int = 1) -> int:
    """Append rows as track events of the given people; seq follows the row order."""
    rows = list(rows)
    n = len(rows)
    at = [T0 + timedelta(hours=r[1]) for r in rows]
    props = [orjson.dumps(r[4]).decode() if len(r) > 4 else "{}" for r in rows]  # type: ignore[misc]
    cols = {
        "seq": list(range(seq_start, seq_start + n)),
        "message_id": [f"m{seq_start + i}" for i in range(n)],
        "type": ["track"] * n,
        "event": [r[2] for r in rows],
        "channel": [r[3] for r in rows],
        "source": [r[3] for r in rows],
        "anonymous_id": [None] * n,
        "user_id": [r[0] for r in rows],
        "group_id": [None] * n,
        "previous_id": [None] * n,
        "profile_id": [r[0] for r in rows],
        "identifiers": [[f"user_id:{r[0]}"] for r in rows],
        "timestamp": at,
        "original_timestamp": at,
        "sent_at": [None] * n,
        "received_at": at,
        "properties": props,
        "traits": [None] * n,
        "context": ["{}"] * n,
    }
    append_events(store.con, events_table(cols))
    return n


def write_profiles(store: Store, traits: dict[str, dict[str, Any]]) -> None:
    for person, bag in traits.items():
        store.con.execute(
            "INSERT INTO profiles (profile_id, identifiers, traits, event_count, refreshed_at) "
            "VALUES (?, [], ?, 0, now())",
            [person, orjson.dumps(bag).decode()],
        )


@pytest.fixture
def log() -> Iterator[Callable[..., Warehouse]]:
    """`log(rows)` → a DuckDB warehouse over those events (fresh in-memory store)."""
    stores: list[Store] = []

    def make(rows: Iterable[Row], traits: dict[str, dict[str, Any]] | None = None) -> Warehouse:
        store = Store()
        stores.append(store)
        write_events(store, rows)
        write_profiles(store, traits or {})
        return embedded(store.con)

    yield make
    for s in stores:
        s.close()
