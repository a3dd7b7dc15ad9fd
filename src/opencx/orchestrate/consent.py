"""The consent ledger: every grant and withdrawal per channel and purpose, read from events.

Consent is not a flag on a profile but a history on the timeline, so it can always be
shown where a permission came from. Three kinds of events write to it:

- `Consent Updated` tracks: `{channel (or "all"), purpose (or "all"), granted, source?}`;
- Segment's `context.consent.categoryPreferences` (a map of category to bool) on any
  event: a category maps to a purpose (`marketing`, `advertising` -> marketing, `surveys`
  -> survey), on every channel; a change is recorded when a value differs from the last;
- unsubscribe-style events: `Unsubscribed` / `Email Unsubscribed` (marketing email
  withdrawn), `SMS Opted Out` (a STOP reply: every purpose on SMS), and their opposites.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from opencx.profiles import profile_members

ALL = "all"
PURPOSES: tuple[str, ...] = ("transactional", "service", "survey", "marketing")
CONSENT_UPDATED = "Consent Updated"
# event -> (channel, or None for the event's own channel; purpose; granted)
SUBSCRIPTION_EVENTS: Mapping[str, tuple[str | None, str, bool]] = {
    "Unsubscribed": (None, "marketing", False),
    "Email Unsubscribed": ("email", "marketing", False),
    "SMS Opted Out": ("sms", ALL, False),
    "Subscribed": (None, "marketing", True),
    "Email Subscribed": ("email", "marketing", True),
    "SMS Opted In": ("sms", "marketing", True),
}
LEDGER_EVENTS: tuple[str, ...] = (CONSENT_UPDATED, *SUBSCRIPTION_EVENTS)
DEFAULT_CATEGORIES: Mapping[str, str] = {
    "marketing": "marketing",
    "advertising": "marketing",
    "surveys": "survey",
    "service": "service",
}


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One grant or withdrawal: `channel` and `purpose` may be "all"."""

    channel: str
    purpose: str
    granted: bool
    at: datetime
    source: str | None
    message_id: str
    event: str | None = None

    def describe(self) -> str:
        """`granted 2026-06-01 (Consent Updated, preference-center)`."""
        verb = "granted" if self.granted else "withdrawn"
        origin = ", ".join(x for x in (self.event, self.source) if x)
        return f"{verb} {self.at:%Y-%m-%d}" + (f" ({origin})" if origin else "")


def sql_list(names: Iterable[str]) -> str:
    """`('a', 'b')`: a constant list of names written into SQL (a literal list lets DuckDB
    filter without a join; the names are this module's constants, quotes doubled anyway)."""
    return "(" + ", ".join("'" + n.replace("'", "''") + "'" for n in names) + ")"


# The columns `ledger_rows` reads; a bulk reader selects the same ones for many people.
def ledger_select(at: str = "timestamp") -> str:
    """The columns `ledger_rows` reads, the time as `at` (a bulk read asks for epoch
    microseconds: DuckDB builds time-zone-aware datetimes slowly)."""
    return f"{at}, {_LEDGER_REST}"


_LEDGER_REST = (
    "seq, message_id, event, channel, source, "
    + ", ".join(
        f"CASE WHEN event IN {sql_list(LEDGER_EVENTS)} "
        f"THEN json_extract_string(properties, '$.{name}') END"
        for name in ("channel", "purpose", "granted", "source")
    )
    + ", CAST(json_extract(context, '$.consent.categoryPreferences') AS VARCHAR) AS prefs"
)
LEDGER_SELECT = ledger_select()
LEDGER_COLUMNS = 11
LEDGER_WHERE = (
    f"(event IN {sql_list(LEDGER_EVENTS)} OR (context LIKE '%categoryPreferences%' "
    "AND json_exists(context, '$.consent.categoryPreferences')))"
)


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
        return value.lower() in ("true", "yes")
    return None


def ledger_rows(
    rows: Iterable[Sequence[Any]], categories: Mapping[str, str] | None = None
) -> list[ConsentRecord]:
    """Consent records from event rows in log order (the `LEDGER_SELECT` columns; the
    properties the ledger reads are extracted in SQL, so a million people load fast).

    Malformed consent events are skipped rather than failing the read: the ledger only
    records what an event clearly says.
    """
    cats = DEFAULT_CATEGORIES if categories is None else categories
    out: list[ConsentRecord] = []
    last_pref: dict[str, bool] = {}
    for (
        at,
        _seq,
        message_id,
        event,
        channel,
        source,
        p_channel,
        purpose,
        flag,
        origin,
        prefs,
    ) in rows:
        if event in LEDGER_EVENTS:
            record = _from_event(
                event, channel, source, message_id, at, p_channel, purpose, flag, origin
            )
            if record is not None:
                out.append(record)
        if prefs is not None:
            out.extend(_from_preferences(prefs, cats, last_pref, at, source, message_id))
    return out


def _from_event(
    event: str,
    channel: str,
    source: str | None,
    message_id: str,
    at: datetime,
    p_channel: str | None,
    p_purpose: str | None,
    p_granted: str | None,
    p_source: str | None,
) -> ConsentRecord | None:
    if event == CONSENT_UPDATED:
        granted = _flag(p_granted)
        purpose = (p_purpose or "").lower()
        if granted is None or purpose not in (*PURPOSES, ALL):
            return None
        where = (p_channel or ALL).lower()
        return ConsentRecord(where, purpose, granted, at, p_source or source, message_id, event)
    fixed_channel, purpose, granted = SUBSCRIPTION_EVENTS[event]
    where = fixed_channel or (p_channel or channel).lower()
    purpose = (p_purpose or purpose).lower()
    if purpose not in (*PURPOSES, ALL):
        return None
    return ConsentRecord(where, purpose, granted, at, source, message_id, event)


def _from_preferences(
    prefs: str,
    categories: Mapping[str, str],
    last: dict[str, bool],
    at: datetime,
    source: str | None,
    message_id: str,
) -> list[ConsentRecord]:
    try:
        values = json.loads(prefs)
    except ValueError:
        return []
    if not isinstance(values, dict):
        return []
    # Several categories may map to one purpose: it is granted only if all of them are.
    by_purpose: dict[str, bool] = {}
    for category, value in values.items():
        purpose = categories.get(str(category))
        flag = _flag(value)
        if purpose is None or flag is None:
            continue
        by_purpose[purpose] = by_purpose.get(purpose, True) and flag
    out = []
    for purpose, granted in by_purpose.items():
        if last.get(purpose) != granted:
            last[purpose] = granted
            out.append(
                ConsentRecord(ALL, purpose, granted, at, source, message_id, "consent preferences")
            )
    return out


def consents_of(
    con: duckdb.DuckDBPyConnection,
    person_id: str,
    categories: Mapping[str, str] | None = None,
) -> list[ConsentRecord]:
    """The person's full consent history, oldest first (merged profiles included)."""
    rows = con.execute(
        f"SELECT {LEDGER_SELECT} FROM events "
        f"WHERE profile_id IN (SELECT unnest($members::VARCHAR[])) AND {LEDGER_WHERE} "
        "ORDER BY timestamp, seq",
        {"members": profile_members(con, person_id)[1]},
    ).fetchall()
    return ledger_rows(rows, categories)


def current_consents(
    records: Iterable[ConsentRecord],
) -> dict[tuple[str, str], ConsentRecord]:
    """The latest record per (channel, purpose), from a history in time order."""
    current: dict[tuple[str, str], ConsentRecord] = {}
    for record in records:
        current[(record.channel, record.purpose)] = record
    return current


def consent_for(
    consents: Mapping[tuple[str, str], ConsentRecord], channel: str, purpose: str
) -> ConsentRecord | None:
    """The record that decides `purpose` on `channel`: the latest of the exact one and the
    broader ones ("all" channels, "all" purposes); a later, broader withdrawal wins."""
    best: ConsentRecord | None = None
    for key in ((channel, purpose), (ALL, purpose), (channel, ALL), (ALL, ALL)):
        record = consents.get(key)
        if record is not None and (best is None or record.at > best.at):
            best = record
    return best
