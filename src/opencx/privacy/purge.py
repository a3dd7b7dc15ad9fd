"""Time-range purge: a burst of data that should never have been sent, deleted from the log.

Identity is derived from the log, so after the delete it is rebuilt from what remains
(`opencx.identity.rebuild`): an identifier only the purged events carried disappears, a
merge only they caused is undone, and the writer's graph is reloaded to match. Then the
profiles summary is refreshed, and the derived rows (segment membership, computed
traits) of profiles that no longer exist are deleted. Nothing is suppressed: a purge is
about data, not about a person, and the same people may send again.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from opencx.errors import InvalidInput
from opencx.identity import rebuild
from opencx.ingest import EventWriter, Ingestor
from opencx.profiles import refresh_profiles
from opencx.store import fetch_one

_DERIVED = ("segment_members", "computed_traits")
_LIVE_PEOPLE = (
    "SELECT profile_id FROM identities UNION SELECT profile_id FROM profile_merges "
    "UNION SELECT DISTINCT profile_id FROM events WHERE profile_id IS NOT NULL"
)


@dataclass
class PurgeReport:
    """What a purge removed (or, in a dry run, would remove)."""

    id: str
    start: datetime
    end: datetime
    source: str | None
    requested_by: str
    dry_run: bool
    events: int = 0
    failed_events: int = 0
    profiles_touched: int = 0  # profiles that had at least one purged event
    identities_before: int = 0
    identities_after: int = 0
    derived_removed: dict[str, int] = field(default_factory=dict)
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        for name in ("start", "end"):
            body[name] = getattr(self, name).isoformat()
        return body


def purge_events(
    ingestor: Ingestor,
    *,
    start: datetime,
    end: datetime,
    source: str | None = None,
    by: str,
    dry_run: bool = False,
) -> PurgeReport:
    """Delete the events and failed events received in [start, end), of one source or all.

    The range is on `received_at` (when OpenCX got the data, which is what a leak is
    known by); times must carry a time zone.
    """
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None:
            raise InvalidInput(f"{name} must carry a time zone (e.g. 2026-11-24T10:00:00Z)")
    if end <= start:
        raise InvalidInput(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    if not by.strip():
        raise InvalidInput("by must name who asked for the purge, got an empty string")
    report = PurgeReport(f"pu_{secrets.token_hex(8)}", start, end, source, by, dry_run)
    with ingestor.store.write_lock:

        def run(con: duckdb.DuckDBPyConnection, writer: EventWriter) -> PurgeReport:
            return _purge(con, writer, ingestor, report)

        return ingestor.writer.call(run)


def _purge(
    con: duckdb.DuckDBPyConnection, writer: EventWriter, ingestor: Ingestor, report: PurgeReport
) -> PurgeReport:
    started = time.perf_counter()
    where = "received_at >= $start AND received_at < $end"
    params: dict[str, Any] = {"start": report.start, "end": report.end}
    if report.source is not None:
        where += " AND source = $source"
        params["source"] = report.source
    report.events = _count(con, f"SELECT count(*) FROM events WHERE {where}", params)
    report.failed_events = _count(con, f"SELECT count(*) FROM failed_events WHERE {where}", params)
    report.profiles_touched = _count(
        con,
        "SELECT count(DISTINCT person_id) FROM resolved_events "
        f"WHERE {where} AND person_id IS NOT NULL",
        params,
    )
    report.identities_before = _count(con, "SELECT count(*) FROM identities", {})
    if report.dry_run or not (report.events or report.failed_events):
        report.identities_after = report.identities_before
        report.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        return report
    con.execute("BEGIN")
    try:
        con.execute(f"DELETE FROM events WHERE {where}", params)
        con.execute(f"DELETE FROM failed_events WHERE {where}", params)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    rebuild(con, ingestor.settings.identity)
    writer.reload_identity()
    refresh_profiles(con)
    for table in _DERIVED:
        report.derived_removed[table] = _count(
            con, f"DELETE FROM {table} WHERE person_id NOT IN ({_LIVE_PEOPLE})", {}
        )
    report.identities_after = _count(con, "SELECT count(*) FROM identities", {})
    report.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    con.execute(
        "INSERT INTO erasures (id, requested_at, requested_by, kind, report) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            report.id,
            datetime.now(UTC),
            report.requested_by,
            "purge",
            orjson.dumps(report.to_dict()).decode(),
        ],
    )
    return report


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> int:
    row = fetch_one(con.execute(sql, params))
    return int(row[0]) if row and row[0] is not None else 0
