"""Bulk import: JSONL, CSV, TSV and Parquet through the same path as the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opencx.errors import InvalidInput
from opencx.ingest import Ingestor, SourceContext, import_file, parse_mapping, row_to_message
from opencx.profiles import find_profiles
from opencx.store import Store
from tests.conftest import WEB

CALLS = SourceContext("contact-center", "phone")
CALL_MAP = parse_mapping(
    ["event=interaction_type", "email=customer_email", "timestamp=called_at",
     "properties.topic=topic"]
)  # fmt: skip
HEADER = "interaction_type,customer_email,called_at,topic"


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def events(store: Store) -> list[tuple[Any, ...]]:
    """(event, channel, source, email trait, topic, timestamp) of every event, oldest first."""
    return store.con.execute(
        "SELECT event, channel, source, traits->>'$.email', properties->>'$.topic', "
        "strftime(timestamp, '%Y-%m-%d %H:%M:%S') FROM events ORDER BY timestamp, event"
    ).fetchall()


def failed(store: Store) -> list[tuple[int, str, list[dict[str, str]], str]]:
    """(row number, origin, errors, payload) of every failed row, in row order."""
    rows = store.con.execute(
        "SELECT row_number, origin, errors, payload FROM failed_events ORDER BY row_number"
    ).fetchall()
    return [(n, origin, json.loads(errors), payload) for n, origin, errors, payload in rows]


def count(store: Store) -> int:
    return int(store.con.execute("SELECT count(*) FROM events").fetchall()[0][0])


# -- JSONL ------------------------------------------------------------------------------
def test_jsonl_in_the_segment_spec_with_bad_lines(ingestor: Ingestor, tmp_path: Path) -> None:
    visit = {"type": "track", "event": "Store Visit", "userId": "u-9", "messageId": "s1",
             "timestamp": "2026-11-20T10:00:00Z"}  # fmt: skip
    nameless = {"type": "track", "userId": "u-9", "messageId": "s3"}
    identify = {"type": "identify", "userId": "u-9", "traits": {"email": "X@Y.io"},
                "timestamp": "2026-11-20T11:00:00Z"}  # fmt: skip
    path = write_lines(
        tmp_path / "stores.jsonl",
        json.dumps(visit),  # line 1
        "{not json",  # line 2
        json.dumps(nameless),  # line 3
        "",  # line 4: blank lines are skipped
        json.dumps(identify),  # line 5
    )
    report = import_file(ingestor, path, SourceContext("stores", "store"))
    assert (report.rows, report.accepted, report.duplicates, report.rejected) == (4, 2, 0, 2)
    assert events(ingestor.store) == [
        ("Store Visit", "store", "stores", None, None, "2026-11-20 10:00:00"),
        (None, "store", "stores", "X@Y.io", None, "2026-11-20 11:00:00"),
    ]
    [(line2, origin, errors2, payload2), (line3, _, errors3, payload3)] = failed(ingestor.store)
    assert (line2, line3) == (2, 3)
    assert origin == "import:stores.jsonl"
    assert errors2[0]["field"] == "line" and "not JSON" in errors2[0]["message"]
    assert payload2.strip() == "{not json"
    assert errors3 == [
        {"field": "event", "message": "event is required for a track call (the action's name), "
         "got null"}
    ]  # fmt: skip
    assert json.loads(payload3) == nameless
    assert find_profiles(ingestor.store.con, "email:x@y.io") == find_profiles(
        ingestor.store.con, "user_id:u-9"
    )


def test_reimporting_jsonl_without_message_ids_adds_nothing(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    path = write_lines(
        tmp_path / "visits.ndjson",
        json.dumps({"type": "track", "event": "Store Visit", "userId": "u-1"}),
        json.dumps({"type": "track", "event": "Store Visit", "userId": "u-2"}),
    )
    first = import_file(ingestor, path, SourceContext("stores", "store"))
    second = import_file(ingestor, path, SourceContext("stores", "store"))
    assert (first.accepted, second.accepted, second.duplicates) == (2, 0, 2)
    assert count(ingestor.store) == 2


# -- CSV, TSV, Parquet with a column map --------------------------------------------------
def test_csv_with_a_column_map(ingestor: Ingestor, tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "calls.csv",
        HEADER,
        "Call Started,JANE@example.com,2026-11-20 10:00:00,billing",
        "Call Ended,jane@example.com,2026-11-20T10:07:30Z,billing",
        'Callback Requested,"bo@example.com",2026-11-20T12:00:00+02:00,"roaming, abroad"',
    )
    progress: list[tuple[int, int]] = []
    report = import_file(
        ingestor, path, CALLS, mapping=CALL_MAP, progress=lambda *p: progress.append(p)
    )
    assert (report.rows, report.accepted, report.rejected) == (3, 3, 0)
    assert progress[-1] == (3, 3)
    assert events(ingestor.store) == [
        ("Call Started", "phone", "contact-center", "JANE@example.com", "billing",
         "2026-11-20 10:00:00"),
        ("Callback Requested", "phone", "contact-center", "bo@example.com", "roaming, abroad",
         "2026-11-20 10:00:00"),
        ("Call Ended", "phone", "contact-center", "jane@example.com", "billing",
         "2026-11-20 10:07:30"),
    ]  # fmt: skip
    identifiers = ingestor.store.con.execute(
        "SELECT DISTINCT identifiers FROM events ORDER BY 1"
    ).fetchall()
    assert identifiers == [(["email:bo@example.com"],), (["email:jane@example.com"],)]


def test_csv_bad_rows_go_to_failed_events_with_their_row_number(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    path = write_lines(
        tmp_path / "calls.csv",
        HEADER,
        "Call Started,jane@example.com,2026-11-20 10:00:00,billing",  # line 2: fine
        ",jane@example.com,2026-11-20 10:01:00,billing",  # line 3: no event
        "Call Ended,jane@example.com,not a time,billing",  # line 4: bad timestamp
        "Call Ended,,2026-11-20 10:09:00,billing",  # line 5: nobody
        "Call Ended,jo@example.com,0001-01-01 00:00:00,billing",  # line 6: out of range
    )
    report = import_file(ingestor, path, CALLS, mapping=CALL_MAP)
    assert (report.rows, report.accepted, report.rejected) == (5, 1, 4)
    rows = failed(ingestor.store)
    assert [(n, [e["field"] for e in errors]) for n, _, errors, _ in rows] == [
        (3, ["event"]),
        (4, ["timestamp"]),
        (5, ["userId"]),
        (6, ["timestamp"]),
    ]
    assert {origin for _, origin, _, _ in rows} == {"import:calls.csv"}
    assert json.loads(rows[1][3])["timestamp"] == "not a time"
    assert count(ingestor.store) == 1


def test_csv_ids_keep_leading_zeros_and_epoch_times_and_numbers_keep_their_type(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    path = write_lines(
        tmp_path / "crm.csv",
        "what,customer,acct,zip,at,minutes",
        "Call Ended,007,00123,02134,1795515300,7",
        "Call Ended,042,00124,02139,1795515300123,12",
    )
    mapping = parse_mapping(
        ["event=what", "userId=customer", "traits.account_number=acct", "traits.zip=zip",
         "timestamp=at", "properties.minutes=minutes"]
    )  # fmt: skip
    assert import_file(ingestor, path, CALLS, mapping=mapping).accepted == 2
    rows = ingestor.store.con.execute(
        "SELECT user_id, identifiers, traits->>'$.zip', properties->'$.minutes', "
        "strftime(timestamp, '%Y-%m-%d %H:%M:%S.%g') FROM events ORDER BY user_id"
    ).fetchall()
    assert rows == [
        ("007", ["user_id:007", "account_number:00123"], "02134", "7",
         "2026-11-24 10:15:00.000"),
        ("042", ["user_id:042", "account_number:00124"], "02139", "12",
         "2026-11-24 10:15:00.123"),
    ]  # fmt: skip


def test_a_mapped_channel_overrides_the_source_default(ingestor: Ingestor, tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "crm.csv",
        "what,who,via",
        "Case Opened,a@x.io,chat",
        "Case Opened,b@x.io,",
        "Case Opened,c@x.io,pigeon",
    )
    mapping = parse_mapping(["event=what", "email=who", "channel=via"])
    report = import_file(ingestor, path, CALLS, mapping=mapping)
    assert (report.accepted, report.rejected) == (2, 1)
    channels = ingestor.store.con.execute(
        "SELECT traits->>'$.email', channel FROM events ORDER BY 1"
    ).fetchall()
    assert channels == [("a@x.io", "chat"), ("b@x.io", "phone")]
    [(row, _, errors, _)] = failed(ingestor.store)
    assert (row, errors[0]["field"]) == (4, "context.channel")


def test_tsv(ingestor: Ingestor, tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "visits.tsv",
        HEADER.replace(",", "\t"),
        "Store Visit\tkim@example.com\t2026-11-21T09:00:00Z\trepair, screen",
    )
    report = import_file(ingestor, path, SourceContext("stores", "store"), mapping=CALL_MAP)
    assert (report.rows, report.accepted) == (1, 1)
    assert events(ingestor.store) == [
        ("Store Visit", "store", "stores", "kim@example.com", "repair, screen",
         "2026-11-21 09:00:00")
    ]  # fmt: skip


def test_parquet(ingestor: Ingestor, tmp_path: Path) -> None:
    table = pa.table(
        {
            "interaction_type": ["Store Visit", "Order Completed", None],
            "customer_email": ["kim@example.com", "kim@example.com", "kim@example.com"],
            "called_at": pa.array(
                [1_763_632_800_000_000, 1_763_633_400_000_000, 1_763_634_000_000_000],
                pa.timestamp("us"),
            ),
            "topic": ["repair", "accessories", "repair"],
        }
    )
    pq.write_table(table, tmp_path / "visits.parquet")
    report = import_file(
        ingestor, tmp_path / "visits.parquet", SourceContext("stores", "store"), mapping=CALL_MAP
    )
    assert (report.rows, report.accepted, report.rejected) == (3, 2, 1)
    assert events(ingestor.store) == [
        ("Store Visit", "store", "stores", "kim@example.com", "repair", "2025-11-20 10:00:00"),
        ("Order Completed", "store", "stores", "kim@example.com", "accessories",
         "2025-11-20 10:10:00"),
    ]  # fmt: skip
    [(row, _, errors, _)] = failed(ingestor.store)
    assert (row, errors[0]["field"]) == (3, "event")  # Parquet rows count from 1


@pytest.mark.parametrize("kind", ["csv", "tsv", "parquet"])
def test_reimporting_the_same_file_adds_nothing(
    ingestor: Ingestor, tmp_path: Path, kind: str
) -> None:
    table = pa.table(
        {
            "interaction_type": ["Call Started", "Call Started"],
            "customer_email": ["a@example.com", "b@example.com"],
            "called_at": ["2026-11-20 10:00:00", "2026-11-20 11:00:00"],
            "topic": ["billing", "device"],
        }
    )
    path = tmp_path / f"calls.{kind}"
    if kind == "parquet":
        pq.write_table(table, path)
    else:
        sep = "\t" if kind == "tsv" else ","
        rows = [sep.join(table.column_names)]
        rows += [sep.join(str(v) for v in row.values()) for row in table.to_pylist()]
        write_lines(path, *rows)
    first = import_file(ingestor, path, CALLS, mapping=CALL_MAP)
    second = import_file(ingestor, path, CALLS, mapping=CALL_MAP)
    assert (first.accepted, first.duplicates) == (2, 0)
    assert (second.accepted, second.duplicates) == (0, 2)
    assert count(ingestor.store) == 2


# -- mapping -------------------------------------------------------------------------------
def test_rows_become_segment_messages_through_the_map() -> None:
    mapping = parse_mapping(
        ["event=what", "userId=customer", "phone=tel", "traits.tier=tier",
         "context.traits.account_number=acct", "properties.minutes=minutes"]
    )  # fmt: skip
    row = {"what": "Call Ended", "customer": 17, "tel": "555-0100", "tier": "gold",
           "acct": "ACC-1", "minutes": 7, "unused": "x"}  # fmt: skip
    assert row_to_message(row, mapping) == {
        "type": "track",
        "event": "Call Ended",
        "userId": 17,
        "context": {"traits": {"phone": "555-0100", "account_number": "ACC-1"}},
        "traits": {"tier": "gold"},
        "properties": {"minutes": 7},
    }
    empty = row_to_message({**row, "tel": None, "tier": ""}, mapping)
    assert empty["context"] == {"traits": {"account_number": "ACC-1"}}
    assert "traits" not in empty


@pytest.mark.parametrize(
    ("pairs", "says"),
    [
        (["email"], "--map 'email' must be TARGET=COLUMN"),
        (["=customer_email"], "must be TARGET=COLUMN"),
        (["email="], "must be TARGET=COLUMN"),
        (["colour=c"], "--map target 'colour' is unknown"),
        (["props.topic=topic"], "--map target 'props.topic' is unknown"),
    ],
)
def test_bad_mappings_are_refused_naming_the_target(pairs: list[str], says: str) -> None:
    with pytest.raises(InvalidInput, match=says.replace(".", r"\.")) as raised:
        parse_mapping(pairs)
    assert "email=customer_email" in raised.value.message or "traits.NAME" in raised.value.message


def test_file_problems_are_clear(ingestor: Ingestor, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "calls.csv", HEADER, "Call Started,a@x.io,2026-11-20,billing")
    with pytest.raises(InvalidInput, match="needs a column map"):
        import_file(ingestor, path, CALLS)
    with pytest.raises(InvalidInput, match=r"column 'nope' \(mapped to event\) is not in the file"):
        import_file(ingestor, path, CALLS, mapping={"event": "nope"})
    with pytest.raises(InvalidInput, match="does not exist"):
        import_file(ingestor, tmp_path / "missing.csv", CALLS, mapping=CALL_MAP)
    odd = write_lines(tmp_path / "calls.xlsx", "x")
    with pytest.raises(InvalidInput, match=r"cannot tell the format of calls\.xlsx"):
        import_file(ingestor, odd, CALLS, mapping=CALL_MAP)
    with pytest.raises(InvalidInput, match="format must be jsonl, csv, tsv or parquet"):
        import_file(ingestor, odd, CALLS, mapping=CALL_MAP, fmt="xlsx")
    assert count(ingestor.store) == 0


# -- identity ----------------------------------------------------------------------------
def test_imported_rows_link_to_the_existing_web_profile_by_email(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    ingestor.ingest(
        [
            {"type": "page", "name": "Plans", "anonymousId": "a-1", "messageId": "w1"},
            {"type": "identify", "userId": "u-1", "anonymousId": "a-1", "messageId": "w2",
             "traits": {"email": "jane@example.com"}},
        ],
        WEB,
    )  # fmt: skip
    path = write_lines(
        tmp_path / "calls.csv",
        HEADER + ",caller",
        "Call Started,Jane@Example.com,2026-11-20 10:00:00,billing,(555) 123-4567",
        "Call Started,other@example.com,2026-11-20 11:00:00,device,",
    )
    mapping = {**CALL_MAP, **parse_mapping(["phone=caller"])}
    assert import_file(ingestor, path, CALLS, mapping=mapping).accepted == 2
    con = ingestor.store.con
    [web] = find_profiles(con, "email:jane@example.com")
    assert find_profiles(con, "user_id:u-1") == [web]
    assert find_profiles(con, "phone:+15551234567") == [web]
    people = dict(
        con.execute(
            "SELECT coalesce(traits->>'$.email', message_id), person_id FROM resolved_events"
        ).fetchall()
    )
    assert people["w1"] == people["Jane@Example.com"] == web
    assert people["other@example.com"] != web
