"""Finding customers by whatever the agent has: email, phone, account number, user id or name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import duckdb

from opencx.identity import IdentifierExtractor
from opencx.types import ProfileId

_DIGITS = re.compile(r"\d")
MIN_NAME_SIMILARITY = 0.86


@dataclass(frozen=True)
class ProfileMatch:
    """One search hit: who, why it matched, and enough to recognise them."""

    id: ProfileId
    name: str | None
    email: str | None
    phone: str | None
    user_id: str | None
    channels: list[str]
    last_seen: datetime | None
    matched: str


def _identifier_candidates(query: str, extractor: IdentifierExtractor) -> list[tuple[str, str]]:
    """(identifier key, label) pairs a typed query could mean, most specific first."""
    text = query.strip()
    keys: list[tuple[str, str]] = []
    if "@" in text and (key := extractor.key("email", text)):
        keys.append((key, "email"))
    if len(_DIGITS.findall(text)) >= 7 and (key := extractor.key("phone", text)):
        keys.append((key, "phone"))
    for kind in ("user_id", *extractor.external, "anonymous_id"):
        if key := extractor.key(kind, text):
            keys.append((key, kind.replace("_", " ")))
    return keys


def search_profiles(
    con: duckdb.DuckDBPyConnection,
    query: str,
    extractor: IdentifierExtractor,
    limit: int = 20,
) -> list[ProfileMatch]:
    """Profiles matching `query` exactly by an identifier, or by name (fuzzy)."""
    text = query.strip()
    if not text:
        return []
    hits: dict[ProfileId, str] = {}
    keys = _identifier_candidates(text, extractor)
    if keys:
        rows = con.execute(
            "SELECT DISTINCT coalesce(m.canonical_id, i.profile_id), i.identifier "
            "FROM identities i LEFT JOIN profile_merges m ON m.profile_id = i.profile_id "
            "WHERE i.identifier IN (SELECT unnest(?::VARCHAR[])) "
            "OR (i.kind <> 'anonymous_id' AND lower(i.value) = lower(?))",
            [[k for k, _ in keys], text],
        ).fetchall()
        labels = dict(keys)
        for pid, key in rows:
            hits.setdefault(pid, labels.get(key, key.partition(":")[0].replace("_", " ")))
    if len(text) >= 2 and not text.isdigit():
        rows = con.execute(
            "SELECT profile_id, score FROM ("
            "  SELECT profile_id, greatest("
            "    jaro_winkler_similarity(lower(name), lower($q)),"
            "    CASE WHEN lower(name) LIKE '%' || lower($q) || '%' THEN 1.0 ELSE 0 END"
            "  ) AS score FROM profiles WHERE name IS NOT NULL"
            ") WHERE score >= $min ORDER BY score DESC, profile_id LIMIT $limit",
            {"q": text, "min": MIN_NAME_SIMILARITY, "limit": limit},
        ).fetchall()
        for pid, score in rows:
            hits.setdefault(pid, "name" if score >= 1.0 else "similar name")
    if not hits:
        return []
    ids = list(hits)[:limit]
    found = {
        row[0]: row
        for row in con.execute(
            "SELECT profile_id, name, email, phone, user_id, channels, last_seen FROM profiles "
            "WHERE profile_id IN (SELECT unnest(?::VARCHAR[]))",
            [ids],
        ).fetchall()
    }
    matches = []
    for pid in ids:
        row = found.get(pid)
        if row is None:  # newer than the last summary refresh: still findable
            matches.append(ProfileMatch(pid, None, None, None, None, [], None, hits[pid]))
        else:
            matches.append(ProfileMatch(*row[:5], list(row[5] or []), row[6], hits[pid]))
    return matches
