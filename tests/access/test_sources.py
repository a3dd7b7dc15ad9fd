"""Sources and write keys: shown once, stored hashed, rotated and revoked for real."""

from __future__ import annotations

import hashlib

import pytest

from opencx.access import (
    add_source,
    get_source,
    list_sources,
    revoke_source,
    rotate_write_key,
    source_for_write_key,
)
from opencx.errors import Conflict, InvalidInput, NotFound
from opencx.store import Store
from opencx.types import CHANNELS


def every_stored_value(store: Store) -> str:
    """The contents of every table, as one string (to prove a secret is not in any of them)."""
    tables = [r[0] for r in store.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    return "\n".join(str(store.con.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)


def test_a_new_write_key_authenticates_its_source(store: Store) -> None:
    source, key = add_source(store.con, "website", "web")
    assert (source.name, source.channel, source.active) == ("website", "web", True)
    assert key.startswith("wk_") and len(key) > 30
    assert source.write_key_hint == f"wk_…{key[-4:]}"
    assert source_for_write_key(store.con, key) == source
    assert get_source(store.con, "website") == source


def test_each_key_belongs_to_its_own_source(store: Store) -> None:
    _, web_key = add_source(store.con, "website", "web")
    _, app_key = add_source(store.con, "ios", "app")
    assert web_key != app_key
    web, app = source_for_write_key(store.con, web_key), source_for_write_key(store.con, app_key)
    assert web is not None and (web.name, web.channel) == ("website", "web")
    assert app is not None and (app.name, app.channel) == ("ios", "app")


def test_unknown_keys_authenticate_nothing(store: Store) -> None:
    _, key = add_source(store.con, "website", "web")
    for guess in ("", "wk_", "wk_not-a-real-key", "website", key.upper(), key[:-1], f" {key}"):
        assert source_for_write_key(store.con, guess) is None, guess


def test_rotation_retires_the_old_key_at_once(store: Store) -> None:
    _, old = add_source(store.con, "website", "web")
    new = rotate_write_key(store.con, "website")
    assert new != old and new.startswith("wk_")
    assert source_for_write_key(store.con, old) is None
    found = source_for_write_key(store.con, new)
    assert found is not None and found.name == "website"
    assert get_source(store.con, "website").write_key_hint == f"wk_…{new[-4:]}"
    newer = rotate_write_key(store.con, "website")
    assert source_for_write_key(store.con, new) is None
    assert source_for_write_key(store.con, newer) is not None


def test_a_revoked_source_accepts_no_key_and_keeps_its_row(store: Store) -> None:
    _, key = add_source(store.con, "website", "web")
    _, other_key = add_source(store.con, "kiosk", "store")
    revoke_source(store.con, "website")
    assert source_for_write_key(store.con, key) is None
    assert source_for_write_key(store.con, other_key) is not None  # only that one source
    revoked = get_source(store.con, "website")
    assert revoked.revoked_at is not None and not revoked.active
    assert [(s.name, s.active) for s in list_sources(store.con)] == [
        ("kiosk", True),
        ("website", False),
    ]


def test_rotating_a_revoked_source_enables_it_with_a_fresh_key_only(store: Store) -> None:
    _, old = add_source(store.con, "website", "web")
    revoke_source(store.con, "website")
    new = rotate_write_key(store.con, "website")
    assert source_for_write_key(store.con, old) is None
    found = source_for_write_key(store.con, new)
    assert found is not None and found.active


def test_keys_are_stored_only_as_hashes(store: Store) -> None:
    _, key = add_source(store.con, "app", "app")
    rotated = rotate_write_key(store.con, "app")
    _, other = add_source(store.con, "web", "web")
    dump = every_stored_value(store)
    for secret in (key, rotated, other):
        assert secret not in dump
        assert secret[3:] not in dump  # not even without its prefix
    stored = store.con.execute("SELECT write_key_hash FROM sources ORDER BY name").fetchall()
    assert stored == [
        (hashlib.sha256(rotated.encode()).hexdigest(),),
        (hashlib.sha256(other.encode()).hexdigest(),),
    ]


def test_list_sources_is_sorted_by_name(store: Store) -> None:
    for name, channel in [("zeta", "sms"), ("alpha", "email"), ("mid.store-1", "store")]:
        add_source(store.con, name, channel)
    listed = list_sources(store.con)
    assert [(s.name, s.channel) for s in listed] == [
        ("alpha", "email"),
        ("mid.store-1", "store"),
        ("zeta", "sms"),
    ]
    assert all(s.active and s.created_at is not None for s in listed)


def test_an_empty_store_lists_no_sources(store: Store) -> None:
    assert list_sources(store.con) == []


def test_every_channel_is_accepted(store: Store) -> None:
    for channel in CHANNELS:
        source, key = add_source(store.con, f"src-{channel}", channel)
        assert source.channel == channel
        found = source_for_write_key(store.con, key)
        assert found is not None and found.channel == channel


def test_channels_are_normalised(store: Store) -> None:
    source, _ = add_source(store.con, "callcenter", "  Phone ")
    assert source.channel == "phone"


def test_a_bad_channel_names_the_field_the_value_and_the_choices(store: Store) -> None:
    for channel in ("fax", "", "webs", "carrier pigeon"):
        with pytest.raises(InvalidInput) as caught:
            add_source(store.con, "website", channel)
        message = str(caught.value)
        assert message.startswith("channel must be one of")
        assert repr(channel) in message and ", ".join(CHANNELS) in message
    assert list_sources(store.con) == []


def test_a_bad_name_names_the_field_and_the_value(store: Store) -> None:
    for name in ("", "Website", "bad name", "-web", ".web", "web!", "wéb", "a" * 64, "web\n"):
        with pytest.raises(InvalidInput) as caught:
            add_source(store.con, name, "web")
        message = str(caught.value)
        assert message.startswith("source name") and repr(name) in message
        assert "lower-case letters, digits" in message
    assert list_sources(store.con) == []


def test_good_names_are_accepted(store: Store) -> None:
    names = ["a", "7", "web-2", "pos.store_1", "a" * 63]
    for name in names:
        source, _ = add_source(store.con, name, "web")
        assert source.name == name
    assert [s.name for s in list_sources(store.con)] == sorted(names)


def test_a_duplicate_name_is_a_conflict_and_changes_nothing(store: Store) -> None:
    _, key = add_source(store.con, "website", "web")
    with pytest.raises(Conflict, match=r"a source named 'website' exists already"):
        add_source(store.con, "website", "app")
    revoke_source(store.con, "website")
    with pytest.raises(Conflict, match="website"):
        add_source(store.con, "website", "web")  # a revoked name stays taken (history)
    assert [(s.name, s.channel) for s in list_sources(store.con)] == [("website", "web")]
    rotated = rotate_write_key(store.con, "website")
    assert source_for_write_key(store.con, key) is None
    assert source_for_write_key(store.con, rotated) is not None


def test_unknown_sources_are_not_found(store: Store) -> None:
    for action in (get_source, rotate_write_key, revoke_source):
        with pytest.raises(NotFound, match=r"no source named 'ghost'.*opencx sources list"):
            action(store.con, "ghost")
