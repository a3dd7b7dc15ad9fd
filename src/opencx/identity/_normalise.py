"""Identifier extraction and normalisation: the same person written two ways matches."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import phonenumbers

from opencx.config import IdentitySettings
from opencx.errors import InvalidInput
from opencx.types import IdentifierKey

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MISS = object()
_CACHE_SIZE = 200_000


@lru_cache(maxsize=200_000)
def normalise_phone(value: str, region: str = "US") -> str | None:
    """E.164 form of a phone number, or None when it cannot be a phone number.

    >>> normalise_phone("(555) 123-4567")
    '+15551234567'
    """
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(value: str) -> str | None:
    """Lower-cased, trimmed email, or None when it is not an email address."""
    email = value.strip().lower()
    return email if _EMAIL.match(email) else None


class IdentifierExtractor:
    """Turns the identifying fields of one message into ordered, normalised identifier keys."""

    def __init__(self, settings: IdentitySettings, region: str = "US") -> None:
        self.settings = settings
        self.region = region
        self.external = tuple(settings.external_ids)
        self.kinds = frozenset(("user_id", "email", "phone", "anonymous_id", *self.external))
        self._blocked = (
            re.compile("|".join(f"(?:{p})" for p in settings.blocked_values), re.IGNORECASE)
            if settings.blocked_values
            else None
        )
        ranks = {kind: i for i, kind in enumerate(settings.priority)}
        # Kinds missing from the priority list rank just above anonymous ids.
        self._rank_default = ranks.get("anonymous_id", len(ranks)) - 0.5
        self._ranks = ranks
        self._cache: dict[tuple[str, str], IdentifierKey | None] = {}

    def rank(self, kind: str) -> float:
        return self._ranks.get(kind, self._rank_default)

    def normalise(self, kind: str, value: Any) -> str | None:
        """The normalised value of one identifier, or None if it is blocked or unusable."""
        if value is None or isinstance(value, (bool, dict, list)):
            return None
        text = str(value).strip()
        if not text:
            return None
        if kind == "email":
            norm = normalise_email(text)
        elif kind == "phone":
            norm = normalise_phone(text, self.region)
        else:
            norm = text
        if norm is None or (self._blocked is not None and self._blocked.search(norm)):
            return None
        return norm

    def key(self, kind: str, value: Any) -> IdentifierKey | None:
        """`kind:normalised` for one raw value, or None; memoised, since ids repeat a lot."""
        if type(value) is not str:
            norm = self.normalise(kind, value)
            return None if norm is None else f"{kind}:{norm}"
        cache = self._cache
        slot = (kind, value)
        hit = cache.get(slot, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[return-value]
        norm = self.normalise(kind, value)
        result = None if norm is None else f"{kind}:{norm}"
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[slot] = result
        return result

    def keys(
        self,
        user_id: Any,
        anonymous_id: Any,
        traits: Iterable[Mapping[str, Any] | None],
        external_ids: Any = None,
    ) -> list[IdentifierKey]:
        """Identifier keys (`kind:value`) of one message, most trusted first, no repeats."""
        key = self.key
        found: dict[str, str] = {}
        if user_id is not None and (k := key("user_id", user_id)):
            found[k] = "user_id"
        for bag in traits:
            if not bag:
                continue
            for kind in ("email", "phone", *self.external):
                value = bag.get(kind)
                if value is not None and (k := key(kind, value)):
                    found.setdefault(k, kind)
        if isinstance(external_ids, list):
            for item in external_ids:
                if isinstance(item, Mapping) and isinstance(item.get("type"), str):
                    kind = {"userId": "user_id", "user_id": "user_id"}.get(
                        item["type"], item["type"]
                    ).lower()
                    # Only kinds with merge rules link people; others stay in context.
                    if kind in self.kinds and (k := key(kind, item.get("id"))):
                        found.setdefault(k, kind)
        if anonymous_id is not None and (k := key("anonymous_id", anonymous_id)):
            found.setdefault(k, "anonymous_id")
        if len(found) <= 1:
            return list(found)
        rank = self.rank
        return sorted(found, key=lambda k: rank(found[k]))


def split_key(key: IdentifierKey) -> tuple[str, str]:
    """`('email', 'jane@example.com')` from `'email:jane@example.com'`."""
    kind, _, value = key.partition(":")
    return kind, value


def parse_identifier(text: str, extractor: IdentifierExtractor) -> IdentifierKey:
    """A user-typed `KIND:VALUE` (e.g. `phone:(555) 123-4567`) as a normalised key."""
    kind, sep, value = text.partition(":")
    kind = kind.strip().lower()
    if not sep or not value.strip():
        raise InvalidInput(
            f"identifier {text!r} must be KIND:VALUE, e.g. email:jane@example.com "
            "or phone:+15551234567"
        )
    if kind not in extractor.kinds:
        accepted = ", ".join(sorted(extractor.kinds))
        raise InvalidInput(
            f"identifier {text!r}: unknown kind {kind!r}; accepted kinds are {accepted}"
        )
    norm = extractor.normalise(kind, value)
    if norm is None:
        raise InvalidInput(f"identifier {text!r}: {value!r} is not a usable {kind}")
    return f"{kind}:{norm}"
