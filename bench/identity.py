"""Identity rebuild of 1 M identifiers in realistic chains: anonymous → user → email → phone."""

from __future__ import annotations

import random
import time
from typing import Any

from opencx.config import load_settings
from opencx.identity import rebuild
from opencx.store import Store, append_events, events_table


def chains(people: int, seed: int = 3) -> dict[str, list[Any]]:
    """Event columns for `people` people, four identifiers each, linked the way real data is.

    Each person browses anonymously, identifies (anonymous id + user id + email), later
    calls from a phone known by email, and sometimes uses a second device.
    """
    rng = random.Random(seed)
    cols: dict[str, list[Any]] = {name: [] for name in (
        "message_id", "identifiers", "timestamp")}  # fmt: skip
    t0 = 1_760_000_000_000_000
    events: list[tuple[int, list[str]]] = []
    for p in range(people):
        anon, user = f"anonymous_id:a{p}", f"user_id:u{p}"
        email, phone = f"email:c{p}@example.com", f"phone:+1555{p:07d}"
        start = t0 + rng.randrange(0, 180 * 86_400) * 1_000_000
        events.append((start, [anon]))
        events.append((start + 60_000_000, [anon]))
        events.append((start + 120_000_000, [user, email, anon]))
        events.append((start + 86_400_000_000, [email, phone]))
        if p % 4 == 0:  # a second device, identified later
            events.append((start + 2 * 86_400_000_000, [f"anonymous_id:b{p}"]))
            events.append((start + 2 * 86_400_000_000 + 1, [user, f"anonymous_id:b{p}"]))
    events.sort(key=lambda e: e[0])
    for n, (ts, keys) in enumerate(events):
        cols["message_id"].append(f"id-{n}")
        cols["identifiers"].append(keys)
        cols["timestamp"].append(ts)
    return cols


def load(store: Store, cols: dict[str, list[Any]]) -> int:
    n = len(cols["message_id"])
    full: dict[str, list[Any]] = {
        "seq": list(range(1, n + 1)),
        "message_id": cols["message_id"],
        "type": ["track"] * n,
        "event": ["Seen"] * n,
        "channel": ["web"] * n,
        "source": ["bench"] * n,
        "anonymous_id": [None] * n,
        "user_id": [None] * n,
        "group_id": [None] * n,
        "previous_id": [None] * n,
        "profile_id": [None] * n,
        "identifiers": cols["identifiers"],
        "timestamp": cols["timestamp"],
        "original_timestamp": [None] * n,
        "sent_at": [None] * n,
        "received_at": cols["timestamp"],
        "properties": [None] * n,
        "traits": [None] * n,
        "context": [None] * n,
    }
    store.con.execute("BEGIN")
    append_events(store.con, events_table(full))
    store.con.execute("COMMIT")
    return n


def run(people: int = 250_000) -> dict[str, Any]:
    settings = load_settings()
    with Store() as store:
        events = load(store, chains(people))
        t = time.perf_counter()
        first = rebuild(store.con, settings.identity)
        first_s = time.perf_counter() - t
        t = time.perf_counter()
        second = rebuild(store.con, settings.identity)
        second_s = time.perf_counter() - t
    return {
        "events": events,
        "identifiers": first.identifiers,
        "profiles": first.profiles,
        "rebuild_s": first_s,
        "rebuild_again_s": second_s,
        "moved_on_second": second.events_moved,
    }


if __name__ == "__main__":
    print(run())
