"""Erasure: everything about a person deleted from every table, and the person suppressed.

The erasure runs on the writer's connection between two flushes (`EventWriter.call`),
under the store's write lock, in one transaction: nothing is half-erased, and no event
of the person can be committed between the delete and the suppression. The writer's
identity graph forgets the person in the same step, and its suppression list drops any
later event carrying one of the person's identifiers. The verification, a scan of
every table, then runs on the committed state without holding up ingestion.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from opencx.errors import InvalidInput
from opencx.ingest import EventWriter, Ingestor
from opencx.privacy._person import PERSON_TABLES, Person, resolve_person
from opencx.privacy._scrub import names, scrub_json
from opencx.privacy._verify import count_mentions
from opencx.store import fetch_one


@dataclass
class ErasureReport:
    """What an erasure removed, and proof that nothing of the person is left.

    Holds no personal data: identifiers and profile ids appear only as salted hashes,
    so the report is kept (table `erasures`) as evidence of the erasure.
    """

    id: str
    kind: str
    requested_at: datetime
    requested_by: str
    reason: str
    profiles: list[str]  # salted hashes of the profile ids
    identifiers: list[dict[str, str]]  # {hash, kind} per identifier, as in `suppressions`
    removed: dict[str, int] = field(default_factory=dict)  # rows deleted per table
    rewritten: dict[str, int] = field(default_factory=dict)  # rows kept but scrubbed
    suppressed: int = 0  # new suppression rows
    # rows still mentioning each hashed id (identifier, profile id or value), per table
    verification: dict[str, dict[str, int]] = field(default_factory=dict)
    elapsed_ms: float = 0.0

    @property
    def remaining(self) -> int:
        return sum(n for per in self.verification.values() for n in per.values())

    @property
    def verified(self) -> bool:
        """True when no table mentions any identifier, value or profile id of the person."""
        return self.remaining == 0

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["requested_at"] = self.requested_at.isoformat()
        body["remaining"] = self.remaining
        body["verified"] = self.verified
        return body


def erase_person(
    ingestor: Ingestor, identifier_or_profile_id: str, *, by: str, reason: str
) -> ErasureReport:
    """Delete everything about one person, in every table, and suppress their identifiers.

    `identifier_or_profile_id` is `KIND:VALUE` (e.g. `email:jane@example.com`) or a
    profile id; merged profiles and every identifier they hold go with it.
    """

    def erase(con: duckdb.DuckDBPyConnection, person: Person, report: ErasureReport) -> None:
        report.removed = delete_person_rows(con, person, PERSON_TABLES)
        report.rewritten = scrub_references(con, person, report.id)

    return run_erasure(ingestor, identifier_or_profile_id, "erase", by, reason, erase)


Apply = Callable[[duckdb.DuckDBPyConnection, Person, ErasureReport], None]


def run_erasure(
    ingestor: Ingestor, identifier: str, kind: str, by: str, reason: str, apply: Apply
) -> ErasureReport:
    """Resolve the person, `apply` the change, suppress them, all in one transaction on
    the writer between two flushes; then verify the committed result and keep the report.

    The verification (a scan of every table) runs after the writer is free again: new
    events of the person are already suppressed, so nothing can bring them back meanwhile.
    """
    if not by.strip():
        raise InvalidInput(f"by must name who asked for the {kind}, got an empty string")
    started = time.perf_counter()
    # The write lock before the writer: code holding it may be waiting on the writer.
    with ingestor.store.write_lock:

        def run(
            con: duckdb.DuckDBPyConnection, writer: EventWriter
        ) -> tuple[Person, ErasureReport]:
            person = resolve_person(con, ingestor.extractor, identifier)
            report = new_report(writer, person, kind, by, reason)
            con.execute("BEGIN")
            try:
                apply(con, person, report)
                report.suppressed = suppress(con, report, reason)
                record(con, report)
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            writer.graph.forget(person.profile_ids, person.keys)
            writer.suppressions.add(i["hash"] for i in report.identifiers)
            return person, report

        person, report = ingestor.writer.call(run)
    con = ingestor.store.cursor()
    report.verification = verify(ingestor.writer, con, person)
    report.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    con.execute(
        "UPDATE erasures SET report = ? WHERE id = ?",
        [orjson.dumps(report.to_dict()).decode(), report.id],
    )
    return report


def new_report(
    writer: EventWriter, person: Person, kind: str, by: str, reason: str
) -> ErasureReport:
    hash_of = writer.suppressions.hash
    return ErasureReport(
        id=f"er_{secrets.token_hex(8)}",
        kind=kind,
        requested_at=datetime.now(UTC),
        requested_by=by,
        reason=reason,
        profiles=[hash_of(f"profile:{p}") for p in person.profile_ids],
        identifiers=[{"hash": hash_of(k), "kind": k.partition(":")[0]} for k in person.keys],
    )


def delete_person_rows(
    con: duckdb.DuckDBPyConnection, person: Person, tables: dict[str, str] | Any
) -> dict[str, int]:
    """Delete the person's rows from each of `tables` (call inside a transaction)."""
    params = person.params(con)
    removed: dict[str, int] = {}
    for table, where in tables.items():
        used = {k: v for k, v in params.items() if f"${k}" in where}
        row = fetch_one(con.execute(f"DELETE FROM {table} WHERE {where}", used))
        removed[table] = int(row[0]) if row else 0
    return removed


def scrub_references(
    con: duckdb.DuckDBPyConnection, person: Person, erasure_id: str
) -> dict[str, int]:
    """Rows that stay but named the person: their mention is removed or pseudonymised."""
    events = _scrub_other_events(con, person)
    # A split's origin that was this person's profile id: the block stays, unattributed.
    row = fetch_one(
        con.execute(
            "UPDATE identity_blocks SET split_from = NULL "
            "WHERE split_from IN (SELECT unnest($members::VARCHAR[]))",
            {"members": person.profile_ids},
        )
    )
    blocks = int(row[0]) if row else 0
    audit = _scrub_audit(con, person, erasure_id)
    profiles = _scrub_other_profiles(con, person)
    return {"events": events, "profiles": profiles, "identity_blocks": blocks, "audit_log": audit}


def _scrub_other_events(con: duckdb.DuckDBPyConnection, person: Person) -> int:
    """Another person's event that carried one of these identifiers (a refused link):
    the identifier leaves its list, and strings naming the person leave its JSON."""
    rows = con.execute(
        "SELECT seq, message_id, CAST(properties AS VARCHAR), CAST(traits AS VARCHAR), "
        "CAST(context AS VARCHAR) FROM events WHERE list_has_any(identifiers, $keys::VARCHAR[])",
        {"keys": person.keys},
    ).fetchall()
    if not rows:
        return 0
    needles = person.needles
    table = pa.table(
        {
            "seq": pa.array([r[0] for r in rows], pa.int64()),
            "message_id": [r[1] for r in rows],
            **{
                name: [scrub_json(r[i], (), needles) for r in rows]
                for i, name in ((2, "properties"), (3, "traits"), (4, "context"))
            },
        }
    )
    con.register("_scrubbed", table)
    try:
        con.execute(
            "UPDATE events SET identifiers = list_filter(events.identifiers, lambda k: "
            "NOT list_contains($keys::VARCHAR[], k)), properties = CAST(s.properties AS JSON), "
            "traits = CAST(s.traits AS JSON), context = CAST(s.context AS JSON) FROM _scrubbed s "
            "WHERE events.seq = s.seq AND events.message_id = s.message_id",
            {"keys": person.keys},
        )
    finally:
        con.unregister("_scrubbed")
    return len(rows)


def _scrub_other_profiles(con: duckdb.DuckDBPyConnection, person: Person) -> int:
    """Another person's summary row built from such an event (the next refresh agrees)."""
    needles = person.needles
    rows = con.execute(
        "SELECT profile_id, user_id, email, phone, name, CAST(traits AS VARCHAR) FROM profiles "
        "WHERE EXISTS (SELECT 1 FROM unnest($n::VARCHAR[]) AS n(v) WHERE contains(lower("
        "concat_ws(chr(31), user_id, email, phone, name, CAST(traits AS VARCHAR))), n.v))",
        {"n": needles},
    ).fetchall()
    for pid, *columns, traits in rows:
        kept = [None if c is not None and names(c, needles) else c for c in columns]
        con.execute(
            "UPDATE profiles SET user_id = ?, email = ?, phone = ?, name = ?, "
            "traits = CAST(? AS JSON) WHERE profile_id = ?",
            [*kept, scrub_json(traits, (), needles), pid],
        )
    return len(rows)


def _scrub_audit(con: duckdb.DuckDBPyConnection, person: Person, erasure_id: str) -> int:
    needles = person.needles
    rows = con.execute(
        "SELECT id, target, CAST(details AS VARCHAR) FROM audit_log WHERE EXISTS (SELECT 1 "
        "FROM unnest($n::VARCHAR[]) AS n(v) WHERE contains(lower(coalesce(target, '') || "
        "chr(31) || coalesce(CAST(details AS VARCHAR), '')), n.v))",
        {"n": needles},
    ).fetchall()
    for audit_id, target, details in rows:
        new_target = target
        if target is not None and any(n in target.lower() for n in needles):
            new_target = f"erased:{erasure_id}"
        new_details = details
        if details is not None:
            for needle in sorted(needles, key=len, reverse=True):
                new_details = _replace_folded(new_details, needle, "[erased]")
        con.execute(
            "UPDATE audit_log SET target = ?, details = CAST(? AS JSON) WHERE id = ?",
            [new_target, new_details, audit_id],
        )
    return len(rows)


def _replace_folded(text: str, needle: str, by: str) -> str:
    """`text` with every case-insensitive occurrence of lower-case `needle` replaced."""
    out, low, start = [], text.lower(), 0
    while (at := low.find(needle, start)) >= 0:
        out.append(text[start:at])
        out.append(by)
        start = at + len(needle)
    out.append(text[start:])
    return "".join(out)


def suppress(con: duckdb.DuckDBPyConnection, report: ErasureReport, reason: str) -> int:
    """One suppression row per identifier (an identifier suppressed before keeps its row)."""
    rows = [
        (i["hash"], i["kind"], reason, report.id, report.requested_at, report.requested_by)
        for i in report.identifiers
    ]
    if not rows:
        return 0
    before = fetch_one(con.execute("SELECT count(*) FROM suppressions"))
    con.executemany(
        "INSERT INTO suppressions (identifier_hash, kind, reason, erasure_id, created_at, "
        "created_by) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        rows,
    )
    after = fetch_one(con.execute("SELECT count(*) FROM suppressions"))
    return int(after[0]) - int(before[0]) if before and after else 0


def verify(
    writer: EventWriter, con: duckdb.DuckDBPyConnection, person: Person
) -> dict[str, dict[str, int]]:
    """Rows per table that still mention each of the person's ids, keyed by salted hash."""
    hash_of = writer.suppressions.hash
    return {
        hash_of(needle): per_table
        for needle, per_table in count_mentions(con, person.needles, whole_words=True).items()
    }


def record(con: duckdb.DuckDBPyConnection, report: ErasureReport) -> None:
    con.execute(
        "INSERT INTO erasures (id, requested_at, requested_by, kind, report) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            report.id,
            report.requested_at,
            report.requested_by,
            report.kind,
            orjson.dumps(report.to_dict()).decode(),
        ],
    )
