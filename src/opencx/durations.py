"""Durations as people write them ("7d", "48h", "90m") and back."""

from __future__ import annotations

import re
from datetime import timedelta

from opencx.errors import InvalidInput

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str | timedelta, *, field: str = "window") -> timedelta:
    """`timedelta` from "7d", "48h", "30m", "90s" or "2w".

    >>> parse_duration("48h")
    datetime.timedelta(days=2)
    """
    if isinstance(text, timedelta):
        value = text
    else:
        match = _DURATION.fullmatch(str(text))
        if not match:
            raise InvalidInput(
                f"{field} {text!r} must be a number and a unit: s, m, h, d or w (e.g. 7d, 48h)"
            )
        value = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])
    if value <= timedelta(0) or value > timedelta(days=3660):
        raise InvalidInput(f"{field} {text!r} must be more than 0 and at most 10 years")
    return value


def duration_field(value: object, field: str, *, zero: bool = True) -> object:
    """For a pydantic `mode="before"` validator: "48h" becomes a timedelta; "0" or "none"
    mean no time at all (when `zero`); anything else is left for pydantic to judge."""
    if isinstance(value, str):
        if zero and value.strip().lower() in ("0", "0s", "0m", "0h", "0d", "none"):
            return timedelta(0)
        return parse_duration(value, field=field)
    return value


def format_duration(delta: timedelta) -> str:
    """The shortest exact spelling: `7d`, `36h`, `90m`, `45s` (`0` for nothing).

    >>> format_duration(timedelta(hours=48))
    '2d'
    """
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s" if seconds else "0"


def describe_seconds(seconds: float | None, *, short: bool = False) -> str:
    """A measured time for people: `2.5 days`, `1.0 hours`, `5 minutes` (`short`: `2.5 d`).

    >>> describe_seconds(90_000), describe_seconds(300, short=True)
    ('1.0 days', '5 min')
    """
    if seconds is None:
        return ""
    units = ("d", "h", "min") if short else ("days", "hours", "minutes")
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} {units[0]}"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} {units[1]}"
    return f"{seconds / 60:.0f} {units[2]}"
