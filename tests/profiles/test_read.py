"""Profiles and timelines: newest trait wins, merged ids still work, pages do not overlap."""

from __future__ import annotations

import pytest

from opencx.errors import InvalidInput, NotFound
from opencx.ingest import Ingestor, SourceContext
from opencx.profiles import find_profiles, get_profile, refresh_profiles, timeline

WEB, APP = SourceContext("web", "web"), SourceContext("ios-app", "app")


def test_traits_merge_newest_wins_across_sources(ingestor: Ingestor) -> None:
    def identify(mid: str, when: str, **traits: str) -> dict[str, object]:
        return {"type": "identify", "userId": "u", "messageId": mid, "timestamp": when,
                "traits": traits}  # fmt: skip

    ingestor.ingest([identify("1", "2026-01-01", plan="basic", email="u@x.io")], WEB)
    ingestor.ingest([identify("2", "2026-02-01", plan="pro", phone="+15550001111")], APP)
    ingestor.ingest([identify("0", "2025-06-01", plan="trial")], WEB)
    [pid] = find_profiles(ingestor.store.con, "user_id:u")
    person = get_profile(ingestor.store.con, pid)
    assert person.traits == {"plan": "pro", "email": "u@x.io", "phone": "+15550001111"}
    assert person.channels == ["app", "web"] and person.sources == ["ios-app", "web"]
    assert person.event_count == 3 and person.counts_by_type == {"identify": 3}
    assert f"{person.first_seen:%Y-%m-%d}" == "2025-06-01"


def test_a_merged_id_leads_to_the_survivor(ingestor: Ingestor) -> None:
    ingestor.ingest([{"type": "page", "anonymousId": "laptop", "messageId": "1"}], WEB)
    ingestor.ingest([{"type": "screen", "anonymousId": "phone", "messageId": "2"}], APP)
    con = ingestor.store.con
    [laptop] = find_profiles(con, "anonymous_id:laptop")
    [phone] = find_profiles(con, "anonymous_id:phone")
    ingestor.ingest([{"type": "identify", "userId": "u", "anonymousId": "laptop", "messageId": "3"},
                     {"type": "identify", "userId": "u", "anonymousId": "phone", "messageId": "4"}],
                    WEB)  # fmt: skip
    merged = get_profile(con, phone)
    assert merged.id == laptop and merged.merged_ids == [phone]
    assert [e.message_id for e in timeline(con, phone)] == ["4", "3", "2", "1"]


def test_timeline_pages_cover_everything_once_even_with_ties(ingestor: Ingestor) -> None:
    same = "2026-03-01T10:00:00Z"
    ingestor.ingest(
        [{"type": "track", "event": f"E{i}", "userId": "u", "messageId": f"m{i}",
          "timestamp": same if i % 2 else f"2026-03-0{1 + i // 3}T09:00:00Z"}
         for i in range(9)],
        WEB,
    )  # fmt: skip
    con = ingestor.store.con
    [pid] = find_profiles(con, "user_id:u")
    seen, before = [], None
    while True:
        page = timeline(con, pid, limit=2, before=before)
        seen += [e.message_id for e in page]
        if len(page) < 2:
            break
        before = page[-1].cursor
    assert sorted(seen) == sorted(f"m{i}" for i in range(9)) and len(seen) == 9
    stamps = [e.timestamp for e in timeline(con, pid, limit=50)]
    assert stamps == sorted(stamps, reverse=True)


def test_timeline_filters_and_bounds(ingestor: Ingestor) -> None:
    ingestor.ingest([{"type": "page", "userId": "u", "messageId": "1"},
                     {"type": "track", "event": "Call", "userId": "u", "messageId": "2",
                      "context": {"channel": "phone"}}], WEB)  # fmt: skip
    con = ingestor.store.con
    [pid] = find_profiles(con, "user_id:u")
    assert [e.channel for e in timeline(con, pid, channels=["phone"])] == ["phone"]
    assert [e.type for e in timeline(con, pid, types=["page"])] == ["page"]
    with pytest.raises(InvalidInput, match="limit"):
        timeline(con, pid, limit=0)
    with pytest.raises(InvalidInput, match="before"):
        timeline(con, pid, before="yesterday-ish")
    with pytest.raises(NotFound):
        get_profile(con, "p_missing")


def test_refresh_fills_the_summary_table(ingestor: Ingestor) -> None:
    ada = {"email": "U@X.io", "first_name": "Ada", "last_name": "Byron"}
    known = {"type": "identify", "userId": "u", "messageId": "1", "traits": ada}
    visitor = {"type": "page", "anonymousId": "visitor", "messageId": "2"}
    ingestor.ingest([known, visitor], WEB)
    con = ingestor.store.con
    assert refresh_profiles(con) == 2
    row = con.execute(
        "SELECT user_id, email, name, channels, event_count FROM profiles WHERE user_id = 'u'"
    ).fetchall()
    assert row == [("u", "u@x.io", "Ada Byron", ["web"], 1)]
