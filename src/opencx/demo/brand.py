"""Northwind Mobile, a sample telecom whose customers use web, app, email, SMS, chat, phone
and stores: a deterministic stream of Segment messages to ingest like any real source.

It has what real data has: visitors who never sign in; customers who browse anonymously
and sign in later, on more than one device; a contact center and stores that know people
only by a phone number (written their own way) or an account number; weekly, daily and
yearly rhythms with a Black-Friday rush; churn; consent (most agree to marketing email,
fewer to marketing texts, a few unsubscribe later); surveys after purchases, contacts and
password resets and each quarter, at most one a week, answered by a few with scores and
comments. And a problem to find: after app release 5.2.0, password resets in the app often
fail (the SMS code never arrives), the people it happens to call the contact center within
two days, and it shows in their effort scores, their NPS and what they write.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opencx.demo._catalog import APP, BROKEN_RELEASE, CALLS, CHAT, EMAIL, SMS, STORES, WEB
from opencx.demo._clock import Clock
from opencx.demo._life import browse_anonymously, live
from opencx.demo._messages import Log, Row
from opencx.demo._people import make_customer, make_visitor
from opencx.errors import InvalidInput
from opencx.types import Channel

__all__ = ["BROKEN_RELEASE", "DEFAULT_END", "SOURCES", "BrandSource", "generate_brand"]

DEFAULT_END = datetime(2026, 11, 20, tzinfo=UTC)
VISITORS_PER_CUSTOMER = 1.5


@dataclass(frozen=True)
class BrandSource:
    """A system of the sample brand that sends events, and the channel it speaks for."""

    name: str
    channel: Channel


SOURCES: tuple[BrandSource, ...] = (
    BrandSource(WEB, "web"),
    BrandSource(APP, "app"),
    BrandSource(EMAIL, "email"),
    BrandSource(SMS, "sms"),
    BrandSource(CALLS, "phone"),
    BrandSource(CHAT, "chat"),
    BrandSource(STORES, "store"),
)


def generate_brand(
    customers: int = 5000, *, seed: int = 7, end: datetime | None = None, months: int = 6
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (source name, Segment message) in ascending timestamp order.

    `customers` known customers plus 1.5 times as many anonymous visitors, over the
    `months` calendar months before `end` (default 2026-11-20 UTC, so runs repeat). The
    same arguments always give the same messages; customer n is the same person whatever
    `customers` is. About 60 messages per customer.

    >>> source, message = next(generate_brand(3))
    >>> message["messageId"], message["timestamp"] >= "2026-05-20"
    ('demo-00000001', True)
    """
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 0:
        raise InvalidInput(f"customers must be a whole number >= 0, got {customers!r}")
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 120:
        raise InvalidInput(f"months must be a whole number from 1 to 120, got {months!r}")
    if end is None:
        end = DEFAULT_END
    elif end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    clock = Clock(end.astimezone(UTC), months)
    return _messages(_rows(clock, customers, seed))


def _rows(clock: Clock, customers: int, seed: int) -> list[Row]:
    # The messages hold no reference cycles, yet the collector would rescan the growing
    # heap of them again and again (a third of the run time): pause it while building.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build(clock, customers, seed)
    finally:
        if collecting:
            gc.enable()


def _build(clock: Clock, customers: int, seed: int) -> list[Row]:
    log = Log(clock.start_ms, clock.end_ms, clock.iso)
    # One random stream per person: reproducible, and independent of how many there are.
    for n in range(1, customers + 1):
        rng = random.Random(f"northwind/{seed}/customer/{n}")
        live(log, clock, rng, make_customer(rng, n, clock))
    for n in range(1, round(customers * VISITORS_PER_CUSTOMER) + 1):
        rng = random.Random(f"northwind/{seed}/visitor/{n}")
        browse_anonymously(log, clock, rng, make_visitor(rng))
    return log.in_time_order()


def _messages(rows: list[Row]) -> Iterator[tuple[str, dict[str, Any]]]:
    for _, _, source, message in rows:
        yield source, message
