"""Type aliases for domain ids and the closed vocabularies used across packages."""

from __future__ import annotations

from typing import Literal, TypeAlias

ProfileId: TypeAlias = str
MessageId: TypeAlias = str
SourceName: TypeAlias = str
IdentifierKey: TypeAlias = str
"""An identifier as `kind:value`, e.g. `email:jane@example.com`, already normalised."""

Channel = Literal["web", "app", "email", "sms", "chat", "phone", "store", "social", "partner"]
CHANNELS: tuple[str, ...] = (
    "web",
    "app",
    "email",
    "sms",
    "chat",
    "phone",
    "store",
    "social",
    "partner",
)

EventType = Literal["track", "identify", "page", "screen", "group", "alias"]
EVENT_TYPES: tuple[str, ...] = ("track", "identify", "page", "screen", "group", "alias")

Role = Literal["admin", "analyst", "agent"]
ROLES: tuple[str, ...] = ("admin", "analyst", "agent")
