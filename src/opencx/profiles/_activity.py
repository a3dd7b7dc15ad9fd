"""What a person did lately, and what the whole log holds: summaries for people to read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from opencx.profiles._read import _member_ids, canonical_id
from opencx.types import ProfileId


@dataclass(frozen=True)
class RecentActivity:
    """One line of the "right now" panel: an action on a channel, how often, how recently."""

    channel: str
    type: str
    event: str | None
    count: int
    last: datetime
    first: datetime


def recent_activity(
    con: duckdb.DuckDBPyConnection,
    profile_id: ProfileId,
    *,
    hours: int = 24,
    now: datetime | None = None,
) -> list[RecentActivity]:
    """What the person did in the last `hours`, grouped by channel and action, newest first."""
    members = _member_ids(con, canonical_id(con, profile_id))
    since = (now or datetime.now(UTC)) - timedelta(hours=hours)
    rows = con.execute(
        "SELECT channel, type, event, count(*), max(timestamp), min(timestamp) FROM events "
        "WHERE profile_id IN (SELECT unnest(?::VARCHAR[])) AND timestamp >= ? "
        "GROUP BY ALL ORDER BY max(timestamp) DESC LIMIT 20",
        [members, since],
    ).fetchall()
    return [RecentActivity(*row) for row in rows]


@dataclass(frozen=True)
class LogOverview:
    """The interaction log at a glance."""

    events: int
    profiles: int
    known_profiles: int
    sources: int
    failed_events: int
    by_channel: list[tuple[str, int]]
    by_day: list[tuple[datetime, int]]
    top_events: list[tuple[str, str, int]]
    last_event: datetime | None


def log_overview(con: duckdb.DuckDBPyConnection, days: int = 90) -> LogOverview:
    """Counts, the mix of channels, daily volume and the most frequent actions."""

    def scalar(sql: str) -> int:
        return int(con.execute(sql).fetchall()[0][0] or 0)

    last = con.execute("SELECT max(timestamp) FROM events").fetchall()[0][0]
    by_day: list[tuple[datetime, int]] = []
    if last is not None:
        by_day = [
            (day, int(n))
            for day, n in con.execute(
                "SELECT date_trunc('day', timestamp) AS day, count(*) FROM events "
                "WHERE timestamp > ?::TIMESTAMPTZ - to_days(?) GROUP BY 1 ORDER BY 1",
                [last, days],
            ).fetchall()
        ]
    return LogOverview(
        events=scalar("SELECT count(*) FROM events"),
        profiles=scalar("SELECT count(*) FROM profiles"),
        known_profiles=scalar(
            "SELECT count(*) FROM profiles WHERE user_id IS NOT NULL OR email IS NOT NULL "
            "OR phone IS NOT NULL"
        ),
        sources=scalar("SELECT count(*) FROM sources WHERE revoked_at IS NULL"),
        failed_events=scalar("SELECT count(*) FROM failed_events WHERE status = 'failed'"),
        by_channel=[
            (str(c), int(n))
            for c, n in con.execute(
                "SELECT channel, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        ],
        by_day=by_day,
        top_events=[
            (str(t), str(e), int(n))
            for t, e, n in con.execute(
                "SELECT type, coalesce(event, type), count(*) FROM events "
                "GROUP BY ALL ORDER BY 3 DESC LIMIT 12"
            ).fetchall()
        ],
        last_event=last,
    )
