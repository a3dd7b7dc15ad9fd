"""Time-range purge: a burst of leaked events removed, identity and profiles rebuilt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from opencx.config import Settings
from opencx.errors import InvalidInput
from opencx.identity import load_graph
from opencx.ingest import Ingestor, SourceContext
from opencx.privacy import purge_events
from opencx.profiles import find_profiles, refresh_profiles
from opencx.store import Store

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
_US = 1_000_000


def _at(minutes: int) -> int:
    return int((T0 + timedelta(minutes=minutes)).timestamp() * _US)


def _load(ingestor: Ingestor) -> None:
    crm = SourceContext("crm", "email")
    web = SourceContext("web", "web")
    ingestor.ingest(
        [
            {
                "type": "identify",
                "messageId": "ok-1",
                "userId": "u-ok",
                "traits": {"email": "ok@example.com"},
            }
        ],
        web,
        received_us=_at(0),
    )
    # The leak: a CRM export sent with everyone's card data, linking u-ok to a stray email.
    ingestor.ingest(
        [{"type": "identify", "messageId": f"leak-{i}", "userId": "u-ok" if i == 0 else f"u-{i}",
          "traits": {"email": f"leak{i}@example.com", "card": "4111"}} for i in range(3)],
        crm, received_us=_at(30),
    )  # fmt: skip
    ingestor.ingest(
        [{"type": "track", "messageId": "bad-leak", "event": "Survey Responded",
          "userId": "u-9", "properties": {"score": 1}}],
        crm, received_us=_at(31),
    )  # fmt: skip
    ingestor.ingest([{"type": "track", "messageId": "ok-2", "event": "Order", "userId": "u-ok"}],
                    web, received_us=_at(60))  # fmt: skip
    refresh_profiles(ingestor.store.con)


def test_dry_run_counts_and_deletes_nothing(ingestor: Ingestor) -> None:
    _load(ingestor)
    report = purge_events(
        ingestor, start=T0 + timedelta(minutes=20), end=T0 + timedelta(minutes=40), by="dpo",
        dry_run=True,
    )  # fmt: skip
    assert (report.events, report.failed_events, report.profiles_touched) == (3, 1, 3)
    assert ingestor.store.con.execute("SELECT count(*) FROM events").fetchall() == [(5,)]


def test_purge_removes_the_burst_and_what_only_it_created(ingestor: Ingestor) -> None:
    _load(ingestor)
    con = ingestor.store.con
    assert find_profiles(con, "email:leak0@example.com")  # the leak linked it to u-ok
    report = purge_events(
        ingestor, start=T0 + timedelta(minutes=20), end=T0 + timedelta(minutes=40),
        source="crm", by="dpo",
    )  # fmt: skip
    assert (report.events, report.failed_events) == (3, 1)
    assert con.execute("SELECT message_id FROM events ORDER BY seq").fetchall() == [
        ("ok-1",),
        ("ok-2",),
    ]
    assert con.execute("SELECT count(*) FROM failed_events").fetchall() == [(0,)]
    # Identifiers only the leak carried are gone; u-ok keeps its own.
    idents = {r[0] for r in con.execute("SELECT identifier FROM identities").fetchall()}
    assert idents == {"user_id:u-ok", "email:ok@example.com"}
    assert report.identities_after == 2 < report.identities_before
    profiles = con.execute("SELECT email FROM profiles").fetchall()
    assert profiles == [("ok@example.com",)]
    # The running writer's graph matches the store, and new events resolve onto u-ok.
    graph = ingestor.writer.graph
    assert graph.owners() == load_graph(con, ingestor.settings.identity).owners()
    stored = con.execute("SELECT kind FROM erasures").fetchall()
    assert stored == [("purge",)]


def test_other_sources_and_times_are_kept(ingestor: Ingestor) -> None:
    _load(ingestor)
    report = purge_events(
        ingestor, start=T0 + timedelta(minutes=20), end=T0 + timedelta(minutes=40),
        source="web", by="dpo",
    )  # fmt: skip
    assert report.events == 0
    assert ingestor.store.con.execute("SELECT count(*) FROM events").fetchall() == [(5,)]


def test_bad_ranges_are_refused(store: Store, settings: Settings) -> None:
    ingestor = Ingestor(store, settings)
    with pytest.raises(InvalidInput, match="time zone"):
        purge_events(ingestor, start=datetime(2026, 1, 1), end=T0, by="dpo")
    with pytest.raises(InvalidInput, match="must be after"):
        purge_events(ingestor, start=T0, end=T0, by="dpo")
