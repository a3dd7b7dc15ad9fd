"""The outbox: every contact OpenCX makes, delivered at least once, retried, or dead-lettered.

States: `pending` (waiting for `next_attempt_at`), `sending` (claimed by a delivery round
until `next_attempt_at`, its lease), `delivered`, `dead` (a permanent error, or
`max_attempts` temporary ones; `retry` makes it pending again).

A message is marked delivered only after its adapter returned. If the process dies
between the two, the message is still `sending`; its lease runs out (or a process that
opens the database alone calls `release_leases`) and it is sent again with the same
idempotency key, which the receiver uses to drop the copy. So a contact is never lost,
and never made twice at a receiver that checks the key.

Every delivered message becomes a `Message Sent` event on the person's timeline (a dead
one a `Message Failed`), through the normal ingestion path with a message id derived
from the outbox id, so a re-delivery does not count the contact twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

import duckdb
import orjson

from opencx.errors import Conflict, InvalidInput, NotFound, OpenCXError
from opencx.ingest import Ingestor
from opencx.orchestrate.adapters import Adapter, DeliveryError
from opencx.profiles import canonical_id
from opencx.store import fetch_one
from opencx.types import CHANNELS
from opencx.voc import PersonEvent, emit_many

log = logging.getLogger("opencx.delivery")

OutboxStatus = Literal["pending", "sending", "delivered", "dead"]
OUTBOX_STATUSES: tuple[str, ...] = get_args(OutboxStatus)
DEFAULT_LEASE_S = 300.0
DEFAULT_MAX_BACKOFF_S = 6 * 3600.0

INTEGRATION = "integration"  # the purpose of webhooks to other systems, not to customers


@dataclass(frozen=True)
class OutboxItem:
    """One message to deliver, and where its delivery stands."""

    id: str
    idempotency_key: str
    decision_id: str | None
    person_id: str
    action: str
    channel: str
    purpose: str
    adapter: str
    destination: str | None
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery round did; `items` are the messages it handled, as they ended.

    `waiting` counts due messages for adapters the round was not given (`waiting_for`:
    how many per adapter name).
    """

    delivered: int
    retried: int
    dead: int
    waiting: int
    items: tuple[OutboxItem, ...]
    waiting_for: Mapping[str, int] = field(default_factory=dict)


_COLUMNS = (
    "id, idempotency_key, decision_id, person_id, action, channel, purpose, adapter, "
    "destination, payload, status, attempts, next_attempt_at, last_error, created_at, "
    "delivered_at"
)


def _item(row: tuple[Any, ...]) -> OutboxItem:
    values = list(row)
    values[9] = orjson.loads(values[9])
    return OutboxItem(*values)


def _aware(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None:
        raise InvalidInput(f"{field} must carry a time zone, got {moment.isoformat()}")
    return moment


def outbox_id(idempotency_key: str) -> str:
    """The outbox id of an idempotency key (deterministic, so replays find the same row)."""
    return "ob_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]


def enqueue(
    con: duckdb.DuckDBPyConnection,
    *,
    idempotency_key: str,
    person_id: str,
    action: str,
    channel: str,
    purpose: str,
    adapter: str,
    destination: str | None,
    payload: Mapping[str, Any],
    at: datetime,
    decision_id: str | None = None,
) -> OutboxItem:
    """Queue a message for delivery, due at once (an INSERT on the caller's connection,
    so it commits or rolls back with the caller's transaction).

    Idempotent: a key already queued returns the existing item unchanged.
    """
    _aware(at, "at")
    for name, value in (
        ("idempotency_key", idempotency_key), ("person_id", person_id), ("action", action),
        ("purpose", purpose), ("adapter", adapter),
    ):  # fmt: skip
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{name} must be a non-empty string, got {value!r}")
    if channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    try:
        body = orjson.dumps(dict(payload)).decode()
    except TypeError as exc:
        raise InvalidInput(f"payload must be JSON-serialisable: {exc}") from None
    existing = fetch_one(
        con.execute(f"SELECT {_COLUMNS} FROM outbox WHERE idempotency_key = ?", [idempotency_key])
    )
    if existing is not None:
        return _item(existing)
    values = [
        outbox_id(idempotency_key), idempotency_key, decision_id, person_id, action, channel,
        purpose, adapter, destination, body, at, at,
    ]  # fmt: skip
    row = fetch_one(
        con.execute(
            f"INSERT INTO outbox ({_COLUMNS}) "
            f"VALUES (?,?,?,?,?,?,?,?,?,?,'pending',0,?,NULL,?,NULL) RETURNING {_COLUMNS}",
            values,
        )
    )
    assert row is not None
    return _item(row)


def get_item(con: duckdb.DuckDBPyConnection, item_id: str) -> OutboxItem:
    row = fetch_one(con.execute(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", [item_id]))
    if row is None:
        raise NotFound(f"no outbox message with id {item_id!r}")
    return _item(row)


def due(
    con: duckdb.DuckDBPyConnection,
    now: datetime,
    limit: int = 100,
    *,
    adapters: Collection[str] | None = None,
) -> list[OutboxItem]:
    """Messages to send now: pending ones whose time has come, and leases that ran out;
    only for the named adapters when given. Oldest due first."""
    _aware(now, "now")
    where = "status IN ('pending', 'sending') AND next_attempt_at <= ?"
    params: list[Any] = [now]
    if adapters is not None:
        where += " AND adapter IN (SELECT unnest(?::VARCHAR[]))"
        params.append(sorted(adapters))
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE {where} ORDER BY next_attempt_at, created_at, id "
        "LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [_item(r) for r in rows]


def release_leases(con: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """Make every `sending` message due now; returns how many.

    Only for a process that has the database to itself and is not delivering yet (the
    CLI, the server at start): any lease it finds was left by a process that died.
    """
    _aware(now, "now")
    rows = con.execute(
        "UPDATE outbox SET status = 'pending', next_attempt_at = ? WHERE status = 'sending' "
        "RETURNING id",
        [now],
    ).fetchall()
    return len(rows)


def backoff_delay(
    attempts: int,
    backoff_s: float,
    *,
    jitter: Callable[[], float] | None = None,
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
) -> float:
    """Seconds to wait after the `attempts`-th failure: `backoff_s * 2**(attempts-1)`,
    at most `max_backoff_s`; with `jitter` (a random number in [0, 1)), between half of
    it and all of it, so failed messages do not all come back at once.

    >>> [backoff_delay(n, 30) for n in (1, 2, 3)]
    [30.0, 60.0, 120.0]
    """
    delay = min(max_backoff_s, backoff_s * 2.0 ** max(0, attempts - 1))
    if jitter is not None:
        delay *= 0.5 + 0.5 * jitter()
    return float(delay)


def _claim(
    con: duckdb.DuckDBPyConnection, chunk: list[OutboxItem], now: datetime, lease_s: float
) -> list[OutboxItem]:
    """Take due messages for this round, in order; those another round took are left out."""
    rows = con.execute(
        f"UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_attempt_at = ? "
        f"WHERE id IN (SELECT unnest(?::VARCHAR[])) AND status IN ('pending', 'sending') "
        f"AND next_attempt_at <= ? RETURNING {_COLUMNS}",
        [now + timedelta(seconds=lease_s), [i.id for i in chunk], now],
    ).fetchall()
    taken = {item.id: item for item in map(_item, rows)}
    return [taken[i.id] for i in chunk if i.id in taken]


@dataclass(frozen=True)
class _Outcome:
    """How one message's attempt ended, before it is written."""

    item: OutboxItem
    status: str
    next_attempt_at: datetime
    error: str | None
    event: PersonEvent | None = None


def _finish(
    con: duckdb.DuckDBPyConnection, outcomes: list[_Outcome], now: datetime
) -> list[OutboxItem]:
    """Write how each attempt ended, in one statement."""
    delivered = [now if o.status == "delivered" else None for o in outcomes]
    rows = con.execute(
        "UPDATE outbox SET status = v.status, next_attempt_at = v.next_attempt_at, "
        "last_error = v.last_error, delivered_at = v.delivered_at FROM (SELECT "
        "unnest(?::VARCHAR[]) AS id, unnest(?::VARCHAR[]) AS status, "
        "unnest(?::TIMESTAMPTZ[]) AS next_attempt_at, unnest(?::VARCHAR[]) AS last_error, "
        "unnest(?::TIMESTAMPTZ[]) AS delivered_at) v WHERE outbox.id = v.id "
        f"RETURNING {', '.join('outbox.' + c.strip() for c in _COLUMNS.split(','))}",
        [[o.item.id for o in outcomes], [o.status for o in outcomes],
         [o.next_attempt_at for o in outcomes], [o.error for o in outcomes], delivered],
    ).fetchall()  # fmt: skip
    ended = {item.id: item for item in map(_item, rows)}
    return [ended[o.item.id] for o in outcomes]


def _event_properties(item: OutboxItem) -> dict[str, Any]:
    return {
        "channel": item.channel,
        "purpose": item.purpose,
        "action": item.action,
        "adapter": item.adapter,
        "decision_id": item.decision_id,
        "outbox_id": item.id,
        "idempotency_key": item.idempotency_key,
    }


def _attempt(adapter: Adapter, item: OutboxItem) -> DeliveryError | None:
    try:
        adapter.send(item)
    except DeliveryError as exc:
        return exc
    except Exception as exc:  # an adapter bug must not stop the round or lose the message
        log.exception("outbox %s: adapter %s failed", item.id, item.adapter)
        return DeliveryError(f"adapter error: {type(exc).__name__}: {exc}", permanent=False)
    return None


def _outcome(
    item: OutboxItem,
    failure: DeliveryError | None,
    now: datetime,
    *,
    max_attempts: int,
    backoff: Callable[[int], float],
    max_backoff_s: float,
) -> _Outcome:
    properties = _event_properties(item)
    if failure is None:
        # A call to another system (a CRM, a ticket tool) is not a contact with the person:
        # its own event name keeps it out of the contact budgets.
        sent = "Webhook Delivered" if item.purpose == INTEGRATION else "Message Sent"
        event = PersonEvent(
            item.person_id, sent, properties, item.channel, f"outbox:{item.id}", now
        )
        return _Outcome(item, "delivered", now, None, event)
    if failure.permanent or item.attempts >= max_attempts:
        why = "permanent error" if failure.permanent else f"{item.attempts} attempts"
        error = f"{failure.message} ({why})"
        event = PersonEvent(
            item.person_id, "Message Failed",
            {**properties, "error": error, "attempts": item.attempts}, item.channel,
            f"outbox:{item.id}:failed:{now:%Y%m%dT%H%M%S%f}", now,
        )  # fmt: skip
        return _Outcome(item, "dead", now, error, event)
    delay = backoff(item.attempts)
    if failure.retry_after_s is not None:
        delay = max(delay, min(failure.retry_after_s, max_backoff_s))
    return _Outcome(item, "pending", now + timedelta(seconds=delay), failure.message)


def _record(ingestor: Ingestor, outcomes: list[_Outcome]) -> list[_Outcome]:
    """Put the contacts on the people's timelines (one ingestion batch); an outcome whose
    event could not be written says why in its error."""
    con = ingestor.store.cursor()
    people = sorted({o.item.person_id for o in outcomes if o.event is not None})
    merged = dict(
        con.execute(
            "SELECT profile_id, canonical_id FROM profile_merges "
            "WHERE profile_id IN (SELECT unnest(?::VARCHAR[]))",
            [people],
        ).fetchall()
    )
    events = {
        o.item.id: replace(o.event, person_id=merged.get(o.event.person_id, o.event.person_id))
        for o in outcomes
        if o.event is not None
    }
    if not events:
        return outcomes
    try:
        emit_many(ingestor, list(events.values()))
        return outcomes
    except OpenCXError:
        pass  # someone's event was refused: write them one by one to find whose
    noted = []
    for o in outcomes:
        if o.item.id in events:
            try:
                emit_many(ingestor, [events[o.item.id]])
            except OpenCXError as exc:
                log.warning("outbox %s: %s not written: %s", o.item.id, o.event.event, exc.message)
                note = f"{o.event.event} event not written: {exc.message}"
                o = replace(o, error=f"{o.error}; {note}" if o.error else note)
        noted.append(o)
    return noted


def deliver_due(
    ingestor: Ingestor,
    adapters: Mapping[str, Adapter],
    now: datetime,
    *,
    limit: int = 100,
    max_attempts: int = 8,
    backoff_s: float = 30.0,
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
    jitter: Callable[[], float] | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    chunk_size: int = 20,
    progress: Callable[[int, int], None] | None = None,
) -> DeliveryReport:
    """One delivery round: send up to `limit` due messages, `chunk_size` at a time.

    Each chunk is claimed (leased for `lease_s`), sent one message at a time, then its
    `Message Sent` / `Message Failed` events are written (one ingestion batch) and only
    then the messages marked: a crash before that sends the chunk again, never loses it.
    A temporary error retries after `backoff_delay`; a permanent one, or the
    `max_attempts`-th temporary one, makes the message dead. Messages for adapters not
    in `adapters` wait (counted in `waiting`).
    """
    _aware(now, "now")
    if max_attempts < 1:
        raise InvalidInput(f"max_attempts must be at least 1, got {max_attempts}")
    if chunk_size < 1:
        raise InvalidInput(f"chunk_size must be at least 1, got {chunk_size}")
    store = ingestor.store
    con = store.cursor()
    batch = due(con, now, limit, adapters=adapters.keys())
    done: list[OutboxItem] = []

    def backoff(attempts: int) -> float:
        return backoff_delay(attempts, backoff_s, jitter=jitter, max_backoff_s=max_backoff_s)

    for start in range(0, len(batch), chunk_size):
        with store.write_lock:
            claimed = _claim(con, batch[start : start + chunk_size], now, lease_s)
        outcomes = []
        for n, item in enumerate(claimed):
            if progress is not None:
                progress(start + n, len(batch))
            failure = _attempt(adapters[item.adapter], item)
            outcomes.append(
                _outcome(item, failure, now, max_attempts=max_attempts, backoff=backoff,
                         max_backoff_s=max_backoff_s)
            )  # fmt: skip
        if outcomes:
            outcomes = _record(ingestor, outcomes)
            with store.write_lock:
                done += _finish(con, outcomes, now)
    if progress is not None:
        progress(len(batch), len(batch))
    counts = Counter(item.status for item in done)
    waiting = _waiting(con, now, adapters.keys())
    return DeliveryReport(
        delivered=counts["delivered"], retried=counts["pending"], dead=counts["dead"],
        waiting=sum(waiting.values()), items=tuple(done), waiting_for=waiting,
    )  # fmt: skip


def _waiting(
    con: duckdb.DuckDBPyConnection, now: datetime, adapters: Collection[str]
) -> dict[str, int]:
    rows = con.execute(
        "SELECT adapter, count(*) FROM outbox WHERE status IN ('pending', 'sending') "
        "AND next_attempt_at <= ? AND adapter NOT IN (SELECT unnest(?::VARCHAR[])) "
        "GROUP BY adapter ORDER BY adapter",
        [now, sorted(adapters)],
    ).fetchall()
    return {str(adapter): int(n) for adapter, n in rows}


def retry(con: duckdb.DuckDBPyConnection, item_id: str, now: datetime) -> OutboxItem:
    """Give a dead message a new set of attempts, due now (its last error is kept)."""
    _aware(now, "now")
    item = get_item(con, item_id)
    if item.status != "dead":
        raise Conflict(f"outbox message {item_id} is {item.status}: only dead messages are retried")
    row = fetch_one(
        con.execute(
            f"UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ? "
            f"WHERE id = ? AND status = 'dead' RETURNING {_COLUMNS}",
            [now, item_id],
        )
    )
    if row is None:
        raise Conflict(f"outbox message {item_id} changed while being retried; try again")
    return _item(row)


def outbox_of(con: duckdb.DuckDBPyConnection, person_id: str) -> list[OutboxItem]:
    """A person's messages, newest first (merged profiles' messages included)."""
    person = canonical_id(con, person_id)
    rows = con.execute(
        f"SELECT {', '.join('o.' + c.strip() for c in _COLUMNS.split(','))} FROM outbox o "
        "LEFT JOIN profile_merges m ON o.person_id = m.profile_id "
        "WHERE coalesce(m.canonical_id, o.person_id) = ? ORDER BY o.created_at DESC, o.id",
        [person],
    ).fetchall()
    return [_item(r) for r in rows]


def list_outbox(
    con: duckdb.DuckDBPyConnection, *, status: str | None = None, limit: int = 200
) -> list[OutboxItem]:
    """Messages, newest first, optionally of one status."""
    if status is not None and status not in OUTBOX_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(OUTBOX_STATUSES)}, got {status!r}")
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1, got {limit}")
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE ? IS NULL OR status = ? "
        "ORDER BY created_at DESC, id LIMIT ?",
        [status, status, limit],
    ).fetchall()
    return [_item(r) for r in rows]


def outbox_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """How many messages are in each state (every state named, zeros included)."""
    counts = dict.fromkeys(OUTBOX_STATUSES, 0)
    rows = con.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
    counts.update({str(status): int(n) for status, n in rows})
    return counts
