"""Removing a person from JSON that stays: personal keys, and strings that name them."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson


def scrub_json(text: str | None, fields: Collection[str], needles: list[str]) -> str | None:
    """JSON text without keys in `fields` (any depth) nor strings containing a needle."""
    if text is None:
        return None
    value = scrub(orjson.loads(text), fields, needles)
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode() if value else None


def scrub(value: Any, fields: Collection[str], needles: list[str]) -> Any:
    if isinstance(value, dict):
        return {
            k: scrub(v, fields, needles)
            for k, v in value.items()
            if k not in fields and not (isinstance(v, str) and names(v, needles))
        }
    if isinstance(value, list):
        return [
            scrub(v, fields, needles)
            for v in value
            if not (isinstance(v, str) and names(v, needles))
        ]
    return value


def names(text: str, needles: list[str]) -> bool:
    """True when `text` contains one of the lower-case `needles`."""
    low = text.lower()
    return any(n in low for n in needles)
