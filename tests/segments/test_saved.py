"""Saved segments: YAML documents in the store, and their size recorded at each refresh."""

from __future__ import annotations

import doctest
from datetime import datetime, timedelta
from typing import Any

import pytest

from opencx.errors import InvalidInput, NotFound
from opencx.segments import (
    delete_segment,
    parse_segment,
    record_segment_sizes,
    refresh_segments,
    save_segment,
    saved_segment,
    saved_segments,
    segment_size_history,
)
from opencx.segments import saved as saved_module
from opencx.store import Store
from opencx.warehouse import Warehouse
from tests.journeys.conftest import Row, write_events
from tests.segments.conftest import NOW, Log, hours_before_now

UNHAPPY = """
name: unhappy-regulars
rule: purchases_90d >= 2 and last_nps <= 6
description: Buy often, would not recommend us
"""


def test_a_segment_is_saved_read_listed_and_deleted(store: Store) -> None:
    saved = save_segment(store.con, UNHAPPY, by="ana@example.com")
    assert saved_segment(store.con, "unhappy-regulars") == saved
    assert [s.name for s in saved_segments(store.con)] == ["unhappy-regulars"]
    assert parse_segment(saved.to_yaml()) == saved
    delete_segment(store.con, "unhappy-regulars")
    with pytest.raises(NotFound, match="saved: none yet"):
        saved_segment(store.con, "unhappy-regulars")
    with pytest.raises(NotFound):
        delete_segment(store.con, "unhappy-regulars")


def test_a_bad_rule_or_document_is_refused_with_its_reason(store: Store) -> None:
    with pytest.raises(InvalidInput, match=r"expected a value .* at column 18"):
        save_segment(store.con, {"name": "x", "rule": "purchases_90d >= and"})
    with pytest.raises(InvalidInput, match="segment is not valid: name"):
        save_segment(store.con, {"name": "no spaces please", "rule": "orders > 0"})
    with pytest.raises(InvalidInput, match="not valid YAML"):
        save_segment(store.con, "name: [unclosed")
    assert saved_segments(store.con) == []


def test_with_a_warehouse_the_fields_are_checked_too(store: Store, log: Log) -> None:
    warehouse = log([])
    with pytest.raises(InvalidInput, match="unknown field 'spend'"):
        save_segment(store.con, {"name": "big", "rule": "spend > 100"}, warehouse=warehouse)
    save_segment(store.con, {"name": "big", "rule": "revenue > 100"}, warehouse=warehouse)


def test_each_refresh_appends_the_sizes(store: Store, log: Log) -> None:
    warehouse = log([
        ("p1", hours_before_now(3), "Order Completed", "web", {"revenue": 10}),
        ("p2", hours_before_now(1), "Order Completed", "web", {"revenue": 10}),
    ])  # fmt: skip
    save_segment(store.con, {"name": "buyers", "rule": "orders > 0"})
    save_segment(store.con, {"name": "nobody", "rule": "orders > 5"})
    assert record_segment_sizes(store.con, warehouse, NOW - timedelta(days=2)) == {
        "buyers": 1, "nobody": 0,
    }  # fmt: skip
    assert record_segment_sizes(store.con, warehouse, NOW) == {"buyers": 2, "nobody": 0}
    history = segment_size_history(store.con, "buyers")
    assert [(p.at, p.size) for p in history] == [(NOW - timedelta(days=2), 1), (NOW, 2)]
    delete_segment(store.con, "buyers")
    assert segment_size_history(store.con, "buyers") == []


def test_the_history_keeps_the_newest_points(
    store: Store, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(saved_module, "MAX_HISTORY", 2)
    warehouse = log([])
    save_segment(store.con, {"name": "all", "rule": "orders >= 0"})
    for day in range(3):
        record_segment_sizes(store.con, warehouse, NOW + timedelta(days=day))
    history = segment_size_history(store.con, "all")
    assert [p.at for p in history] == [NOW + timedelta(days=d) for d in (1, 2)]


def test_nothing_saved_records_nothing(store: Store, log: Log) -> None:
    assert record_segment_sizes(store.con, log([]), NOW) == {}


def test_docstring_examples() -> None:
    assert doctest.testmod(saved_module).failed == 0


# -- refresh: members materialised, computed traits first ---------------------------
def _members(store: Store) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for segment, person in store.con.execute(
        "SELECT segment, person_id FROM segment_members ORDER BY segment, person_id"
    ).fetchall():
        out.setdefault(segment, []).append(person)
    return out


def _orders(*people: str) -> list[Row]:
    return [(p, hours_before_now(1), "Order Completed", "web", {"revenue": 10}) for p in people]


def test_refresh_materialises_members_and_replaces_them(store: Store, log: Log) -> None:
    warehouse = log(_orders("p1", "p2", "p3"))
    save_segment(store.con, {"name": "buyers", "rule": "orders > 0"})
    save_segment(store.con, {"name": "big", "rule": "revenue >= 20 or trait.vip"})
    save_segment(store.con, {"name": "gone", "rule": "orders > 0"})
    steps: list[tuple[int, int]] = []
    first = refresh_segments(store.con, warehouse, NOW, progress=lambda d, t: steps.append((d, t)))
    assert first.sizes == {"big": 0, "buyers": 3, "gone": 3} and first.failed == {}
    assert _members(store) == {"buyers": ["p1", "p2", "p3"], "gone": ["p1", "p2", "p3"]}
    assert steps[0] == (0, 2) and steps[-1] == (2, 2)
    # p1 orders again (revenue 20: now "big"), a segment is deleted: rows follow.
    write_events(store, _orders("p1"), seq_start=100)
    delete_segment(store.con, "gone")
    second = refresh_segments(store.con, warehouse, NOW + timedelta(hours=1))
    assert second.sizes == {"big": 1, "buyers": 3}
    assert _members(store) == {"big": ["p1"], "buyers": ["p1", "p2", "p3"]}
    stamps = store.con.execute("SELECT DISTINCT refreshed_at FROM segment_members").fetchall()
    assert stamps == [(NOW + timedelta(hours=1),)]
    assert [p.size for p in segment_size_history(store.con, "big")] == [0, 1]
    # Members who leave are removed: a rule nobody meets empties its rows.
    save_segment(store.con, {"name": "big", "rule": "revenue >= 1000"})
    refresh_segments(store.con, warehouse, NOW + timedelta(hours=2))
    assert _members(store) == {"buyers": ["p1", "p2", "p3"]}


def test_refresh_writes_computed_traits_before_reading_them(store: Store, log: Log) -> None:
    warehouse = log(_orders("p1", "p2"))
    save_segment(store.con, {"name": "hoppers", "rule": "effort_channel_hops_90d >= 2"})
    calls: list[datetime] = []

    def hops(con: Any, wh: Warehouse, now: datetime) -> int:
        calls.append(now)
        con.execute(
            "INSERT OR REPLACE INTO computed_traits VALUES "
            "('p1', 'effort_channel_hops_90d', '3', ?), ('p2', 'effort_channel_hops_90d', '1', ?)",
            [now, now],
        )
        return 2

    result = refresh_segments(store.con, warehouse, NOW, traits=[hops])
    assert calls == [NOW] and result.trait_rows == 2
    assert result.sizes == {"hoppers": 1} and _members(store) == {"hoppers": ["p1"]}


def test_a_rule_that_cannot_run_keeps_its_old_members(
    store: Store, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = log(_orders("p1"))
    save_segment(store.con, {"name": "buyers", "rule": "orders > 0"})
    save_segment(store.con, {"name": "hoppers", "rule": "effort_channel_hops_90d >= 0"})
    store.con.execute(
        "INSERT INTO computed_traits VALUES ('p1', 'effort_channel_hops_90d', '0', now())"
    )
    assert refresh_segments(store.con, warehouse, NOW).sizes == {"buyers": 1, "hoppers": 1}
    # An engine without the computed traits table: that rule fails, the other refreshes.
    monkeypatch.setattr(saved_module, "computed_traits_table", lambda wh: None)
    result = refresh_segments(store.con, warehouse, NOW + timedelta(hours=1))
    assert result.sizes == {"buyers": 1}
    assert "unknown field 'effort_channel_hops_90d'" in result.failed["hoppers"]
    assert _members(store) == {"buyers": ["p1"], "hoppers": ["p1"]}


def test_refresh_with_nothing_saved_empties_the_members(store: Store, log: Log) -> None:
    warehouse = log(_orders("p1"))
    save_segment(store.con, {"name": "buyers", "rule": "orders > 0"})
    refresh_segments(store.con, warehouse, NOW)
    delete_segment(store.con, "buyers")
    assert refresh_segments(store.con, warehouse, NOW).sizes == {}
    assert _members(store) == {}
