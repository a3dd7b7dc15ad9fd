"""Who Northwind Mobile's customers and visitors are: identities, devices, habits."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

from opencx.demo._catalog import (
    CAMPAIGNS,
    FIRST_NAMES,
    IOS_VERSIONS,
    IPHONE_MODELS,
    LAST_NAMES,
    MAIL_DOMAINS,
    PLACE_WEIGHTS,
    PLACES,
    PLAN_WEIGHTS,
    PLANS,
    USER_AGENT_WEIGHTS,
    USER_AGENTS,
    Place,
    Plan,
)
from opencx.demo._clock import DAY_MS, Clock

NEVER = 1 << 62
_PLACE_CUM = tuple(accumulate(PLACE_WEIGHTS))
_PLAN_CUM = tuple(accumulate(PLAN_WEIGHTS))
_AGENT_CUM = tuple(accumulate(USER_AGENT_WEIGHTS))


def written_phone(digits: str, style: int) -> str:
    """A 10-digit US number the way one system or person writes it.

    >>> [written_phone("3125550143", s) for s in (0, 2, 3)]
    ['(312) 555-0143', '+13125550143', '312.555.0143']
    """
    area, exchange, line = digits[:3], digits[3:6], digits[6:]
    if style == 0:
        return f"({area}) {exchange}-{line}"
    if style == 1:
        return f"{area}-{exchange}-{line}"
    if style == 2:
        return f"+1{digits}"
    if style == 3:
        return f"{area}.{exchange}.{line}"
    if style == 4:
        return digits
    return f"+1 {area}-{exchange}-{line}"


def random_uuid(rng: random.Random) -> str:
    """A version-4 UUID from the run's own random stream (so runs repeat)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(slots=True)
class Device:
    """A browser or an app install: its own anonymousId until the customer signs in on it."""

    anonymous_id: str
    kind: str  # "web" or "app"
    agent: str  # browser user agent, or iPhone model for the app
    os_version: str = ""
    identified_ms: int = NEVER
    sign_in_session: int = 0  # index of the session that signs in
    update_ms: int = NEVER  # when the app updates to the broken release
    sessions: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Customer:
    """A known customer: identifiers, plan, home, habits and devices."""

    n: int
    user_id: str
    first: str
    last: str
    email: str
    digits: str  # the phone number, 10 digits
    typed_phone_style: int  # how they type their own number into forms
    account: str
    plan: Plan
    place: Place
    created_ms: int
    created_at: str
    new: bool  # signs up during the period
    begin_ms: int  # first activity in the period
    activity: float  # heavy-tailed: most are quiet, a few very busy
    autopay: bool
    bill_day: int
    newsletter: bool
    sms_alerts: bool
    installment: float
    devices: list[Device] = field(default_factory=list)
    stop_ms: int = NEVER  # cancels at this moment
    plan_change: tuple[int, Plan] | None = None
    cancel_reason: str = ""
    serial: int = 0

    @property
    def tz(self) -> str:
        return self.place.tz

    def phone(self, style: int) -> str:
        return written_phone(self.digits, style)

    def plan_at(self, ms: int) -> Plan:
        change = self.plan_change
        return change[1] if change is not None and ms >= change[0] else self.plan

    def bill_amount(self, ms: int) -> float:
        """The monthly bill: plan, taxes and fees, and any device installment."""
        return round(self.plan_at(ms).monthly * 1.13 + self.installment, 2)

    @property
    def active_span_ms(self) -> int:
        return self.stop_ms - self.begin_ms

    def next_id(self, prefix: str) -> str:
        """A unique id for this customer's next order, call or chat."""
        self.serial += 1
        return f"{prefix}{self.n:06d}-{self.serial}"

    def traits(self, ms: int) -> dict[str, Any]:
        """The full traits an identify sends at sign-in or sign-up."""
        return {
            "email": self.email,
            "phone": self.phone(self.typed_phone_style),
            "first_name": self.first,
            "last_name": self.last,
            "name": f"{self.first} {self.last}",
            "plan": self.plan_at(ms).name,
            "account_number": self.account,
            "city": self.place.city,
            "state": self.place.state,
            "created_at": self.created_at,
        }


def _email(rng: random.Random, first: str, last: str, n: int) -> str:
    # The number keeps addresses unique, so two customers never share one by accident.
    local = rng.choice(
        (f"{first}.{last}{n}", f"{first[0]}{last}{n}", f"{first}{last}.{n}", f"{first}_{n}")
    )
    return f"{local.lower()}@{rng.choice(MAIL_DOMAINS)}"


def make_customer(rng: random.Random, n: int, clock: Clock) -> Customer:
    """Customer number `n`, with a home, a plan and a channel mix."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    place = rng.choices(PLACES, cum_weights=_PLACE_CUM)[0]
    area = rng.choice(place.area_codes)
    span = clock.end_ms - clock.start_ms
    new = rng.random() < 0.12
    if new:
        created = clock.start_ms + int(rng.random() * 0.85 * span)
        begin = created - int(rng.random() * 10 * DAY_MS)
    else:
        created = clock.start_ms - int(rng.triangular(20, 8 * 365, 200) * DAY_MS)
        begin = clock.start_ms
    customer = Customer(
        n=n,
        user_id=f"u-{n:06d}",
        first=first,
        last=last,
        email=_email(rng, first, last, n),
        digits=f"{area}{555 + n // 10000:03d}{n % 10000:04d}",
        typed_phone_style=rng.choice((0, 0, 1, 1, 3, 4)),
        account=f"ACC-{100000 + n}",
        plan=rng.choices(PLANS, cum_weights=_PLAN_CUM)[0],
        place=place,
        created_ms=created,
        created_at=datetime.fromtimestamp(created // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        new=new,
        begin_ms=max(begin, clock.start_ms),
        activity=min(rng.lognormvariate(-0.32, 0.8), 9.0),
        autopay=rng.random() < 0.7,
        bill_day=rng.randint(1, 28),
        newsletter=rng.random() < 0.55,
        sms_alerts=rng.random() < 0.35,
        installment=rng.choice((0.0, 0.0, 0.0, 20.84, 27.75, 33.34, 41.63)),
    )
    _add_devices(rng, customer)
    return customer


def _add_devices(rng: random.Random, c: Customer) -> None:
    """Channel mix: some only ever call or visit a store; many use web and app."""
    if rng.random() < 0.1:
        c.sms_alerts = True  # the only digital trace of phone-only customers
        return
    has_web = rng.random() < 0.88
    if has_web:
        c.devices.append(Device(random_uuid(rng), "web", _agent(rng)))
        if rng.random() < 0.2:  # a second browser: phone and laptop
            c.devices.append(Device(random_uuid(rng), "web", _agent(rng)))
    if rng.random() < 0.55 or not has_web:
        app = Device(
            random_uuid(rng).upper(),  # the iOS SDK writes UUIDs in upper case
            "app",
            rng.choice(IPHONE_MODELS),
            rng.choice(IOS_VERSIONS),
        )
        c.devices.append(app)


def _agent(rng: random.Random) -> str:
    return rng.choices(USER_AGENTS, cum_weights=_AGENT_CUM)[0]


@dataclass(slots=True)
class Visitor:
    """Someone who browses the website and never signs in."""

    anonymous_id: str
    tz: str
    agent: str
    campaign: dict[str, str] | None


def make_visitor(rng: random.Random) -> Visitor:
    """An anonymous visitor, often sent by an ad."""
    place = rng.choices(PLACES, cum_weights=_PLACE_CUM)[0]
    utm = rng.choice(CAMPAIGNS)
    campaign = None if utm is None else {"source": utm[0], "medium": utm[1], "name": utm[2]}
    return Visitor(random_uuid(rng), place.tz, _agent(rng), campaign)
