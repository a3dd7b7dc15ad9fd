"""One person as the store knows them: every profile id, identifier and value as sent.

Also the registry of tables: which hold data about a person and how a person's rows are
found in each, and which are declared free of personal data. A table in neither list
fails `tests/privacy/test_erase.py`, so a new table cannot escape erasure unnoticed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import duckdb

from opencx.errors import NotFound
from opencx.identity import IdentifierExtractor, parse_identifier
from opencx.profiles import canonical_id, find_profiles
from opencx.store import fetch_one
from opencx.types import IdentifierKey, ProfileId

_IN_MEMBERS = "IN (SELECT unnest($members::VARCHAR[]))"
_IN_KEYS = "IN (SELECT unnest($keys::VARCHAR[]))"

# How a person's rows are found in every table that holds data about people, in the
# order they are deleted ($members: profile ids, $keys: identifier keys, $needles:
# quoted lower-cased values as sent, $mids: message ids of the person's events).
PERSON_TABLES: Mapping[str, str] = {
    "case_notes": f"case_id IN (SELECT id FROM cases WHERE person_id {_IN_MEMBERS})",
    "cases": f"person_id {_IN_MEMBERS}",
    "survey_invitations": f"person_id {_IN_MEMBERS}",
    "segment_members": f"person_id {_IN_MEMBERS}",
    "computed_traits": f"person_id {_IN_MEMBERS}",
    "outbox": f"person_id {_IN_MEMBERS} OR decision_id IN "
    f"(SELECT id FROM decisions WHERE person_id {_IN_MEMBERS})",
    "decisions": f"person_id {_IN_MEMBERS}",
    "agent_tasks": f"person_id {_IN_MEMBERS}",
    "identity_conflicts": f"identifier {_IN_KEYS} OR profile_id {_IN_MEMBERS} "
    "OR message_id IN (SELECT unnest($mids::VARCHAR[]))",
    "identity_blocks": f"identifier {_IN_KEYS} OR other {_IN_KEYS}",
    "profile_merges": f"profile_id {_IN_MEMBERS} OR merged_into {_IN_MEMBERS} "
    f"OR canonical_id {_IN_MEMBERS}",
    "identities": f"profile_id {_IN_MEMBERS} OR identifier {_IN_KEYS}",
    "profiles": f"profile_id {_IN_MEMBERS} OR list_has_any(identifiers, $keys::VARCHAR[])",
    "failed_events": "EXISTS (SELECT 1 FROM unnest($needles::VARCHAR[]) AS n(v) "
    "WHERE contains(lower(payload), n.v))",
    "events": f"profile_id {_IN_MEMBERS}",
}
# Tables that hold data about a person's data without holding it: they are rewritten,
# not deleted from (see `erase_person`).
SCRUBBED_TABLES: Mapping[str, str] = {
    "audit_log": "who looked at whom stays accountable: the target becomes the erasure id",
}
# Tables with no data about customers: staff, credentials, configuration, bookkeeping.
PERSONAL_DATA_FREE: Mapping[str, str] = {
    "sources": "systems that send events, and their hashed write keys",
    "tokens": "API tokens (hashed) of staff and systems",
    "users": "staff who sign in to the web app",
    "sessions": "staff sessions",
    "documents": "YAML configuration (journeys, surveys, segments, triggers, the salt)",
    "trigger_runs": "how far each trigger has read the log",
    "suppressions": "salted hashes of erased identifiers, never values",
    "erasures": "erasure reports: counts and salted hashes only",
    "schema_migrations": "applied migrations",
}


@dataclass(frozen=True)
class Person:
    """Everything that identifies one person in the store."""

    profile_ids: list[ProfileId]  # the canonical id first, then every merged one
    keys: list[IdentifierKey]  # normalised `kind:value`
    values: list[str]  # identifier values, normalised and as sent

    @property
    def needles(self) -> list[str]:
        """Lower-cased strings whose presence in a row means it is about this person."""
        found = {v.lower() for v in [*self.profile_ids, *self.keys, *self.values] if v}
        return sorted(found)

    def params(self, con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
        """Query parameters of the `PERSON_TABLES` conditions."""
        mids = con.execute(
            f"SELECT message_id FROM events WHERE profile_id {_IN_MEMBERS}",
            {"members": self.profile_ids},
        ).fetchall()
        quoted = sorted({f'"{v.lower()}"' for v in [*self.values, *self.keys] if v})
        return {
            "members": self.profile_ids,
            "keys": self.keys,
            "needles": quoted,
            "mids": [m[0] for m in mids],
        }


def resolve_person(
    con: duckdb.DuckDBPyConnection, extractor: IdentifierExtractor, identifier: str
) -> Person:
    """The person holding `identifier` (`KIND:VALUE` or a profile id `p_…`).

    An identifier no profile holds is still a person (maybe only in failed events, or
    not seen yet): erasing it removes what matches and suppresses it.
    """
    text = identifier.strip()
    asked: list[IdentifierKey] = []
    typed: list[str] = []  # the value as the request wrote it
    if text.startswith("p_") and ":" not in text:
        canonical: ProfileId | None = canonical_id(con, text)
    else:
        key = parse_identifier(text, extractor)
        asked.append(key)
        typed.append(text.partition(":")[2].strip())
        found = find_profiles(con, key)
        canonical = found[0] if found else None
    members: list[ProfileId] = []
    if canonical is not None:
        merged = con.execute(
            "SELECT profile_id FROM profile_merges WHERE canonical_id = ? ORDER BY seq",
            [canonical],
        ).fetchall()
        members = [canonical, *(m[0] for m in merged if m[0] != canonical)]
    rows = con.execute(
        f"SELECT identifier, value FROM identities WHERE profile_id {_IN_MEMBERS} ORDER BY seq",
        {"members": members},
    ).fetchall()
    keys = list(dict.fromkeys([*asked, *(r[0] for r in rows)]))
    values = {key.partition(":")[2] for key in keys}
    values.update(_sent_values(con, members, keys, extractor))
    values.update(typed)
    if not members and not keys:
        raise NotFound(f"no person has the identifier {identifier!r}")
    return Person(members, keys, sorted(v for v in values if v))


def _sent_values(
    con: duckdb.DuckDBPyConnection,
    members: list[ProfileId],
    keys: list[IdentifierKey],
    extractor: IdentifierExtractor,
) -> set[str]:
    """Identifier values as the person's events carried them, before normalisation.

    Only values that normalise to one of the person's own keys: an event of theirs may
    carry someone else's identifier (a link that was refused).
    """
    if not members:
        return set()
    kinds = ("email", "phone", *extractor.external)
    columns = [("user_id", "user_id"), ("anonymous_id", "anonymous_id"),
               ("user_id", "previous_id")]  # fmt: skip
    columns += [(k, f"json_extract_string(traits, '$.\"{k}\"')") for k in kinds]
    picks = ", ".join(f"list_distinct(list({sql}))" for _, sql in columns)
    row = fetch_one(
        con.execute(
            f"SELECT {picks} FROM events WHERE profile_id {_IN_MEMBERS}", {"members": members}
        )
    )
    own = set(keys)
    found: set[str] = set()
    for (kind, _), values in zip(columns, row or (), strict=False):
        for value in values or ():
            if value and extractor.key(kind, value) in own:
                found.add(value)
    return found
