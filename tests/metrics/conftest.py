"""Metrics fixtures: survey answers written into an in-memory log at known times."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from tests.journeys.conftest import Row
from tests.segments.conftest import NOW, Log, at, hours_before_now, log

__all__ = ["NOW", "Log", "answers", "at", "hours_before_now", "log"]


def answers(
    kind: str,
    scores: Iterable[int],
    *,
    days_ago: float | Sequence[float] = 1.0,
    channel: str = "email",
    touchpoint: str | None = None,
    people: Sequence[str] | None = None,
    when: datetime | None = None,
) -> list[Row]:
    """`Survey Responded` rows, one per score (person `a0`, `a1`, … unless `people`)."""
    rows: list[Row] = []
    for i, score in enumerate(scores):
        days = days_ago[i] if isinstance(days_ago, Sequence) else days_ago
        offset = at(when) if when is not None else hours_before_now(days)
        props: dict[str, object] = {"survey_type": kind, "score": score}
        if touchpoint is not None:
            props["touchpoint"] = touchpoint
        person = people[i] if people is not None else f"a{i}"
        rows.append((person, offset, "Survey Responded", channel, props))
    return rows
