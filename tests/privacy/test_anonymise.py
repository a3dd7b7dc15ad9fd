"""Anonymisation: events kept for aggregates, nothing left that leads back to the person."""

from __future__ import annotations

import orjson

from opencx.ingest import Ingestor
from opencx.privacy import anonymise_person
from opencx.privacy._verify import count_mentions
from tests.privacy.conftest import WEB, XAVIER_SENT, XAVIER_VALUES, People, xavier_events


def test_events_stay_without_identity_or_personal_fields(
    ingestor: Ingestor, people: People
) -> None:
    con = ingestor.store.con
    totals_before = con.execute(
        "SELECT count(*), sum(CAST(json_extract(properties, '$.total') AS DOUBLE)) "
        "FROM events WHERE event = 'Order Completed'"
    ).fetchall()
    report = anonymise_person(ingestor, f"email:{XAVIER_SENT[0]}", by="dpo", reason="request")

    assert report.kind == "anonymise" and report.verified
    assert report.rewritten["events"] == 5
    rows = con.execute(
        "SELECT DISTINCT profile_id, user_id, anonymous_id, identifiers, traits FROM events "
        "WHERE message_id LIKE 'xq-%'"
    ).fetchall()
    assert len(rows) == 1  # one new profile id for all his events
    new_id, user_id, anon, identifiers, traits = rows[0]
    assert new_id not in (people.xavier,) and new_id.startswith("p_")
    assert (user_id, anon, identifiers, traits) == (None, None, [], None)
    # No identifier leads to the new id.
    assert con.execute(
        "SELECT count(*) FROM identities WHERE profile_id = ?", [new_id]
    ).fetchall() == [(0,)]
    # Aggregates are unchanged: same orders, same revenue; the NPS answer is still there.
    assert (
        con.execute(
            "SELECT count(*), sum(CAST(json_extract(properties, '$.total') AS DOUBLE)) "
            "FROM events WHERE event = 'Order Completed'"
        ).fetchall()
        == totals_before
    )
    answer = con.execute(
        "SELECT CAST(properties AS VARCHAR) FROM events WHERE message_id = 'xq-4'"
    ).fetchall()[0][0]
    assert orjson.loads(answer)["score"] == 3
    # Personal fields of context are gone (ip, user agent), other context kept.
    context = con.execute(
        "SELECT CAST(context AS VARCHAR) FROM events WHERE message_id = 'xq-1'"
    ).fetchall()[0][0]
    assert context is None or ("203.0.113.77" not in context and "XQ-Browser" not in context)
    needles = [v.lower() for v in [*XAVIER_SENT, *XAVIER_VALUES, people.xavier, "xavier quist"]]
    left = {
        n: {t: c for t, c in per.items() if c} for n, per in count_mentions(con, needles).items()
    }
    assert {n: per for n, per in left.items() if per} == {}


def test_an_anonymised_person_is_suppressed(ingestor: Ingestor, people: People) -> None:
    anonymise_person(ingestor, people.xavier, by="dpo", reason="request")
    # A replay is a duplicate of the kept events; new events of his are dropped.
    assert ingestor.ingest(xavier_events(), WEB).duplicates == 5
    late = [{**e, "messageId": f"late-{e['messageId']}"} for e in xavier_events()]
    assert ingestor.ingest(late, WEB).dropped == 5
