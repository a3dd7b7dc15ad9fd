"""Subject access export: everything OpenCX holds about one person, as JSON and CSV, zipped."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from opencx.config import Settings, load_settings
from opencx.identity import IdentifierExtractor
from opencx.orchestrate.consent import consents_of
from opencx.privacy._person import PERSON_TABLES, resolve_person
from opencx.profiles import get_profile

# The tables a person's export reads, under the names its files get.
_SECTIONS: dict[str, str] = {
    "events": "events",
    "identifiers": "identities",
    "merged_profiles": "profile_merges",
    "computed_traits": "computed_traits",
    "segments": "segment_members",
    "survey_invitations": "survey_invitations",
    "cases": "cases",
    "case_notes": "case_notes",
    "decisions": "decisions",
    "outbox": "outbox",
    "tasks": "agent_tasks",
    "failed_events": "failed_events",
}
_HIDDEN = {"survey_invitations": {"token_hash"}}  # a secret of ours, not data about them


def export_person(
    con: duckdb.DuckDBPyConnection, identifier: str, settings: Settings | None = None
) -> bytes:
    """A zip: `person.json` with every section, and one CSV per section.

    `identifier` is `KIND:VALUE` or a profile id. Survey answers are in `events`
    (`Survey Responded`); the consent ledger is in `consent`.
    """
    settings = settings or load_settings()
    extractor = IdentifierExtractor(settings.identity, settings.default_region)
    person = resolve_person(con, extractor, identifier)
    params = person.params(con)
    sections: dict[str, list[dict[str, Any]]] = {}
    for name, table in _SECTIONS.items():
        where = PERSON_TABLES[table]
        used = {k: v for k, v in params.items() if f"${k}" in where}
        cur = con.execute(f"SELECT * FROM {table} WHERE {where}", used)
        columns = [d[0] for d in cur.description]
        hidden = _HIDDEN.get(name, set())
        sections[name] = [
            {c: _plain(v) for c, v in zip(columns, row, strict=True) if c not in hidden}
            for row in cur.fetchall()
        ]
    profile: dict[str, Any] = {}
    consent: list[dict[str, Any]] = []
    if person.profile_ids:
        found = get_profile(con, person.profile_ids[0])
        profile = _dataclass(found)
        consent = [_dataclass(r) for r in consents_of(con, person.profile_ids[0])]
    sections["consent"] = consent
    document = {
        "exported_at": datetime.now(UTC).isoformat(),
        "identifier": identifier,
        "profile_ids": person.profile_ids,
        "identifier_keys": person.keys,
        "profile": profile,
        **sections,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "person.json", orjson.dumps(document, option=orjson.OPT_INDENT_2, default=str)
        )
        for name, rows in sections.items():
            archive.writestr(f"{name}.csv", _csv(rows))
        archive.writestr("README.txt", _README)
    return buffer.getvalue()


_README = """Everything OpenCX holds about you.

person.json holds all of it in one document; each CSV file holds one section:
events (everything you did and we recorded, survey answers included), identifiers,
merged_profiles, computed_traits, segments, survey_invitations, cases, case_notes,
decisions (contacts we considered), outbox (messages sent or queued), tasks,
failed_events (messages that named you but were refused) and consent (your
permissions per channel and purpose, with where each came from).
"""


def _dataclass(value: Any) -> dict[str, Any]:
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is None:
        return {"value": _plain(value)}
    return {name: _plain(getattr(value, name)) for name in fields}


def _plain(value: Any) -> Any:
    """A value JSON and CSV can carry: JSON text parsed, times as ISO strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return _dataclass(value)
    return value


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if not rows:
        return ""
    columns = list(dict.fromkeys(c for row in rows for c in row))
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: orjson.dumps(v, default=str).decode() if isinstance(v, (dict, list)) else v
                for k, v in row.items()
            }
        )
    return out.getvalue()
