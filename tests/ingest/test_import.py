"""Bulk import: JSONL, CSV, TSV and Parquet through the same path as the API."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opencx.errors import InvalidInput
from opencx.ingest import Ingestor, SourceContext, import_file, parse_mapping
from opencx.profiles import find_profiles

CALLS = SourceContext("contact-center", "phone")
CALL_MAP = parse_mapping(
    ["event=interaction_type", "phone=caller", "email=customer_email", "timestamp=called_at",
     "properties.topic=topic", "traits.account_number=account"]
)  # fmt: skip


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(["interaction_type,caller,customer_email,called_at,topic,account",
                               *rows]) + "\n")  # fmt: skip
    return path


def test_csv_with_a_column_map_links_to_the_web_profile(ingestor: Ingestor, tmp_path: Path) -> None:
    ingestor.ingest(
        [{"type": "identify", "userId": "u-1", "messageId": "w1",
          "traits": {"email": "jane@example.com"}}],
        SourceContext("web", "web"),
    )  # fmt: skip
    path = write_csv(tmp_path / "calls.csv", [
        "Call Started,(555) 123-4567,JANE@example.com,2026-11-20 10:00:00,billing,ACC-1",
        "Call Ended,555.123.4567,,2026-11-20 10:07:00,billing,ACC-1",
    ])  # fmt: skip
    report = import_file(ingestor, path, CALLS, mapping=CALL_MAP)
    assert (report.rows, report.accepted, report.rejected) == (2, 2, 0)
    [pid] = find_profiles(ingestor.store.con, "email:jane@example.com")
    assert find_profiles(ingestor.store.con, "phone:+15551234567") == [pid]
    assert find_profiles(ingestor.store.con, "account_number:ACC-1") == [pid]
    rows = ingestor.store.con.execute(
        "SELECT event, channel, properties->>'$.topic' FROM events WHERE source = 'contact-center' "
        "ORDER BY timestamp"
    ).fetchall()
    assert rows == [("Call Started", "phone", "billing"), ("Call Ended", "phone", "billing")]


def test_bad_rows_go_to_failed_events_with_their_row_number(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "calls.csv", [
        "Call Started,(555) 123-4567,,2026-11-20 10:00:00,billing,",
        ",(555) 123-4567,,2026-11-20 10:01:00,billing,",
        "Call Ended,(555) 123-4567,,not a time,billing,",
        "Call Ended,,,2026-11-20 10:09:00,billing,",
    ])  # fmt: skip
    report = import_file(ingestor, path, CALLS, mapping=CALL_MAP)
    assert (report.accepted, report.rejected) == (1, 3)
    failed = ingestor.store.con.execute(
        "SELECT row_number, errors, origin FROM failed_events ORDER BY row_number"
    ).fetchall()
    assert [row for row, _, _ in failed] == [3, 4, 5]
    assert json.loads(failed[0][1])[0]["field"] == "event"
    assert json.loads(failed[1][1])[0]["field"] == "timestamp"
    assert json.loads(failed[2][1])[0]["field"] == "userId"  # no identifier at all
    assert failed[0][2] == "import:calls.csv"


def test_importing_the_same_file_twice_adds_nothing(ingestor: Ingestor, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "calls.csv", [
        "Call Started,(555) 123-4567,,2026-11-20 10:00:00,billing,",
        "Call Started,(555) 765-4321,,2026-11-20 11:00:00,device,",
    ])  # fmt: skip
    first = import_file(ingestor, path, CALLS, mapping=CALL_MAP)
    second = import_file(ingestor, path, CALLS, mapping=CALL_MAP)
    assert (first.accepted, second.accepted, second.duplicates) == (2, 0, 2)
    assert ingestor.store.con.execute("SELECT count(*) FROM events").fetchall() == [(2,)]


def test_jsonl_in_the_segment_spec_with_a_broken_line(ingestor: Ingestor, tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    lines = [
        json.dumps({"type": "track", "event": "Store Visit", "userId": "u-9", "messageId": "s1"}),
        "{not json",
        json.dumps({"type": "track", "userId": "u-9", "messageId": "s3"}),
        "",
        json.dumps({"type": "identify", "userId": "u-9", "traits": {"email": "x@y.io"}}),
    ]
    path.write_text("\n".join(lines) + "\n")
    report = import_file(ingestor, path, SourceContext("stores", "store"))
    assert (report.rows, report.accepted, report.rejected) == (4, 2, 2)
    errors = dict(
        ingestor.store.con.execute("SELECT row_number, errors FROM failed_events").fetchall()
    )
    assert "not JSON" in json.loads(errors[2])[0]["message"]
    assert json.loads(errors[3])[0]["field"] == "event"


def test_parquet_and_tsv(ingestor: Ingestor, tmp_path: Path) -> None:
    table = pa.table({
        "interaction_type": ["Store Visit", "Order Completed"],
        "caller": ["+15551234567", "+15551234567"],
        "customer_email": [None, None],
        "called_at": pa.array([1_763_632_800_000_000, 1_763_633_400_000_000], pa.timestamp("us")),
        "topic": ["repair", "accessories"],
        "account": ["ACC-7", "ACC-7"],
    })  # fmt: skip
    pq.write_table(table, tmp_path / "visits.parquet")
    report = import_file(ingestor, tmp_path / "visits.parquet", CALLS, mapping=CALL_MAP)
    assert report.accepted == 2
    tsv = tmp_path / "visits.tsv"
    header = "interaction_type\tcaller\tcustomer_email\tcalled_at\ttopic\taccount\n"
    tsv.write_text(header + "Store Visit\t+15550000000\t\t2026-11-21T09:00:00Z\trepair\tACC-8\n")
    assert import_file(ingestor, tsv, CALLS, mapping=CALL_MAP).accepted == 1
    stamps = ingestor.store.con.execute(
        "SELECT strftime(timestamp, '%Y-%m-%d %H:%M') FROM events ORDER BY timestamp"
    ).fetchall()
    assert stamps == [("2025-11-20 10:00",), ("2025-11-20 10:10",), ("2026-11-21 09:00",)]


def test_mapping_errors_are_clear(ingestor: Ingestor, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="TARGET=COLUMN"):
        parse_mapping(["email"])
    with pytest.raises(InvalidInput, match="'colour' is unknown"):
        parse_mapping(["colour=c"])
    path = write_csv(tmp_path / "calls.csv", ["Call Started,1,,2026-11-20,billing,"])
    with pytest.raises(InvalidInput, match="needs a column map"):
        import_file(ingestor, path, CALLS)
    with pytest.raises(InvalidInput, match="'nope'"):
        import_file(ingestor, path, CALLS, mapping={"event": "nope"})
    with pytest.raises(InvalidInput, match="does not exist"):
        import_file(ingestor, tmp_path / "missing.csv", CALLS, mapping=CALL_MAP)
