"""Erasure: nothing of the person left in any table, their replays dropped, others untouched."""

from __future__ import annotations

import orjson
import pytest

from opencx.errors import InvalidInput, NotFound
from opencx.identity import load_graph
from opencx.ingest import Ingestor
from opencx.privacy import PERSON_TABLES, PERSONAL_DATA_FREE, SCRUBBED_TABLES, erase_person
from opencx.privacy._verify import count_mentions, text_columns
from tests.privacy.conftest import (
    WEB,
    XAVIER_SENT,
    XAVIER_VALUES,
    People,
    bianca_events,
    xavier_events,
)

_PERSON_COLUMNS = {"person_id", "profile_id", "identifier", "identifiers", "user_id", "payload"}


def _mentions(ingestor: Ingestor, needles: list[str]) -> dict[str, dict[str, int]]:
    found = count_mentions(ingestor.store.con, [n.lower() for n in needles])
    return {n: {t: c for t, c in per.items() if c} for n, per in found.items() if any(per.values())}


def _bianca_rows(ingestor: Ingestor, people: People) -> dict[str, int]:
    con = ingestor.store.con
    counts = {}
    for table in ("cases", "survey_invitations", "segment_members", "computed_traits",
                  "decisions", "outbox", "agent_tasks"):  # fmt: skip
        counts[table] = con.execute(
            f"SELECT count(*) FROM {table} WHERE person_id = ?", [people.bianca]
        ).fetchall()[0][0]
    for table in ("events", "identities", "profiles"):
        counts[table] = con.execute(
            f"SELECT count(*) FROM {table} WHERE profile_id = ?", [people.bianca]
        ).fetchall()[0][0]
    counts["case_notes"] = con.execute(
        "SELECT count(*) FROM case_notes WHERE case_id = 'case-b'"
    ).fetchall()[0][0]
    counts["audit_log"] = con.execute(
        "SELECT count(*) FROM audit_log WHERE target = ?", [people.bianca]
    ).fetchall()[0][0]
    return counts


def test_every_table_is_covered_by_the_eraser_or_declared_free(ingestor: Ingestor) -> None:
    tables = text_columns(ingestor.store.con)
    known = {*PERSON_TABLES, *SCRUBBED_TABLES, *PERSONAL_DATA_FREE}
    assert sorted(set(tables) - known) == []
    # A table declared free of personal data must not have a column that names a person.
    suspicious = {t: sorted(_PERSON_COLUMNS & set(c)) for t, c in tables.items()}
    assert {t: c for t, c in suspicious.items() if c and t in PERSONAL_DATA_FREE} == {}


def test_erase_leaves_nothing_of_the_person_in_any_table(
    ingestor: Ingestor, people: People
) -> None:
    needles = [*XAVIER_SENT, *XAVIER_VALUES, people.xavier, "Xavier Quist", "203.0.113.77"]
    before = _mentions(ingestor, needles)
    assert set(before) >= {n.lower() for n in needles}  # the fixture put him everywhere
    bianca_before = _bianca_rows(ingestor, people)

    report = erase_person(ingestor, f"email:{XAVIER_SENT[0]}", by="dpo", reason="GDPR art. 17")

    assert _mentions(ingestor, needles) == {}
    assert report.verified and report.remaining == 0
    assert report.removed["events"] == 5
    assert report.removed["failed_events"] == 1
    assert report.removed["cases"] == report.removed["case_notes"] == 1
    assert report.rewritten["events"] == 1  # Bianca's shared-device event, scrubbed
    assert report.rewritten["audit_log"] == 1
    assert _bianca_rows(ingestor, people) == bianca_before
    bianca_traits = ingestor.store.con.execute(
        "SELECT CAST(traits AS VARCHAR), identifiers FROM events WHERE message_id = 'bz-3'"
    ).fetchall()[0]
    assert orjson.loads(bianca_traits[0]) == {"plan": "gold"}
    assert bianca_traits[1] == ["user_id:bz-user-1"]


def test_the_stored_report_and_suppressions_hold_no_personal_data(
    ingestor: Ingestor, people: People
) -> None:
    report = erase_person(ingestor, people.xavier, by="dpo", reason="request")
    con = ingestor.store.con
    stored = con.execute("SELECT CAST(report AS VARCHAR) FROM erasures").fetchall()
    assert len(stored) == 1
    text = stored[0][0].lower()
    for value in [*XAVIER_SENT, *XAVIER_VALUES, people.xavier]:
        assert value.lower() not in text
    kinds = con.execute("SELECT kind FROM suppressions ORDER BY kind").fetchall()
    assert [k[0] for k in kinds] == ["anonymous_id", "email", "phone", "user_id"]
    assert report.suppressed == 4
    assert orjson.loads(stored[0][0])["verified"] is True


def test_replayed_and_late_events_of_an_erased_person_are_dropped_and_counted(
    ingestor: Ingestor, people: People
) -> None:
    erase_person(ingestor, f"phone:{XAVIER_SENT[1]}", by="dpo", reason="request")
    replay = ingestor.ingest(xavier_events(), WEB)
    late = ingestor.ingest(
        [{"type": "track", "messageId": "xq-late", "event": "Order Completed",
          "anonymousId": XAVIER_SENT[3]}],
        WEB,
    )  # fmt: skip
    assert (replay.accepted, replay.dropped, replay.rejected) == (5, 5, 0)
    assert (late.accepted, late.dropped) == (1, 1)
    con = ingestor.store.con
    assert _mentions(ingestor, [*XAVIER_VALUES]) == {}
    dropped = dict(con.execute("SELECT kind, dropped FROM suppressions").fetchall())
    # xq-1 and xq-late carry only the anonymous id, xq-2b both ids, xq-2 all but it.
    assert dropped == {"anonymous_id": 3, "user_id": 4, "email": 1, "phone": 1}
    assert con.execute(
        "SELECT count(*) FROM suppressions WHERE last_dropped_at IS NOT NULL"
    ).fetchall() == [(4,)]
    # Bianca still gets in.
    assert ingestor.ingest(bianca_events(), WEB).dropped == 0


def test_the_writer_graph_forgets_the_person_exactly_as_a_reload_would(
    ingestor: Ingestor, people: People
) -> None:
    # A split of Xavier's old profile left two other people's ids apart: the block stays.
    ingestor.store.con.execute(
        "INSERT INTO identity_blocks (identifier, other, split_from) "
        "VALUES ('user_id:bz-user-1', 'user_id:third', ?)",
        [people.xavier],
    )
    ingestor.writer.reload_identity()
    report = erase_person(ingestor, people.xavier, by="dpo", reason="request")
    assert report.rewritten["identity_blocks"] == 1 and report.verified
    graph = ingestor.writer.graph
    reloaded = load_graph(ingestor.store.con, ingestor.settings.identity)
    assert graph.owners() == reloaded.owners()
    assert graph.profiles() == reloaded.profiles()
    assert graph.merged() == reloaded.merged()
    assert graph._blocks == reloaded._blocks
    assert graph._split_origin == reloaded._split_origin
    assert graph._kept_origin == reloaded._kept_origin
    assert all("xq" not in key for key in graph.owners())
    # A new person with a suppressed identifier's neighbour value resolves normally.
    result = ingestor.ingest(
        [{"type": "identify", "messageId": "new-1", "userId": "someone-else"}], WEB
    )
    assert (result.accepted, result.dropped) == (1, 0)


def test_erase_by_a_merged_profile_id_takes_the_whole_person(
    ingestor: Ingestor, people: People
) -> None:
    merged = ingestor.store.con.execute(
        "SELECT profile_id FROM profile_merges WHERE canonical_id = ?", [people.xavier]
    ).fetchall()
    assert merged  # the anonymous visit's profile was merged into the signed-in one
    report = erase_person(ingestor, merged[0][0], by="dpo", reason="request")
    assert report.verified
    assert len(report.profiles) == 2


def test_erase_on_a_running_writer(ingestor: Ingestor, people: People) -> None:
    ingestor.start()
    try:
        report = erase_person(ingestor, f"user_id:{XAVIER_SENT[2]}", by="dpo", reason="x")
        assert report.verified
        assert ingestor.ingest(xavier_events(), WEB).dropped == 5
    finally:
        ingestor.stop()


def test_unknown_people_and_bad_input_are_refused(ingestor: Ingestor, people: People) -> None:
    with pytest.raises(NotFound, match="p_0000"):
        erase_person(ingestor, "p_0000000000000000", by="dpo", reason="x")
    with pytest.raises(InvalidInput, match="KIND:VALUE"):
        erase_person(ingestor, "nobody", by="dpo", reason="x")
    with pytest.raises(InvalidInput, match="by must name"):
        erase_person(ingestor, people.xavier, by=" ", reason="x")


def test_an_identifier_no_profile_holds_is_still_suppressed(ingestor: Ingestor) -> None:
    report = erase_person(ingestor, "email:ghost@example.com", by="dpo", reason="asked first")
    assert report.suppressed == 1 and report.profiles == []
    result = ingestor.ingest(
        [{"type": "identify", "messageId": "g-1", "traits": {"email": "Ghost@Example.com"}}], WEB
    )
    assert result.dropped == 1


def test_erasing_someone_whose_event_named_another_leaves_the_other_whole(
    ingestor: Ingestor, people: People
) -> None:
    con = ingestor.store.con

    def xavier_rows() -> list[int]:
        return [
            con.execute(sql, [people.xavier]).fetchall()[0][0]
            for sql in (
                "SELECT count(*) FROM events WHERE profile_id IN (SELECT ? UNION "
                "SELECT profile_id FROM profile_merges WHERE canonical_id = $1)",
                "SELECT count(*) FROM identities i LEFT JOIN profile_merges m "
                "ON m.profile_id = i.profile_id WHERE coalesce(m.canonical_id, i.profile_id) = ?",
                "SELECT count(*) FROM cases WHERE person_id = ?",
            )
        ]

    before = xavier_rows()
    # Bianca's shared-device event carried Xavier's email: erasing her must not take it.
    report = erase_person(ingestor, "email:bianca@example.org", by="dpo", reason="request")
    assert report.verified
    assert xavier_rows() == before
    assert con.execute("SELECT count(*) FROM failed_events").fetchall() == [(1,)]
    assert [i["kind"] for i in report.identifiers] == ["email", "user_id"]
