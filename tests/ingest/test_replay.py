"""Replaying failed events after the cause is fixed: stored once, marked replayed."""

from __future__ import annotations

import orjson

from opencx.ingest import Ingestor, SourceContext, replay_failed

WEB = SourceContext("web", "web")


def test_replay_stores_fixed_events_once_and_keeps_the_rest(ingestor: Ingestor) -> None:
    con = ingestor.store.con
    ingestor.ingest(
        [
            {"type": "track", "userId": "u-1", "messageId": "fix-me"},  # no event name
            {"type": "track", "event": "X", "userId": "u-1", "messageId": "hopeless",
             "timestamp": "never"},
        ],
        WEB,
    )  # fmt: skip
    # An operator fixes the first payload (e.g. after correcting the sending system).
    payload = orjson.loads(
        con.execute("SELECT payload FROM failed_events WHERE message_id = 'fix-me'").fetchall()[0][
            0
        ]
    )
    payload["event"] = "Bill Paid"
    con.execute(
        "UPDATE failed_events SET payload = ? WHERE message_id = 'fix-me'",
        [orjson.dumps(payload).decode()],
    )
    report = replay_failed(ingestor)
    assert (report.examined, report.stored, report.still_failing) == (2, 1, 1)
    statuses = dict(con.execute("SELECT message_id, status FROM failed_events").fetchall())
    assert statuses == {"fix-me": "replayed", "hopeless": "failed"}
    assert con.execute("SELECT event FROM events").fetchall() == [("Bill Paid",)]

    again = replay_failed(ingestor)
    assert (again.examined, again.stored) == (1, 0)
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(1,)]


def test_replay_of_an_event_already_stored_counts_as_duplicate(ingestor: Ingestor) -> None:
    con = ingestor.store.con
    ingestor.ingest([{"type": "track", "userId": "u", "messageId": "m-1"}], WEB)
    ingestor.ingest([{"type": "track", "event": "E", "userId": "u", "messageId": "m-1"}], WEB)
    con.execute(
        "UPDATE failed_events SET payload = ?",
        [orjson.dumps({"type": "track", "event": "E", "userId": "u", "messageId": "m-1"}).decode()],
    )
    [failed_id] = [r[0] for r in con.execute("SELECT id FROM failed_events").fetchall()]
    report = replay_failed(ingestor, [failed_id])
    assert (report.stored, report.duplicates) == (0, 1)
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(1,)]
