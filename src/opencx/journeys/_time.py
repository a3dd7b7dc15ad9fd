"""Periods of time, and the duration parser the journeys use."""

from __future__ import annotations

from datetime import UTC, datetime

from opencx.durations import parse_duration
from opencx.errors import InvalidInput

__all__ = ["check_period", "parse_duration", "utc"]


def utc(moment: datetime | None) -> datetime | None:
    """The same instant in UTC; naive datetimes are taken as UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_period(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start >= end:
        raise InvalidInput(f"from ({start.isoformat()}) must be before to ({end.isoformat()})")
