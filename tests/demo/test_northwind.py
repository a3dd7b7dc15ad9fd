"""The sample brand is deterministic, realistic, and has its planted problem."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from opencx.demo import BROKEN_RELEASE, SOURCES, generate_brand

CHANNEL_OF = {s.name: s.channel for s in SOURCES}


@pytest.fixture(scope="module")
def brand() -> list[tuple[str, dict[str, Any]]]:
    return list(generate_brand(300, seed=11))


def _at(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(message["timestamp"])


def test_same_seed_same_brand_other_seed_other_brand(brand: list[Any]) -> None:
    assert list(generate_brand(300, seed=11)) == brand
    assert list(generate_brand(300, seed=12)) != brand


def test_messages_are_valid_sorted_and_unique(brand: list[Any]) -> None:
    ids = [m["messageId"] for _, m in brand]
    assert len(ids) == len(set(ids))
    times = [_at(m) for _, m in brand]
    assert times == sorted(times)
    assert times[-1] - times[0] > timedelta(days=150)
    for source, message in brand:
        assert message["type"] in {"track", "identify", "page", "screen"}
        traits = message.get("context", {}).get("traits", {})
        assert message.get("userId") or message.get("anonymousId") or traits
        channel = message.get("context", {}).get("channel", CHANNEL_OF[source])
        assert channel == CHANNEL_OF[source]


def test_volume_and_mix_are_plausible(brand: list[Any]) -> None:
    per_customer = len(brand) / 300
    assert 40 <= per_customer <= 140
    sources = Counter(source for source, _ in brand)
    assert set(sources) == set(CHANNEL_OF)
    anonymous_only = {m["anonymousId"] for _, m in brand if "anonymousId" in m} - {
        m["anonymousId"] for _, m in brand if m["type"] == "identify"
    }
    assert len(anonymous_only) > 300  # visitors who never sign in


def test_call_center_writes_phones_its_own_way(brand: list[Any]) -> None:
    formats: dict[str, set[str]] = defaultdict(set)
    for _, message in brand:
        phone = message.get("context", {}).get("traits", {}).get("phone")
        phone = phone or message.get("traits", {}).get("phone")
        if phone:
            digits = "".join(ch for ch in phone if ch.isdigit())[-10:]
            formats[digits].add(phone)
    assert sum(len(v) > 1 for v in formats.values()) > 50


def test_app_password_resets_break_after_the_release_and_people_call(brand: list[Any]) -> None:
    started: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for source, message in brand:
        event = message.get("event")
        if event == "Password Reset Started":
            version = message.get("context", {}).get("app", {}).get("version")
            lane = "app-broken" if version == BROKEN_RELEASE else source
            started[lane] += 1
        elif event == "Password Reset Failed":
            version = message.get("context", {}).get("app", {}).get("version")
            lane = "app-broken" if version == BROKEN_RELEASE else source
            failed[lane] += 1
    assert failed["app-broken"] / started["app-broken"] > 3 * failed["web"] / started["web"]
    # Who failed in the app, and who called about a password within two days after.
    user_of: dict[str, str] = {}
    for _, m in brand:
        if m["type"] == "identify":
            user_of[m["anonymousId"]] = m["userId"]
            phone = m["traits"].get("phone")
            if phone:
                user_of["".join(ch for ch in phone if ch.isdigit())[-10:]] = m["userId"]
    app_failures: dict[str, datetime] = {}
    for source, m in brand:
        if m.get("event") == "Password Reset Failed" and source == "ios-app":
            app_failures.setdefault(user_of.get(m["anonymousId"], ""), _at(m))
    callers: dict[str, list[datetime]] = defaultdict(list)
    for _, m in brand:
        if m.get("event") == "Call Started" and m["properties"]["topic"] == "password":
            digits = "".join(ch for ch in m["context"]["traits"]["phone"] if ch.isdigit())[-10:]
            callers[user_of[digits]].append(_at(m))
    called_after = sum(
        any(timedelta(0) <= t - at <= timedelta(hours=48) for t in callers[user])
        for user, at in app_failures.items()
    )
    others = set(user_of.values()) - set(app_failures)
    called_anyway = sum(bool(callers[user]) for user in others)
    assert called_after / len(app_failures) > 3 * called_anyway / len(others)
