"""API tokens: a role each, shown once, revocable."""

from __future__ import annotations

import pytest

from opencx.access import create_token, list_tokens, revoke_token, token_for_secret
from opencx.errors import InvalidInput
from opencx.store import Store


def test_token_lifecycle(store: Store) -> None:
    token, secret = create_token(store.con, "crm", "analyst")
    assert token_for_secret(store.con, secret) == token
    assert secret not in str(store.con.execute("SELECT * FROM tokens").fetchall())
    revoke_token(store.con, token.id)
    assert token_for_secret(store.con, secret) is None
    assert list_tokens(store.con)[0].revoked_at is not None


def test_roles_are_checked(store: Store) -> None:
    with pytest.raises(InvalidInput, match="role must be one of"):
        create_token(store.con, "x", "root")
