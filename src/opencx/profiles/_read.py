"""Profiles and timelines, read from the event log and the identity tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from opencx.errors import InvalidInput, NotFound
from opencx.store import fetch_one
from opencx.types import IdentifierKey, ProfileId

MAX_TIMELINE = 500


@dataclass(frozen=True)
class Profile:
    """One person: every identifier, merged traits, and when and where they were seen."""

    id: ProfileId
    identifiers: dict[str, list[str]]
    traits: dict[str, Any]
    first_seen: datetime | None
    last_seen: datetime | None
    channels: list[str]
    sources: list[str]
    event_count: int
    counts_by_type: dict[str, int]
    merged_ids: list[ProfileId] = field(default_factory=list)
    computed: dict[str, Any] = field(default_factory=dict)
    """Traits OpenCX computed (e.g. effort_channel_hops_90d), apart from the customer's."""
    computed_at: datetime | None = None
    """When the newest of them was computed (None: none yet)."""


@dataclass(frozen=True)
class TimelineEntry:
    """One interaction on the person's timeline."""

    seq: int
    message_id: str
    type: str
    event: str | None
    channel: str
    source: str
    timestamp: datetime
    received_at: datetime
    properties: dict[str, Any] | None
    traits: dict[str, Any] | None
    context: dict[str, Any] | None

    @property
    def cursor(self) -> str:
        """Pass as `before` to get the entries after this one."""
        return f"{int(self.timestamp.timestamp() * 1_000_000)}:{self.seq}"


def canonical_id(con: duckdb.DuckDBPyConnection, profile_id: ProfileId) -> ProfileId:
    """The profile id that `profile_id` lives on now (merged ids still work)."""
    row = fetch_one(
        con.execute("SELECT canonical_id FROM profile_merges WHERE profile_id = ?", [profile_id])
    )
    if row is not None:
        return str(row[0])
    exists = fetch_one(
        con.execute("SELECT 1 FROM identities WHERE profile_id = ? LIMIT 1", [profile_id])
    )
    if exists is None:
        raise NotFound(f"no profile with id {profile_id!r}")
    return profile_id


def _member_ids(con: duckdb.DuckDBPyConnection, canonical: ProfileId) -> list[ProfileId]:
    rows = con.execute(
        "SELECT profile_id FROM profile_merges WHERE canonical_id = ? ORDER BY seq", [canonical]
    ).fetchall()
    return [canonical, *(r[0] for r in rows)]


def profile_members(
    con: duckdb.DuckDBPyConnection, profile_id: ProfileId
) -> tuple[ProfileId, list[ProfileId]]:
    """The id `profile_id` lives on now and every id merged into it (the canonical one
    first); an id the store does not know is its own, alone (no error: events about a
    person may be read before or after their identities)."""
    row = fetch_one(
        con.execute("SELECT canonical_id FROM profile_merges WHERE profile_id = ?", [profile_id])
    )
    canonical = str(row[0]) if row else profile_id
    return canonical, _member_ids(con, canonical)


def find_profiles(con: duckdb.DuckDBPyConnection, identifier: IdentifierKey) -> list[ProfileId]:
    """Profiles holding a normalised identifier key (at most one, by construction)."""
    rows = con.execute(
        "SELECT DISTINCT coalesce(m.canonical_id, i.profile_id) FROM identities i "
        "LEFT JOIN profile_merges m ON m.profile_id = i.profile_id WHERE i.identifier = ?",
        [identifier],
    ).fetchall()
    return [r[0] for r in rows]


def get_profile(con: duckdb.DuckDBPyConnection, profile_id: ProfileId) -> Profile:
    """The live profile (traits newest-wins per trait, over every source and channel)."""
    canonical = canonical_id(con, profile_id)
    members = _member_ids(con, canonical)
    ident_rows = con.execute(
        "SELECT kind, value FROM identities WHERE profile_id IN (SELECT unnest(?::VARCHAR[])) "
        "ORDER BY seq",
        [members],
    ).fetchall()
    identifiers: dict[str, list[str]] = {}
    for kind, value in ident_rows:
        identifiers.setdefault(kind, []).append(value)
    stats = fetch_one(
        con.execute(
            "SELECT count(*), min(timestamp), max(timestamp), "
            "list(DISTINCT channel ORDER BY channel), list(DISTINCT source ORDER BY source) "
            "FROM events WHERE profile_id IN (SELECT unnest(?::VARCHAR[]))",
            [members],
        )
    )
    assert stats is not None
    counts = dict(
        con.execute(
            "SELECT type, count(*) FROM events WHERE profile_id IN (SELECT unnest(?::VARCHAR[])) "
            "GROUP BY type ORDER BY type",
            [members],
        ).fetchall()
    )
    computed, computed_at = computed_traits(con, canonical)
    traits: dict[str, Any] = {}
    for (raw,) in con.execute(
        "SELECT traits FROM events WHERE profile_id IN (SELECT unnest(?::VARCHAR[])) "
        "AND traits IS NOT NULL ORDER BY timestamp, seq",
        [members],
    ).fetchall():
        traits.update(orjson.loads(raw))
    return Profile(
        id=canonical,
        identifiers=identifiers,
        traits=traits,
        first_seen=stats[1],
        last_seen=stats[2],
        channels=list(stats[3] or []),
        sources=list(stats[4] or []),
        event_count=int(stats[0]),
        counts_by_type={str(k): int(v) for k, v in counts.items()},
        merged_ids=members[1:],
        computed=computed,
        computed_at=computed_at,
    )


def computed_traits(
    con: duckdb.DuckDBPyConnection, person_id: ProfileId
) -> tuple[dict[str, Any], datetime | None]:
    """The person's computed traits by name (values as stored: JSON) and when the newest
    was computed. Read by the profile's canonical id: a refresh writes them there."""
    rows = con.execute(
        "SELECT name, value, computed_at FROM computed_traits WHERE person_id = ? ORDER BY name",
        [person_id],
    ).fetchall()
    values = {str(name): orjson.loads(raw) if raw is not None else None for name, raw, _ in rows}
    return values, max((r[2] for r in rows), default=None)


def _parse_before(before: str | None) -> tuple[int, int] | None:
    if not before:
        return None
    ts, sep, seq = before.partition(":")
    if sep and ts.isdigit() and seq.isdigit():
        return int(ts), int(seq)
    try:
        moment = datetime.fromisoformat(before.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"before must be a timeline cursor or an ISO 8601 time, got {before!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000), 0


def timeline(
    con: duckdb.DuckDBPyConnection,
    profile_id: ProfileId,
    *,
    limit: int = 50,
    before: str | None = None,
    channels: list[str] | None = None,
    types: list[str] | None = None,
) -> list[TimelineEntry]:
    """Every interaction of the person on every channel, newest first."""
    if not 1 <= limit <= MAX_TIMELINE:
        raise InvalidInput(f"limit must be between 1 and {MAX_TIMELINE}, got {limit}")
    members = _member_ids(con, canonical_id(con, profile_id))
    sql = (
        "SELECT seq, message_id, type, event, channel, source, timestamp, received_at, "
        "properties, traits, context FROM events "
        "WHERE profile_id IN (SELECT unnest($members::VARCHAR[]))"
    )
    params: dict[str, Any] = {"members": members, "limit": limit}
    cursor = _parse_before(before)
    if cursor is not None:
        sql += " AND (epoch_us(timestamp), seq) < ($ts, $seq)"
        params["ts"], params["seq"] = cursor
    if channels:
        sql += " AND channel IN (SELECT unnest($channels::VARCHAR[]))"
        params["channels"] = channels
    if types:
        sql += " AND type IN (SELECT unnest($types::VARCHAR[]))"
        params["types"] = types
    sql += " ORDER BY timestamp DESC, seq DESC LIMIT $limit"
    rows = con.execute(sql, params).fetchall()
    return [
        TimelineEntry(
            seq=r[0],
            message_id=r[1],
            type=r[2],
            event=r[3],
            channel=r[4],
            source=r[5],
            timestamp=r[6],
            received_at=r[7],
            properties=orjson.loads(r[8]) if r[8] else None,
            traits=orjson.loads(r[9]) if r[9] else None,
            context=orjson.loads(r[10]) if r[10] else None,
        )
        for r in rows
    ]


def refresh_profiles(con: duckdb.DuckDBPyConnection) -> int:
    """Rebuild the `profiles` summary table (for search and segments); returns its size."""
    con.execute("BEGIN")
    try:
        con.execute("DELETE FROM profiles")
        con.execute(
            """
            INSERT INTO profiles
            WITH ev AS (
                SELECT person_id, timestamp, seq, channel, traits FROM resolved_events
                WHERE person_id IS NOT NULL
            ),
            stats AS (
                SELECT person_id, count(*) AS n, min(timestamp) AS first_seen,
                       max(timestamp) AS last_seen,
                       list(DISTINCT channel ORDER BY channel) AS channels
                FROM ev GROUP BY person_id
            ),
            latest AS (
                -- ties on timestamp go to the later event, as in get_profile
                SELECT person_id, j.key AS key, arg_max(j.value, (timestamp, seq)) AS value
                FROM ev, json_each(ev.traits) AS j
                WHERE ev.traits IS NOT NULL
                GROUP BY ALL
            ),
            tr AS (
                SELECT person_id, json_group_object(key, value) AS traits
                FROM latest GROUP BY person_id
            ),
            ids AS (
                SELECT coalesce(m.canonical_id, i.profile_id) AS person_id,
                       list(i.identifier ORDER BY i.seq) AS identifiers,
                       min(i.value) FILTER (WHERE i.kind = 'user_id') AS user_id,
                       arg_max(i.value, i.seq) FILTER (WHERE i.kind = 'email') AS email,
                       arg_max(i.value, i.seq) FILTER (WHERE i.kind = 'phone') AS phone
                FROM identities i LEFT JOIN profile_merges m ON m.profile_id = i.profile_id
                GROUP BY 1
            )
            SELECT ids.person_id, ids.user_id, ids.email, ids.phone,
                   coalesce(
                       tr.traits->>'$.name',
                       nullif(trim(concat_ws(' ', tr.traits->>'$.first_name',
                                             tr.traits->>'$.last_name')), '')
                   ),
                   ids.identifiers, tr.traits, stats.channels, coalesce(stats.n, 0),
                   stats.first_seen, stats.last_seen, now()
            FROM ids LEFT JOIN stats USING (person_id) LEFT JOIN tr USING (person_id)
            """
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    row = fetch_one(con.execute("SELECT count(*) FROM profiles"))
    return int(row[0]) if row else 0
