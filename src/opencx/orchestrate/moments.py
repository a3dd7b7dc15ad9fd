"""The best moment and channel to reach a person, learned from when and where they respond.

Responses (an email opened or clicked, a survey answered, a push opened) are counted by
hour of the week in the person's own time zone (0 = Monday 00:00-00:59 local) and by
channel. A person's counts are blended with the population's (a prior worth
`PRIOR_WEIGHT` responses), so a new customer gets the population's habits and a regular
one their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

if TYPE_CHECKING:
    from opencx.orchestrate.state import PersonState

HOURS_PER_WEEK = 168
PRIOR_WEIGHT = 2.0
RESPONSE_EVENTS: tuple[str, ...] = (
    "Email Opened",
    "Email Link Clicked",
    "SMS Link Clicked",
    "Push Notification Opened",
    "Message Clicked",
    "Survey Responded",
    "Feedback Given",
)
FALLBACK_CHANNEL = "email"


@dataclass(frozen=True, slots=True)
class Response:
    """One response to a contact: when, on which channel, and what it was."""

    at: datetime
    channel: str
    event: str


@lru_cache(maxsize=1024)
def zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    """The time zone called `name`, or `default` when it is missing or unknown."""
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def hour_of_week(at: datetime, tz: ZoneInfo) -> int:
    """0 (Monday 00:xx local) to 167 (Sunday 23:xx local)."""
    local = at.astimezone(tz)
    return local.weekday() * 24 + local.hour


@dataclass(frozen=True)
class Population:
    """Everyone's responses by local hour of week and by channel: the prior."""

    hours: tuple[float, ...] = field(default_factory=lambda: (0.0,) * HOURS_PER_WEEK)
    channels: Mapping[str, float] = field(default_factory=dict)

    @property
    def responses(self) -> float:
        return sum(self.hours)

    @property
    def best_channel(self) -> str:
        if not self.channels:
            return FALLBACK_CHANNEL
        return max(sorted(self.channels), key=lambda c: self.channels[c])


def population_from(responses: Iterable[tuple[int, str]]) -> Population:
    """A population from (local hour of week, channel) pairs."""
    hours = [0.0] * HOURS_PER_WEEK
    channels: Counter[str] = Counter()
    for hour, channel in responses:
        hours[hour] += 1
        channels[channel] += 1
    return Population(tuple(hours), {c: float(n) for c, n in channels.items()})


def population_moments(
    con: duckdb.DuckDBPyConnection, *, default_timezone: str = "UTC", since: datetime | None = None
) -> Population:
    """The population prior from every response on the log, each in its person's local
    time (their latest `context.timezone`, else `default_timezone`), in one SQL pass."""
    rows = con.execute(
        """
        WITH tz AS (
            SELECT person_id, arg_max(json_extract_string(context, '$.timezone'), timestamp)
                   AS tz
            FROM resolved_events
            WHERE json_extract_string(context, '$.timezone') IS NOT NULL
            GROUP BY person_id
        ), r AS (
            SELECT e.person_id, e.channel, e.timestamp,
                   coalesce(tz.tz, $default) AS zone
            FROM resolved_events e LEFT JOIN tz USING (person_id)
            WHERE e.event IN (SELECT unnest($events::VARCHAR[]))
              AND ($since IS NULL OR e.timestamp >= $since)
        )
        SELECT (isodow(timezone(zone, timestamp)) - 1) * 24
               + hour(timezone(zone, timestamp)) AS how, channel, count(*)
        FROM r GROUP BY ALL
        """,
        {"events": list(RESPONSE_EVENTS), "default": default_timezone, "since": since},
    ).fetchall()
    hours = [0.0] * HOURS_PER_WEEK
    channels: Counter[str] = Counter()
    for how, channel, n in rows:
        hours[int(how)] += n
        channels[str(channel)] += n
    return Population(tuple(hours), {c: float(n) for c, n in channels.items()})


def _scores(
    responses: Iterable[Response], tz: ZoneInfo, population: Population
) -> tuple[list[float], Counter[str]]:
    mine = [0.0] * HOURS_PER_WEEK
    channels: Counter[str] = Counter()
    for r in responses:
        mine[hour_of_week(r.at, tz)] += 1
        channels[r.channel] += 1
    total = population.responses
    prior = [PRIOR_WEIGHT * h / total for h in population.hours] if total else [0.0] * 168
    # Few people respond often enough to fill 168 hours: the same hour on other days
    # counts for a third, and neighbouring hours for half (19:10 says 18:00 and 20:00 too).
    daily = [sum(mine[d * 24 + h] for d in range(7)) for h in range(24)]
    scores = [
        mine[h]
        + 0.5 * (mine[h - 1] + mine[(h + 1) % HOURS_PER_WEEK])
        + (daily[h % 24] - mine[h]) / 3
        + prior[h]
        for h in range(HOURS_PER_WEEK)
    ]
    return scores, channels


def best_channel(state: PersonState, population: Population) -> str:
    """The channel the person responds on most; the population's for a new customer."""
    channels = Counter(r.channel for r in state.responses)
    if not channels:
        return population.best_channel
    return max(sorted(channels), key=lambda c: channels[c])


def _best_hour(scores: list[float], tz: ZoneInfo, after: datetime, horizon: timedelta) -> datetime:
    """The start of the best-scoring local hour in `horizon` after `after` (or `after`).

    Hours are walked in UTC and read in local time, so a daylight-saving change neither
    skips nor repeats a moment.
    """
    after = after.astimezone(UTC)
    best_at, best_score = after, scores[hour_of_week(after, tz)]
    start = after.replace(minute=0, second=0, microsecond=0)
    for step in range(1, max(1, int(horizon.total_seconds() // 3600)) + 1):
        at = start + timedelta(hours=step)
        # A zone with a half-hour offset starts its local hours at :30 UTC.
        at = at - timedelta(minutes=at.astimezone(tz).minute)
        if at <= after:
            continue
        score = scores[hour_of_week(at, tz)]
        if score > best_score:
            best_at, best_score = at, score
    return best_at


def best_moment(
    state: PersonState,
    population: Population,
    after: datetime,
    *,
    horizon: timedelta = timedelta(hours=24),
    default_timezone: str = "UTC",
) -> tuple[str, datetime]:
    """(channel, moment): the best-scoring hour in the `horizon` from `after` (the start of
    that local hour, or `after` itself if it is the best), and the best channel."""
    tz = zone(state.timezone, default_timezone)
    scores, _ = _scores(state.responses, tz, population)
    return best_channel(state, population), _best_hour(scores, tz, after, horizon)


def next_good_moment(
    responses: Iterable[Response],
    tz: ZoneInfo,
    after: datetime,
    *,
    horizon: timedelta,
    min_responses: int,
) -> datetime | None:
    """The person's own best hour within `horizon` after `after`, if they have responded
    at least `min_responses` times (the policy uses it to time a release from a hold)."""
    mine = list(responses)
    if len(mine) < min_responses:
        return None
    scores, _ = _scores(mine, tz, Population())
    return _best_hour(scores, tz, after, horizon)
