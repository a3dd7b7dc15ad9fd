"""Access: sources and their write keys, API tokens and their roles, the audit log."""

from __future__ import annotations

from opencx.access.audit import AuditBuffer, AuditEntry, audit_entries, record
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
from opencx.access.users import (
    User,
    add_user,
    authenticate,
    disable_user,
    end_session,
    get_user,
    list_users,
    session_user,
    start_session,
)

__all__ = [
    "AuditBuffer",
    "AuditEntry",
    "Source",
    "Token",
    "User",
    "add_source",
    "add_user",
    "audit_entries",
    "authenticate",
    "create_token",
    "disable_user",
    "end_session",
    "get_source",
    "get_user",
    "list_sources",
    "list_tokens",
    "list_users",
    "record",
    "revoke_source",
    "revoke_token",
    "rotate_write_key",
    "session_user",
    "source_for_write_key",
    "start_session",
    "token_for_secret",
]
