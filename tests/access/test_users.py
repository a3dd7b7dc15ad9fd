"""People who sign in: scrypt passwords, sessions that end, disabled accounts."""

from __future__ import annotations

import pytest

from opencx.access import (
    add_user,
    authenticate,
    disable_user,
    end_session,
    session_user,
    start_session,
)
from opencx.errors import Conflict, InvalidInput
from opencx.store import Store

PASSWORD = "correct horse battery"


def test_sign_in_and_sessions(store: Store) -> None:
    user = add_user(store.con, "Ana@Example.com", "agent", PASSWORD)
    assert user.email == "ana@example.com"
    assert authenticate(store.con, "ANA@example.com", PASSWORD) == user
    assert authenticate(store.con, "ana@example.com", "wrong password") is None
    assert authenticate(store.con, "nobody@example.com", PASSWORD) is None
    secret, csrf = start_session(store.con, user)
    assert session_user(store.con, secret) == (user, csrf)
    end_session(store.con, secret)
    assert session_user(store.con, secret) is None


def test_passwords_and_secrets_are_stored_hashed(store: Store) -> None:
    user = add_user(store.con, "ana@example.com", "admin", PASSWORD)
    secret, _ = start_session(store.con, user)
    dump = str(store.con.execute("SELECT * FROM users").fetchall())
    dump += str(store.con.execute("SELECT * FROM sessions").fetchall())
    assert PASSWORD not in dump and secret not in dump and "scrypt$" in dump


def test_disabling_ends_sessions(store: Store) -> None:
    user = add_user(store.con, "ana@example.com", "admin", PASSWORD)
    secret, _ = start_session(store.con, user)
    disable_user(store.con, "ana@example.com")
    assert session_user(store.con, secret) is None
    assert authenticate(store.con, "ana@example.com", PASSWORD) is None


def test_bad_input(store: Store) -> None:
    with pytest.raises(InvalidInput, match="at least 10"):
        add_user(store.con, "a@b.io", "agent", "short")
    with pytest.raises(InvalidInput, match="not an email"):
        add_user(store.con, "nope", "agent", PASSWORD)
    with pytest.raises(InvalidInput, match="role"):
        add_user(store.con, "a@b.io", "owner", PASSWORD)
    add_user(store.con, "a@b.io", "agent", PASSWORD)
    with pytest.raises(Conflict):
        add_user(store.con, "A@B.io", "agent", PASSWORD)
