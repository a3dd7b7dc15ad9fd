"""Profiles and timelines: newest trait wins, merged ids still work, pages do not overlap."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from opencx.errors import InvalidInput, NotFound
from opencx.ingest import Ingestor, SourceContext
from opencx.profiles import (
    MAX_TIMELINE,
    canonical_id,
    computed_traits,
    find_profiles,
    get_profile,
    refresh_profiles,
    timeline,
)

WEB, APP = SourceContext("web", "web"), SourceContext("ios-app", "app")
CRM = SourceContext("crm", "email")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def identify(mid: str, when: str, user: str = "u", **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "messageId": mid, "timestamp": when,
            "traits": traits}  # fmt: skip


def one_profile(ingestor: Ingestor, identifier: str) -> str:
    found = find_profiles(ingestor.store.con, identifier)
    assert len(found) == 1, found
    return found[0]


def all_pages(ingestor: Ingestor, pid: str, limit: int, **filters: Any) -> list[list[str]]:
    pages, before = [], None
    while True:
        page = timeline(ingestor.store.con, pid, limit=limit, before=before, **filters)
        pages.append([e.message_id for e in page])
        if len(page) < limit:
            return pages
        before = page[-1].cursor


# -- profiles ------------------------------------------------------------------------
def test_traits_newest_wins_per_trait_across_sources(ingestor: Ingestor) -> None:
    ingestor.ingest([identify("2", "2026-02-01T08:00:00Z", plan="pro", phone="(555) 000-1111")],
                    APP)  # fmt: skip
    older = identify("1", "2026-01-01T08:00:00Z", plan="basic", email="U@X.io", city="Lyon")
    ingestor.ingest([older], WEB)  # older, but stored later
    ingestor.ingest([identify("3", "2026-03-01T08:00:00Z", city="Paris")], CRM)
    pid = one_profile(ingestor, "user_id:u")
    person = get_profile(ingestor.store.con, pid)
    assert person.id == pid
    assert person.traits == {
        "plan": "pro",  # the newer identify wins although it was stored first
        "email": "U@X.io",
        "phone": "(555) 000-1111",
        "city": "Paris",
    }
    assert person.identifiers == {
        "user_id": ["u"],
        "phone": ["+15550001111"],
        "email": ["u@x.io"],
    }
    assert person.first_seen == at("2026-01-01T08:00:00")
    assert person.last_seen == at("2026-03-01T08:00:00")
    assert person.channels == ["app", "email", "web"]
    assert person.sources == ["crm", "ios-app", "web"]
    assert person.event_count == 3 and person.counts_by_type == {"identify": 3}
    assert person.merged_ids == []


def test_computed_traits_are_kept_apart_from_the_customers_own(ingestor: Ingestor) -> None:
    ingestor.ingest([identify("1", "2026-01-01T08:00:00Z", plan="pro")], WEB)
    pid = one_profile(ingestor, "user_id:u")
    con = ingestor.store.con
    assert (get_profile(con, pid).computed, get_profile(con, pid).computed_at) == ({}, None)
    con.execute(
        "INSERT INTO computed_traits VALUES (?, 'effort_channel_hops_90d', '2', ?), "
        "(?, 'effort_score_90d', '3', ?), ('someone-else', 'effort_score_90d', '9', ?)",
        [pid, at("2026-02-01T00:00:00"), pid, at("2026-02-02T00:00:00"),
         at("2026-02-03T00:00:00")],
    )  # fmt: skip
    person = get_profile(con, pid)
    assert person.computed == {"effort_channel_hops_90d": 2, "effort_score_90d": 3}
    assert person.computed_at == at("2026-02-02T00:00:00")
    assert person.traits == {"plan": "pro"}  # the customer's own traits are unchanged
    assert computed_traits(con, pid) == (person.computed, person.computed_at)


def test_the_same_person_is_found_by_every_identifier(ingestor: Ingestor) -> None:
    ingestor.ingest([identify("1", "2026-01-01T00:00:00Z", email="Ana@Example.com",
                              phone="+1 555 123 4567")], WEB)  # fmt: skip
    pid = one_profile(ingestor, "user_id:u")
    con = ingestor.store.con
    for key in ("email:ana@example.com", "phone:+15551234567"):
        assert find_profiles(con, key) == [pid]
    assert find_profiles(con, "email:Ana@Example.com") == []  # lookups take normalised keys
    assert find_profiles(con, "email:nobody@example.com") == []


def test_counts_by_type_and_channel_from_context(ingestor: Ingestor) -> None:
    ingestor.ingest(
        [{"type": "page", "userId": "u", "messageId": "1", "timestamp": "2026-01-01T00:00:00Z"},
         {"type": "page", "userId": "u", "messageId": "2", "timestamp": "2026-01-02T00:00:00Z"},
         {"type": "track", "event": "Call", "userId": "u", "messageId": "3",
          "timestamp": "2026-01-03T00:00:00Z", "context": {"channel": "phone"}}],
        WEB,
    )  # fmt: skip
    person = get_profile(ingestor.store.con, one_profile(ingestor, "user_id:u"))
    assert person.counts_by_type == {"page": 2, "track": 1}
    assert person.event_count == 3
    assert person.channels == ["phone", "web"] and person.sources == ["web"]
    assert person.traits == {}


def test_a_merged_id_leads_to_the_survivor(ingestor: Ingestor) -> None:
    ingestor.ingest([{"type": "page", "anonymousId": "laptop", "messageId": "1",
                      "timestamp": "2026-01-01T00:00:00Z"}], WEB)  # fmt: skip
    ingestor.ingest([{"type": "screen", "anonymousId": "phone", "messageId": "2",
                      "timestamp": "2026-01-02T00:00:00Z"}], APP)  # fmt: skip
    con = ingestor.store.con
    laptop = one_profile(ingestor, "anonymous_id:laptop")
    phone = one_profile(ingestor, "anonymous_id:phone")
    assert laptop != phone
    ingestor.ingest(
        [{"type": "identify", "userId": "u", "anonymousId": "laptop", "messageId": "3",
          "timestamp": "2026-01-03T00:00:00Z", "traits": {"plan": "basic"}},
         {"type": "identify", "userId": "u", "anonymousId": "phone", "messageId": "4",
          "timestamp": "2026-01-04T00:00:00Z", "traits": {"plan": "pro"}}],
        WEB,
    )  # fmt: skip
    for pid in (laptop, phone):
        assert canonical_id(con, pid) == laptop  # the older profile survives
        merged = get_profile(con, pid)
        assert merged.id == laptop and merged.merged_ids == [phone]
        assert merged.identifiers == {
            "anonymous_id": ["laptop", "phone"],
            "user_id": ["u"],
        }
        assert merged.traits == {"plan": "pro"}
        assert merged.event_count == 4 and merged.channels == ["app", "web"]
        assert merged.counts_by_type == {"identify": 2, "page": 1, "screen": 1}
        assert [e.message_id for e in timeline(con, pid)] == ["4", "3", "2", "1"]
    for key in ("anonymous_id:laptop", "anonymous_id:phone", "user_id:u"):
        assert find_profiles(con, key) == [laptop]


def test_a_chain_of_merges_leads_every_old_id_to_the_last_survivor(ingestor: Ingestor) -> None:
    for day, device in enumerate(["x", "y", "z"], start=1):
        ingestor.ingest([{"type": "page", "anonymousId": device, "messageId": f"p{device}",
                          "timestamp": f"2026-01-0{day}T00:00:00Z"}], WEB)  # fmt: skip
    ids = {device: one_profile(ingestor, f"anonymous_id:{device}") for device in "xyz"}
    # y absorbs z (through a user id), then x absorbs y (through an email).
    ingestor.ingest([{"type": "identify", "userId": "u", "anonymousId": d, "messageId": f"u{d}"}
                     for d in "yz"], WEB)  # fmt: skip
    ingestor.ingest([{"type": "identify", "anonymousId": d, "traits": {"email": "a@b.co"},
                      "messageId": f"e{d}"} for d in "xy"], WEB)  # fmt: skip
    con = ingestor.store.con
    for device in "xyz":
        person = get_profile(con, ids[device])
        assert person.id == ids["x"]
        assert person.merged_ids == [ids["z"], ids["y"]]  # in the order they were merged
        assert find_profiles(con, f"anonymous_id:{device}") == [ids["x"]]
    assert len(timeline(con, ids["z"])) == 7


def test_unknown_profiles_are_not_found(ingestor: Ingestor) -> None:
    con = ingestor.store.con
    for read in (canonical_id, get_profile, timeline):
        with pytest.raises(NotFound, match="no profile with id 'p_missing'"):
            read(con, "p_missing")  # type: ignore[operator]


# -- timeline ------------------------------------------------------------------------
MIXED = [  # (message id, timestamp, type, channel): ties on purpose, stored out of order
    ("a", "2026-03-01T10:00:00Z", "page", None),
    ("b", "2026-03-01T10:00:00Z", "track", "phone"),
    ("c", "2026-03-02T09:30:00.250Z", "track", "chat"),
    ("d", "2026-02-27T23:59:59Z", "identify", None),
    ("e", "2026-03-01T10:00:00Z", "page", None),
    ("f", "2026-03-02T09:30:00.250Z", "screen", "app"),
    ("g", "2026-03-01T10:00:00Z", "track", "phone"),
    ("h", "2026-03-03T00:00:00Z", "page", None),
    ("i", "2026-03-01T10:00:00Z", "track", "chat"),
    ("j", "2026-02-28T00:00:00.000001Z", "track", None),
    ("k", "2026-03-02T09:30:00.250Z", "page", None),
]
NEWEST_FIRST = ["h", "k", "f", "c", "i", "g", "e", "b", "a", "j", "d"]


def load_mixed(ingestor: Ingestor) -> str:
    messages = []
    for mid, when, kind, channel in MIXED:
        message: dict[str, Any] = {"type": kind, "userId": "u", "messageId": mid, "timestamp": when}
        if kind == "track":
            message["event"] = f"Event {mid}"
            message["properties"] = {"n": mid}
        if channel:
            message["context"] = {"channel": channel}
        messages.append(message)
    result = ingestor.ingest(messages, WEB)
    assert result.accepted == len(MIXED)
    return one_profile(ingestor, "user_id:u")


def test_timeline_is_newest_first_with_ties_in_arrival_order_reversed(
    ingestor: Ingestor,
) -> None:
    pid = load_mixed(ingestor)
    entries = timeline(ingestor.store.con, pid)
    assert [e.message_id for e in entries] == NEWEST_FIRST
    keys = [(e.timestamp, e.seq) for e in entries]
    assert keys == sorted(keys, reverse=True)
    call = next(e for e in entries if e.message_id == "b")
    assert (call.type, call.event, call.channel) == ("track", "Event b", "phone")
    assert call.source == "web"
    assert call.properties == {"n": "b"} and call.context is not None
    assert call.timestamp == at("2026-03-01T10:00:00") and call.received_at is not None


def test_pages_return_each_event_exactly_once(ingestor: Ingestor) -> None:
    pid = load_mixed(ingestor)
    for limit in (1, 2, 3, 4, 5, 11, 12):
        pages = all_pages(ingestor, pid, limit)
        assert [mid for page in pages for mid in page] == NEWEST_FIRST, limit
        assert all(len(page) == limit for page in pages[:-1]) and len(pages[-1]) < limit


def test_pages_with_filters_return_each_match_exactly_once(ingestor: Ingestor) -> None:
    pid = load_mixed(ingestor)
    pages = all_pages(ingestor, pid, 2, channels=["phone", "chat"], types=["track"])
    assert [mid for page in pages for mid in page] == ["c", "i", "g", "b"]


def test_before_accepts_an_iso_time_and_is_exclusive(ingestor: Ingestor) -> None:
    pid = load_mixed(ingestor)
    con = ingestor.store.con
    exactly = timeline(con, pid, before="2026-03-01T10:00:00Z")
    assert [e.message_id for e in exactly] == ["j", "d"]
    naive = timeline(con, pid, before="2026-03-02T09:30:00.250")  # no zone: UTC
    assert [e.message_id for e in naive] == ["i", "g", "e", "b", "a", "j", "d"]
    offset = timeline(con, pid, before="2026-03-01T00:00:00+01:00")  # 23:00 UTC the day before
    assert [e.message_id for e in offset] == ["j", "d"]
    assert timeline(con, pid, before="2020-01-01T00:00:00Z") == []


def test_timeline_filters_by_channel_and_type(ingestor: Ingestor) -> None:
    pid = load_mixed(ingestor)
    con = ingestor.store.con
    assert [e.message_id for e in timeline(con, pid, channels=["phone"])] == ["g", "b"]
    assert [e.message_id for e in timeline(con, pid, channels=["app", "chat"])] == ["f", "c", "i"]
    assert [e.message_id for e in timeline(con, pid, types=["page"])] == ["h", "k", "e", "a"]
    both = timeline(con, pid, channels=["web"], types=["page", "identify"])
    assert [e.message_id for e in both] == ["h", "k", "e", "a", "d"]
    assert timeline(con, pid, channels=["store"]) == []
    assert timeline(con, pid, types=["alias"]) == []


def test_limit_out_of_bounds_is_invalid(ingestor: Ingestor) -> None:
    pid = load_mixed(ingestor)
    for limit in (0, -1, MAX_TIMELINE + 1, 10_000):
        with pytest.raises(InvalidInput, match=rf"limit must be between 1 and {MAX_TIMELINE}"):
            timeline(ingestor.store.con, pid, limit=limit)


def test_limit_bounds_themselves_are_fine(ingestor: Ingestor) -> None:
    pid = load_mixed(ingestor)
    con = ingestor.store.con
    assert [e.message_id for e in timeline(con, pid, limit=1)] == ["h"]
    assert len(timeline(con, pid, limit=MAX_TIMELINE)) == len(MIXED)


def test_a_bad_cursor_names_the_field(ingestor: Ingestor) -> None:
    pid = load_mixed(ingestor)
    for before in ("yesterday-ish", "12:ab", "2026-13-01", ":5"):
        with pytest.raises(InvalidInput, match=r"before must be a timeline cursor or an ISO 8601"):
            timeline(ingestor.store.con, pid, before=before)


# -- the profiles summary table ------------------------------------------------------
def summary(ingestor: Ingestor) -> dict[str, dict[str, Any]]:
    rows = ingestor.store.con.execute(
        "SELECT profile_id, user_id, email, phone, name, identifiers, traits, channels, "
        "event_count, first_seen, last_seen FROM profiles"
    ).fetchall()
    names = ("user_id", "email", "phone", "name", "identifiers", "traits", "channels",
             "event_count", "first_seen", "last_seen")  # fmt: skip
    return {r[0]: dict(zip(names, r[1:], strict=True)) for r in rows}


def test_refresh_fills_the_summary_table(ingestor: Ingestor) -> None:
    ada = {"email": "Ada@X.io", "first_name": "Ada", "last_name": "Byron"}
    ingestor.ingest([identify("1", "2026-01-01T00:00:00Z", user="ada", **ada)], WEB)
    ingestor.ingest([identify("2", "2026-01-05T00:00:00Z", user="ada", phone="555-123-4567")], APP)
    ingestor.ingest([{"type": "page", "anonymousId": "visitor", "messageId": "3",
                      "timestamp": "2026-01-02T00:00:00Z"}], WEB)  # fmt: skip
    con = ingestor.store.con
    assert refresh_profiles(con) == 2
    table = summary(ingestor)
    ada_id = one_profile(ingestor, "user_id:ada")
    visitor_id = one_profile(ingestor, "anonymous_id:visitor")
    assert set(table) == {ada_id, visitor_id}
    row = table[ada_id]
    assert (row["user_id"], row["email"], row["phone"], row["name"]) == (
        "ada", "ada@x.io", "+15551234567", "Ada Byron"
    )  # fmt: skip
    assert row["identifiers"] == ["user_id:ada", "email:ada@x.io", "phone:+15551234567"]
    assert row["channels"] == ["app", "web"] and row["event_count"] == 2
    assert (row["first_seen"], row["last_seen"]) == (at("2026-01-01T00:00"), at("2026-01-05T00:00"))
    assert orjson.loads(row["traits"]) == {**ada, "phone": "555-123-4567"}
    visitor = table[visitor_id]
    assert (visitor["user_id"], visitor["email"], visitor["phone"], visitor["name"]) == (None,) * 4
    assert visitor["identifiers"] == ["anonymous_id:visitor"]
    assert visitor["channels"] == ["web"] and visitor["event_count"] == 1
    assert visitor["traits"] is None


def test_refresh_prefers_the_name_trait_and_the_newest_value(ingestor: Ingestor) -> None:
    ingestor.ingest([identify("1", "2026-01-01T00:00:00Z", first_name="Ada", name="Ada L.")], WEB)
    ingestor.ingest([identify("2", "2026-02-01T00:00:00Z", name="Ada Lovelace")], WEB)
    ingestor.ingest([identify("0", "2025-12-01T00:00:00Z", name="A. Byron")], WEB)
    refresh_profiles(ingestor.store.con)
    [row] = summary(ingestor).values()
    assert row["name"] == "Ada Lovelace"
    assert orjson.loads(row["traits"]) == {"first_name": "Ada", "name": "Ada Lovelace"}


def test_refresh_agrees_with_the_live_profile_when_timestamps_tie(ingestor: Ingestor) -> None:
    # No timestamps: the whole batch gets its receive time, so the later event must win.
    ingestor.ingest(
        [{"type": "identify", "userId": "u", "messageId": f"m{i}",
          "traits": {"plan": f"plan-{i}", **({"tier": "gold"} if i == 3 else {})}}
         for i in range(8)],
        WEB,
    )  # fmt: skip
    con = ingestor.store.con
    live = get_profile(con, one_profile(ingestor, "user_id:u")).traits
    assert live == {"plan": "plan-7", "tier": "gold"}
    refresh_profiles(con)
    [row] = summary(ingestor).values()
    assert orjson.loads(row["traits"]) == live


def test_refresh_collapses_merged_profiles_and_replaces_stale_rows(ingestor: Ingestor) -> None:
    ingestor.ingest(
        [{"type": "page", "anonymousId": "laptop", "messageId": "1"},
         {"type": "screen", "anonymousId": "phone", "messageId": "2"}],
        WEB,
    )  # fmt: skip
    con = ingestor.store.con
    assert refresh_profiles(con) == 2
    ingestor.ingest([{"type": "identify", "userId": "u", "anonymousId": "laptop", "messageId": "3"},
                     {"type": "identify", "userId": "u", "anonymousId": "phone", "messageId": "4"}],
                    WEB)  # fmt: skip
    assert refresh_profiles(con) == 1
    assert refresh_profiles(con) == 1  # idempotent
    survivor = one_profile(ingestor, "user_id:u")
    [(pid, row)] = summary(ingestor).items()
    assert pid == survivor and row["user_id"] == "u" and row["event_count"] == 4
    assert sorted(row["identifiers"]) == ["anonymous_id:laptop", "anonymous_id:phone", "user_id:u"]


def test_refresh_of_an_empty_log(ingestor: Ingestor) -> None:
    assert refresh_profiles(ingestor.store.con) == 0
