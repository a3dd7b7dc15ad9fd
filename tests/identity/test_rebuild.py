"""The fast rebuild gives exactly what replaying every event with every rule gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from opencx.identity import rebuild, replay
from tests.identity.test_persist import HYPO, RULES, ingest_in_batches, splits, streams


def replayed(store: Any) -> tuple[set[Any], set[Any], set[Any]]:
    _, changes = replay(store.con, RULES)
    return (
        {(r.key, r.profile_id, r.seq, r.message_id) for r in changes.identities},
        {(m.profile_id, m.merged_into, m.seq, m.message_id, m.identifier) for m in changes.merges},
        {(c.seq, c.message_id, c.identifier, c.profile_id, c.reason) for c in changes.conflicts},
    )


def stored(store: Any) -> tuple[set[Any], set[Any], set[Any]]:
    con = store.con
    return (
        set(
            con.execute("SELECT identifier, profile_id, seq, message_id FROM identities").fetchall()
        ),
        set(
            con.execute(
                "SELECT profile_id, merged_into, seq, message_id, identifier FROM profile_merges"
            ).fetchall()
        ),
        set(con.execute("SELECT * FROM identity_conflicts").fetchall()),
    )


@HYPO
@given(streams, splits)
def test_fast_rebuild_equals_plain_replay(stream: list[dict[str, Any]], cuts: list[int]) -> None:
    store = ingest_in_batches(stream, cuts)
    expected = replayed(store)
    rebuild(store.con, RULES)
    assert stored(store) == expected


@settings(max_examples=1, deadline=None)
@given(st.just(None))
def test_components_of_every_tier(_: None) -> None:
    # One founding event; several (a second device); and one that meets a limit.
    stream = [
        {"type": "page", "anonymousId": "a1"},
        {"type": "identify", "anonymousId": "a1", "userId": "u1", "traits": {"email": "x@y.io"}},
        {"type": "page", "anonymousId": "b1"},
        {"type": "page", "anonymousId": "b2"},
        {"type": "identify", "anonymousId": "b2", "userId": "u2"},
        {"type": "identify", "anonymousId": "b1", "userId": "u2"},
        {"type": "identify", "anonymousId": "c1", "userId": "u3"},
        {"type": "identify", "anonymousId": "c1", "userId": "u4"},
    ]
    store = ingest_in_batches(stream, [3])
    expected = replayed(store)
    report = rebuild(store.con, RULES)
    assert stored(store) == expected
    assert report.events_moved == 0
    assert report.merges == 1 and report.conflicts == 1
