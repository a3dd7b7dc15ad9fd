"""Replaying failed events after a fix: re-validate, store what passes, keep the rest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from opencx.ingest._pipeline import Ingestor
from opencx.ingest._validate import SourceContext


@dataclass(frozen=True)
class ReplayReport:
    """Failed events looked at, stored now (or already stored), and still failing."""

    examined: int
    stored: int
    duplicates: int
    still_failing: int


def replay_failed(ingestor: Ingestor, ids: Sequence[int] | None = None) -> ReplayReport:
    """Re-validate failed events (all unreplayed ones, or those with `ids`)."""
    con = ingestor.store.cursor()
    sql = (
        "SELECT f.id, f.source, coalesce(s.channel, 'web'), f.origin, f.row_number, f.payload, "
        "f.received_at FROM failed_events f LEFT JOIN sources s ON s.name = f.source "
        "WHERE f.status = 'failed'"
    )
    params: list[Any] = []
    if ids:
        sql += " AND f.id IN (SELECT unnest(?::BIGINT[]))"
        params.append(list(ids))
    rows = con.execute(sql + " ORDER BY f.id", params).fetchall()
    stored = duplicates = failing = 0
    for fid, source, channel, origin, row_number, payload, received_at in rows:
        try:
            message: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            message = payload
        ctx = SourceContext(source or "unknown", channel, origin=f"replay:{origin}")
        received_us = int(received_at.timestamp() * 1_000_000)
        batch = ingestor.validate([message], ctx, received_us=received_us, row_numbers=[row_number])
        if batch.failures:
            failing += 1
            con.execute(
                "UPDATE failed_events SET errors = ? WHERE id = ?",
                [orjson.dumps(batch.failures[0].errors).decode(), fid],
            )
            continue
        batch.failures.clear()
        result = ingestor.writer.write(batch)
        stored += result.accepted
        duplicates += result.duplicates
        con.execute(
            "UPDATE failed_events SET status = 'replayed', replayed_at = now() WHERE id = ?", [fid]
        )
    return ReplayReport(len(rows), stored, duplicates, failing)
