"""Secrets: only hashes are stored, and hashes are compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from opencx.access import (
    _secrets,
    add_source,
    add_user,
    authenticate,
    create_token,
    session_user,
    source_for_write_key,
    start_session,
    token_for_secret,
)
from opencx.store import Store


def every_stored_value(store: Store) -> str:
    tables = [r[0] for r in store.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    return "\n".join(str(store.con.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)


def test_no_secret_is_stored_in_clear(store: Store) -> None:
    _, key = add_source(store.con, "web", "web")
    _, token = create_token(store.con, "crm", "admin")
    user = add_user(store.con, "ann@example.com", "admin", "correct horse battery")
    cookie, _ = start_session(store.con, user)
    stored = every_stored_value(store)
    for secret in (key, token, "correct horse battery", cookie):
        assert secret not in stored
    assert hashlib.sha256(key.encode()).hexdigest() in stored
    assert "scrypt$" in stored  # passwords: a slow, salted KDF


def test_every_secret_check_compares_in_constant_time(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = add_source(store.con, "web", "web")
    _, token = create_token(store.con, "crm", "agent")
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(_secrets.hmac, "compare_digest", spy)
    assert source_for_write_key(store.con, key) is not None
    assert token_for_secret(store.con, token) is not None
    assert [a == b for a, b in calls] == [True, True]
    assert all(len(a) == 64 for a, _ in calls)  # SHA-256 hex digests, never the secrets


def test_wrong_and_near_miss_secrets_find_nothing(store: Store) -> None:
    _, key = add_source(store.con, "web", "web")
    _, token = create_token(store.con, "crm", "agent")
    for wrong in ("", key[:-1], key + "x", key.upper(), token[:-1]):
        assert source_for_write_key(store.con, wrong) is None
        assert token_for_secret(store.con, wrong) is None
    assert session_user(store.con, "not-a-session") is None


def test_passwords_are_checked_with_the_same_work_for_unknown_emails(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(store.con, "ann@example.com", "agent", "correct horse battery")
    seen: list[str] = []
    real = hashlib.scrypt

    def counting(password: bytes, **kwargs: Any) -> bytes:
        seen.append(f"n={kwargs['n']}")
        return real(password, **kwargs)

    monkeypatch.setattr("opencx.access.users.hashlib.scrypt", counting)
    assert authenticate(store.con, "nobody@example.com", "correct horse battery") is None
    assert authenticate(store.con, "ann@example.com", "wrong password!") is None
    assert authenticate(store.con, "ann@example.com", "correct horse battery") is not None
    assert seen == ["n=16384"] * 3


def test_new_secrets_are_long_and_random() -> None:
    keys = {_secrets.new_secret("wk") for _ in range(50)}
    assert len(keys) == 50
    assert all(k.startswith("wk_") and len(k) >= 3 + 32 for k in keys)
    assert _secrets.same_hash("a" * 64, "a" * 64) and not _secrets.same_hash("a" * 64, "b" * 64)
