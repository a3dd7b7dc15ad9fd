"""Sources and write keys: shown once, stored hashed, rotated and revoked for real."""

from __future__ import annotations

import pytest

from opencx.access import (
    add_source,
    list_sources,
    revoke_source,
    rotate_write_key,
    source_for_write_key,
)
from opencx.errors import Conflict, InvalidInput
from opencx.store import Store


def test_write_key_lifecycle(store: Store) -> None:
    source, key = add_source(store.con, "website", "web")
    assert source_for_write_key(store.con, key) == source
    new_key = rotate_write_key(store.con, "website")
    assert source_for_write_key(store.con, key) is None
    assert source_for_write_key(store.con, new_key) is not None
    revoke_source(store.con, "website")
    assert source_for_write_key(store.con, new_key) is None
    assert [s.active for s in list_sources(store.con)] == [False]


def test_keys_are_never_stored_in_the_clear(store: Store) -> None:
    _, key = add_source(store.con, "app", "app")
    dump = str(store.con.execute("SELECT * FROM sources").fetchall())
    assert key not in dump and key[-4:] in dump  # only a hint of the last characters


def test_bad_names_channels_and_duplicates(store: Store) -> None:
    with pytest.raises(InvalidInput, match="channel must be one of"):
        add_source(store.con, "fax", "fax")
    with pytest.raises(InvalidInput, match="source name"):
        add_source(store.con, "Bad Name!", "web")
    add_source(store.con, "web", "web")
    with pytest.raises(Conflict, match="exists already"):
        add_source(store.con, "web", "app")
