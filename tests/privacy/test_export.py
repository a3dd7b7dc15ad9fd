"""Subject access export: everything about the person, nothing about anyone else."""

from __future__ import annotations

import csv
import io
import zipfile

import orjson

from opencx.ingest import Ingestor
from opencx.privacy import export_person
from tests.privacy.conftest import XAVIER_SENT, People


def _open(data: bytes) -> tuple[dict[str, object], zipfile.ZipFile]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    return orjson.loads(archive.read("person.json")), archive


def test_export_holds_every_section_of_the_person(ingestor: Ingestor, people: People) -> None:
    data = export_person(ingestor.store.con, f"email:{XAVIER_SENT[0]}", ingestor.settings)
    person, archive = _open(data)
    assert person["profile_ids"][0] == people.xavier
    assert {e["message_id"] for e in person["events"]} == {"xq-1", "xq-2", "xq-2b", "xq-3", "xq-4"}
    assert person["profile"]["traits"]["name"] == "Xavier Quist"
    assert sorted(person["profile"]["identifiers"]) == ["anonymous_id", "email", "phone", "user_id"]
    for section, expected in {
        "cases": "case-x", "survey_invitations": "inv-x", "decisions": "dec-x",
        "outbox": "ob-x", "tasks": "task-x",
    }.items():  # fmt: skip
        assert [r["id"] for r in person[section]] == [expected], section
    assert [r["text"] for r in person["case_notes"]] == ["called back"]
    assert [r["segment"] for r in person["segments"]] == ["vip"]
    assert [r["name"] for r in person["computed_traits"]] == ["ltv"]
    assert [r["message_id"] for r in person["failed_events"]] == ["xq-bad"]
    consent = person["consent"]
    assert [(c["purpose"], c["granted"]) for c in consent] == [("marketing", True)]
    assert all("token_hash" not in r for r in person["survey_invitations"])
    # Each section also as CSV, one row per record.
    events = list(csv.DictReader(io.StringIO(archive.read("events.csv").decode())))
    assert len(events) == 5 and "properties" in events[0]
    assert archive.read("consent.csv").decode().startswith("channel,purpose,granted")


def test_export_names_no_one_else(ingestor: Ingestor, people: People) -> None:
    data = export_person(ingestor.store.con, people.xavier, ingestor.settings)
    _, archive = _open(data)
    text = b"".join(archive.read(n) for n in archive.namelist()).decode()
    assert people.bianca not in text and "bz-user-1" not in text and "case-b" not in text
    assert "bianca@example.org" not in text
