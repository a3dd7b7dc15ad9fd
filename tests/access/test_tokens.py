"""API tokens: a role each, shown once, stored hashed, revocable."""

from __future__ import annotations

import pytest

from opencx.access import create_token, list_tokens, revoke_token, token_for_secret
from opencx.errors import InvalidInput, NotFound
from opencx.store import Store
from opencx.types import ROLES


def every_stored_value(store: Store) -> str:
    tables = [r[0] for r in store.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    return "\n".join(str(store.con.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)


def test_a_token_authenticates_with_its_role(store: Store) -> None:
    for role in ROLES:
        token, secret = create_token(store.con, "crm", role)
        assert (token.name, token.role, token.revoked_at) == ("crm", role, None)
        assert token.id.startswith("t_") and secret.startswith("ocx_")
        assert token_for_secret(store.con, secret) == token


def test_names_are_trimmed_and_may_repeat(store: Store) -> None:
    first, secret_1 = create_token(store.con, "  laptop ", "agent")
    second, secret_2 = create_token(store.con, "laptop", "admin")
    assert first.name == second.name == "laptop"
    assert first.id != second.id and secret_1 != secret_2
    found_1, found_2 = token_for_secret(store.con, secret_1), token_for_secret(store.con, secret_2)
    assert found_1 is not None and found_1.role == "agent"
    assert found_2 is not None and found_2.role == "admin"


def test_secrets_are_stored_only_as_hashes(store: Store) -> None:
    secrets = [create_token(store.con, f"t{i}", role)[1] for i, role in enumerate(ROLES)]
    dump = every_stored_value(store)
    for secret in secrets:
        assert secret not in dump and secret[4:] not in dump


def test_list_tokens_in_creation_order_with_revocations(store: Store) -> None:
    a, _ = create_token(store.con, "a", "admin")
    b, _ = create_token(store.con, "b", "analyst")
    c, _ = create_token(store.con, "c", "agent")
    revoke_token(store.con, b.id)
    listed = list_tokens(store.con)
    assert [(t.id, t.name, t.role) for t in listed] == [
        (a.id, "a", "admin"),
        (b.id, "b", "analyst"),
        (c.id, "c", "agent"),
    ]
    assert [t.revoked_at is not None for t in listed] == [False, True, False]


def test_a_revoked_token_is_not_found_and_others_still_work(store: Store) -> None:
    doomed, doomed_secret = create_token(store.con, "old", "admin")
    _, kept_secret = create_token(store.con, "new", "admin")
    revoke_token(store.con, doomed.id)
    assert token_for_secret(store.con, doomed_secret) is None
    kept = token_for_secret(store.con, kept_secret)
    assert kept is not None and kept.name == "new"


def test_unknown_secrets_are_not_found(store: Store) -> None:
    _, secret = create_token(store.con, "crm", "agent")
    for guess in ("", "ocx_", "ocx_guess", f"Bearer {secret}", secret[:-1], secret.upper()):
        assert token_for_secret(store.con, guess) is None, guess


def test_a_bad_role_names_the_field_the_value_and_the_choices(store: Store) -> None:
    for role in ("root", "", "Admin", "agents", " agent"):
        with pytest.raises(InvalidInput) as caught:
            create_token(store.con, "crm", role)
        assert str(caught.value) == f"role must be one of admin, analyst, agent, got {role!r}"
    assert list_tokens(store.con) == []


def test_a_token_needs_a_name(store: Store) -> None:
    for name in ("", "   ", "\t\n"):
        with pytest.raises(InvalidInput, match="token name must not be empty"):
            create_token(store.con, name, "agent")
    assert list_tokens(store.con) == []


def test_revoking_an_unknown_token_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="no token with id 't_missing'"):
        revoke_token(store.con, "t_missing")
