"""Saved segments: YAML documents in the store, and their size recorded at each refresh."""

from __future__ import annotations

import doctest
from datetime import timedelta

import pytest

from opencx.errors import InvalidInput, NotFound
from opencx.segments import (
    delete_segment,
    parse_segment,
    record_segment_sizes,
    save_segment,
    saved_segment,
    saved_segments,
    segment_size_history,
)
from opencx.segments import saved as saved_module
from opencx.store import Store
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
