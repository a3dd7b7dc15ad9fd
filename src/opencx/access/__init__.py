"""Access: sources and their write keys, API tokens and their roles."""

from __future__ import annotations

from opencx.access.sources import (
    Source,
    add_source,
    get_source,
    list_sources,
    revoke_source,
    rotate_write_key,
    source_for_write_key,
)
from opencx.access.tokens import Token, create_token, list_tokens, revoke_token, token_for_secret

__all__ = [
    "Source",
    "Token",
    "add_source",
    "create_token",
    "get_source",
    "list_sources",
    "list_tokens",
    "revoke_source",
    "revoke_token",
    "rotate_write_key",
    "source_for_write_key",
    "token_for_secret",
]
