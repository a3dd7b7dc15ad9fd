"""Touchpoint ids: readable, stable, and within their 100 characters for any event name."""

from __future__ import annotations

from opencx.journeys.touchpoints import Touchpoint, touchpoint_id


def test_ids_read_like_the_event() -> None:
    assert touchpoint_id("Password Reset Started", "app") == "password_reset_started@app"
    assert touchpoint_id("!!!", None) == "event"


def test_a_long_name_is_cut_and_keeps_apart_from_its_neighbours() -> None:
    first = touchpoint_id("Long " + "x" * 195, "partner")
    second = touchpoint_id("Long " + "x" * 194 + "y", "partner")
    assert first != second
    assert len(first) <= 100 and first.endswith("@partner")
    assert first == touchpoint_id("Long " + "x" * 195, "partner")  # stable
    Touchpoint(id=first, name="long", event="Long " + "x" * 195, channel="partner")
