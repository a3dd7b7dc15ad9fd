"""Anonymisation in place: a person's events stay for aggregate analytics, unlinked from them.

Their events move to a new random profile id that no identifier leads to; their ids,
traits and the configured personal fields of properties and context are removed; every
other row about them is deleted as in an erasure, and their identifiers are suppressed.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection

import duckdb
import pyarrow as pa

from opencx.ingest import Ingestor
from opencx.privacy._person import PERSON_TABLES, Person
from opencx.privacy._scrub import scrub_json
from opencx.privacy.erase import (
    ErasureReport,
    delete_person_rows,
    run_erasure,
    scrub_references,
)

_KEPT_TABLES = {k: v for k, v in PERSON_TABLES.items() if k != "events"}


def anonymise_person(
    ingestor: Ingestor, identifier_or_profile_id: str, *, by: str, reason: str
) -> ErasureReport:
    """Keep the person's events without anything that identifies them; suppress them.

    The report's `rewritten["events"]` counts the events kept. Their new profile id is
    random and recorded nowhere, not even in the report.
    """
    fields = frozenset(ingestor.settings.privacy.personal_fields)

    def anonymise(con: duckdb.DuckDBPyConnection, person: Person, report: ErasureReport) -> None:
        kept = _rewrite_events(con, person, fields)
        report.removed = delete_person_rows(con, person, _KEPT_TABLES)
        report.rewritten = {**scrub_references(con, person, report.id), "events": kept}

    return run_erasure(ingestor, identifier_or_profile_id, "anonymise", by, reason, anonymise)


def _rewrite_events(con: duckdb.DuckDBPyConnection, person: Person, fields: Collection[str]) -> int:
    """Move the person's events to a random profile id, without ids, traits or personal fields."""
    if not person.profile_ids:
        return 0
    rows = con.execute(
        "SELECT seq, message_id, CAST(properties AS VARCHAR), CAST(context AS VARCHAR) "
        "FROM events WHERE profile_id IN (SELECT unnest($m::VARCHAR[]))",
        {"m": person.profile_ids},
    ).fetchall()
    if not rows:
        return 0
    anonymous = "p_" + secrets.token_hex(8)
    needles = person.needles
    table = pa.table(
        {
            "seq": pa.array([r[0] for r in rows], pa.int64()),
            "message_id": [r[1] for r in rows],
            "properties": [scrub_json(r[2], fields, needles) for r in rows],
            "context": [scrub_json(r[3], fields, needles) for r in rows],
        }
    )
    con.register("_anonymised", table)
    try:
        con.execute(
            "UPDATE events SET profile_id = $pid, user_id = NULL, anonymous_id = NULL, "
            "previous_id = NULL, identifiers = []::VARCHAR[], traits = NULL, "
            "properties = CAST(a.properties AS JSON), context = CAST(a.context AS JSON) "
            "FROM _anonymised a WHERE events.seq = a.seq AND events.message_id = a.message_id",
            {"pid": anonymous},
        )
    finally:
        con.unregister("_anonymised")
    return len(rows)
