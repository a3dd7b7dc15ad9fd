"""Northwind Mobile: a sample telecom whose customers use web, app, email, chat, phone and stores.

Deterministic for a seed. It has what real data has: anonymous visitors who never sign
in, customers who browse anonymously and identify later, second devices, a call center
that knows people only by a phone number written its own way, store staff who look
people up by account number, weekly and daily rhythms, a Black-Friday rush — and a real
problem to find: after app release 5.2.0, password resets in the app fail (the SMS code
never arrives) and the customers who hit it call the contact center.
"""

from __future__ import annotations

import functools
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class BrandSource:
    """A system of the sample brand that sends events, and its channel."""

    name: str
    channel: str


SOURCES: tuple[BrandSource, ...] = (
    BrandSource("web", "web"),
    BrandSource("ios-app", "app"),
    BrandSource("email-esp", "email"),
    BrandSource("contact-center", "phone"),
    BrandSource("chat", "chat"),
    BrandSource("stores", "store"),
)

DEFAULT_END = datetime(2026, 11, 20, tzinfo=UTC)
BROKEN_RELEASE = "5.2.0"
_FIRST = [
    "Ava",
    "Liam",
    "Mia",
    "Noah",
    "Zoe",
    "Ethan",
    "Ivy",
    "Lucas",
    "Nora",
    "Owen",
    "Ruby",
    "Leo",
    "Maya",
    "Eli",
    "Aria",
    "Jack",
    "Lena",
    "Omar",
    "Sofia",
    "Kai",
    "Priya",
    "Mateo",
    "Chloe",
    "Sam",
    "Grace",
    "Diego",
    "Hana",
    "Ben",
    "Elena",
    "Tariq",
]
_LAST = [
    "Nguyen",
    "Smith",
    "Garcia",
    "Johnson",
    "Kim",
    "Brown",
    "Patel",
    "Lopez",
    "Miller",
    "Davis",
    "Wilson",
    "Chen",
    "Martin",
    "Clark",
    "Lewis",
    "Young",
    "Hall",
    "Allen",
    "Khan",
    "Rossi",
    "Walker",
    "Wright",
    "Scott",
    "Adams",
    "Baker",
    "Rivera",
]
_PLACES = [
    ("Chicago", "IL", "America/Chicago", "312"),
    ("Austin", "TX", "America/Chicago", "512"),
    ("Denver", "CO", "America/Denver", "303"),
    ("Seattle", "WA", "America/Los_Angeles", "206"),
    ("San Diego", "CA", "America/Los_Angeles", "619"),
    ("Boston", "MA", "America/New_York", "617"),
    ("Atlanta", "GA", "America/New_York", "404"),
    ("Miami", "FL", "America/New_York", "305"),
    ("Phoenix", "AZ", "America/Phoenix", "602"),
]
_PLANS = [("Basic 5GB", 25.0), ("Plus 20GB", 45.0), ("Unlimited", 65.0), ("Unlimited Max", 90.0)]
_PHONES = [
    ("iPhone 17", 999.0),
    ("iPhone 17 Mini", 799.0),
    ("Galaxy S26", 899.0),
    ("Pixel 11", 699.0),
    ("Moto G", 249.0),
    ("Galaxy A56", 399.0),
]
_MAIL_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "icloud.com"]
_TOPICS = ["billing", "technical", "plan change", "device", "roaming", "cancellation"]
_STORES = ["store-chi-01", "store-aus-02", "store-den-01", "store-sea-03", "store-bos-01"]
_WEB_PAGES = ["Home", "Plans", "Phones", "Deals", "Coverage", "Support", "Account"]


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass
class _Customer:
    n: int
    user_id: str
    first: str
    last: str
    email: str
    phone_digits: str
    account: str
    plan: str
    monthly: float
    city: str
    state: str
    tz: str
    web_anon: str
    app_anon: str | None
    joined: datetime
    activity: float
    events: list[tuple[datetime, str, dict[str, Any]]] = field(default_factory=list)


class _Brand:
    """One run of the generator: its random stream, its clock and its output."""

    def __init__(self, seed: int, end: datetime, months: int) -> None:
        self.rng = random.Random(seed)
        self.end = end
        self.start = end - timedelta(days=round(months * 30.4))
        self.release = self.start + (end - self.start) * 0.25
        self.count = 0
        self.out: list[tuple[datetime, int, str, dict[str, Any]]] = []

    # -- time ------------------------------------------------------------------
    def day_weight(self, day: datetime) -> float:
        weekday = [1.0, 1.0, 1.0, 1.05, 1.1, 1.25, 1.15][day.weekday()]
        progress = (day - self.start) / (self.end - self.start)
        bf = 1.0 + 1.8 * math.exp(-(((day - datetime(2026, 11, 27, tzinfo=UTC)).days / 4) ** 2))
        holiday = 0.5 if (day.month, day.day) in ((7, 4), (9, 7), (10, 12)) else 1.0
        return weekday * (0.85 + 0.3 * progress) * bf * holiday

    def moment(self, after: datetime, tz: str, *, hours: tuple[int, int] = (7, 23)) -> datetime:
        """A plausible moment on or after `after`, by day weight and the person's local day."""
        rng = self.rng
        span = max((self.end - after).days, 1)
        for _ in range(8):
            day = after + timedelta(days=rng.randrange(span))
            if rng.random() * 2.4 < self.day_weight(day):
                break
        local = day.astimezone(_zone(tz))
        hour = min(max(int(rng.triangular(hours[0], hours[1], 19)), hours[0]), hours[1] - 1)
        at = local.replace(
            hour=hour,
            minute=rng.randrange(60),
            second=rng.randrange(60),
            microsecond=rng.randrange(1000) * 1000,
        )
        at = at.astimezone(UTC)
        return min(max(at, after), self.end - timedelta(seconds=1))

    # -- output ----------------------------------------------------------------
    def emit(self, source: str, at: datetime, message: dict[str, Any]) -> None:
        self.count += 1
        message["messageId"] = f"demo-{self.count:08d}"
        message["timestamp"] = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
        self.out.append((at, self.count, source, message))

    def anon(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def _phone_written(c: _Customer, rng: random.Random) -> str:
    d = c.phone_digits
    return rng.choice(
        [
            f"({d[:3]}) {d[3:6]}-{d[6:]}",
            f"{d[:3]}-{d[3:6]}-{d[6:]}",
            f"+1{d}",
            f"{d[:3]}.{d[3:6]}.{d[6:]}",
        ]
    )


def _customer(b: _Brand, n: int) -> _Customer:
    rng = b.rng
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, state, tz, area = rng.choice(_PLACES)
    plan, monthly = rng.choice(_PLANS)
    joined = (
        b.start - timedelta(days=rng.randrange(0, 900))
        if rng.random() < 0.85
        else (b.start + timedelta(days=rng.randrange(0, 150)))
    )
    return _Customer(
        n=n,
        user_id=f"u-{n:06d}",
        first=first,
        last=last,
        email=f"{first.lower()}.{last.lower()}{n}@{rng.choice(_MAIL_DOMAINS)}",
        phone_digits=f"{area}555{n % 10000:04d}",
        account=f"ACC-{100000 + n}",
        plan=plan,
        monthly=monthly,
        city=city,
        state=state,
        tz=tz,
        web_anon=b.anon(),
        app_anon=b.anon() if rng.random() < 0.6 else None,
        joined=joined,
        activity=rng.lognormvariate(0, 0.7),
    )


def _web_context(page: str, c: _Customer | None, tz: str) -> dict[str, Any]:
    path = "/" + page.lower().replace(" ", "-") if page != "Home" else "/"
    return {"page": {"path": path, "url": f"https://northwind.example{path}"}, "timezone": tz}


def _app_context(b: _Brand, at: datetime, tz: str) -> dict[str, Any]:
    version = BROKEN_RELEASE if at >= b.release else "5.1.3"
    return {
        "app": {"name": "Northwind", "version": version, "build": version.replace(".", "")},
        "device": {"type": "ios", "model": "iPhone"},
        "os": {"name": "iOS", "version": "19.1"},
        "timezone": tz,
    }


def _session(b: _Brand, c: _Customer, at: datetime, *, app: bool, known: bool) -> datetime:
    """One browsing session on the web or in the app; returns when it ended."""
    rng = b.rng
    anon = c.app_anon if app and c.app_anon else c.web_anon
    source = "ios-app" if app else "web"
    ids: dict[str, Any] = {"anonymousId": anon}
    if known:
        ids["userId"] = c.user_id

    def page(name: str, when: datetime) -> None:
        kind = "screen" if app else "page"
        ctx = _app_context(b, when, c.tz) if app else _web_context(name, c, c.tz)
        b.emit(source, when, {"type": kind, "name": name, **ids, "context": ctx})

    def track(event: str, when: datetime, **properties: Any) -> None:
        ctx = _app_context(b, when, c.tz) if app else {"timezone": c.tz}
        b.emit(
            source,
            when,
            {"type": "track", "event": event, **ids, "properties": properties, "context": ctx},
        )

    t = at
    for _ in range(rng.randint(1, 4)):
        page(rng.choice(_WEB_PAGES if not app else ["Home", "Usage", "Bill", "Plans"]), t)
        t += timedelta(seconds=rng.randint(8, 120))
    if known and rng.random() < 0.35:
        page("Bill", t)
        track("Bill Viewed", t, amount=c.monthly, currency="USD")
        t += timedelta(seconds=rng.randint(20, 90))
        if rng.random() < 0.5:
            track("Payment Made", t, amount=c.monthly, currency="USD", method="card")
    if rng.random() < 0.22:
        phone, price = rng.choice(_PHONES)
        product = phone.lower().replace(" ", "-")
        track("Product Viewed", t, product_id=product, category="phones", price=price)
        t += timedelta(seconds=rng.randint(30, 300))
        if rng.random() < 0.28:
            track("Product Added", t, product_id=product, price=price, quantity=1)
            t += timedelta(seconds=rng.randint(20, 200))
            if rng.random() < 0.55:
                track("Checkout Started", t, revenue=price, currency="USD")
                t += timedelta(seconds=rng.randint(60, 400))
                if rng.random() < 0.62:
                    track(
                        "Order Completed",
                        t,
                        order_id=f"o-{b.count}",
                        revenue=price,
                        currency="USD",
                        products=[{"product_id": product, "price": price}],
                    )
    return t


def _password_reset(b: _Brand, c: _Customer, at: datetime, *, app: bool) -> bool:
    """A reset attempt; True if it failed. The app's resets break after release 5.2.0."""
    rng = b.rng
    source = "ios-app" if app else "web"
    ctx = _app_context(b, at, c.tz) if app else _web_context("Password Reset", c, c.tz)
    ids = {"anonymousId": c.app_anon if app and c.app_anon else c.web_anon}
    b.emit(
        source,
        at,
        {
            "type": "track",
            "event": "Password Reset Started",
            **ids,
            "properties": {"method": "sms"},
            "context": ctx,
        },
    )
    broken = app and at >= b.release
    failed = rng.random() < (0.45 if broken else 0.05)
    done = at + timedelta(seconds=rng.randint(40, 240))
    if failed:
        error = (
            "sms_code_not_received"
            if broken
            else rng.choice(["link_expired", "sms_code_not_received"])
        )
        b.emit(
            source,
            done,
            {
                "type": "track",
                "event": "Password Reset Failed",
                **ids,
                "properties": {"error": error, "method": "sms"},
                "context": ctx,
            },
        )
    else:
        b.emit(
            source,
            done,
            {
                "type": "track",
                "event": "Password Reset Completed",
                **ids,
                "properties": {"method": "sms"},
                "context": ctx,
            },
        )
    return failed


def _call(b: _Brand, c: _Customer, at: datetime, topic: str) -> None:
    """A contact-center call: the agent desktop knows the caller by phone or account number."""
    rng = b.rng
    local = at.astimezone(_zone(c.tz))
    if not 8 <= local.hour < 20:
        at = (
            local.replace(hour=rng.randint(8, 19), minute=rng.randrange(60)) + timedelta(days=1)
        ).astimezone(UTC)
    if at >= b.end:
        return
    traits: dict[str, Any] = {"phone": _phone_written(c, rng)}
    if rng.random() < 0.6:
        traits["account_number"] = c.account
    who: dict[str, Any] = {"context": {"traits": traits, "channel": "phone"}}
    if rng.random() < 0.5:
        who["userId"] = c.user_id
    wait = int(rng.expovariate(1 / (240 if topic == "password" else 150)))
    handle = int(rng.lognormvariate(6.0, 0.5))
    queue = "identity" if topic == "password" else ("billing" if topic == "billing" else "care")
    b.emit(
        "contact-center",
        at,
        {
            "type": "track",
            "event": "Call Started",
            **who,
            "properties": {"topic": topic, "queue": queue, "wait_s": wait},
        },
    )
    resolved = rng.random() < (0.62 if topic == "password" else 0.8)
    b.emit(
        "contact-center",
        at + timedelta(seconds=wait + handle),
        {
            "type": "track",
            "event": "Call Ended",
            **who,
            "properties": {
                "topic": topic,
                "queue": queue,
                "wait_s": wait,
                "handle_s": handle,
                "resolved": resolved,
            },
        },
    )


def _chat(b: _Brand, c: _Customer, at: datetime) -> None:
    rng = b.rng
    topic = rng.choice(_TOPICS)
    who = {
        "context": {
            "traits": {"email": c.email.upper() if rng.random() < 0.2 else c.email},
            "channel": "chat",
        }
    }
    duration = int(rng.lognormvariate(6.2, 0.6))
    b.emit(
        "chat",
        at,
        {"type": "track", "event": "Chat Started", **who, "properties": {"topic": topic}},
    )
    b.emit(
        "chat",
        at + timedelta(seconds=duration),
        {
            "type": "track",
            "event": "Chat Ended",
            **who,
            "properties": {"topic": topic, "duration_s": duration, "resolved": rng.random() < 0.75},
        },
    )


def _store_visit(b: _Brand, c: _Customer, at: datetime) -> None:
    rng = b.rng
    local = at.astimezone(_zone(c.tz))
    at = local.replace(hour=rng.randint(10, 19), minute=rng.randrange(60)).astimezone(UTC)
    if at >= b.end:
        return
    key = {"account_number": c.account} if rng.random() < 0.5 else {"phone": _phone_written(c, rng)}
    who = {"context": {"traits": key, "channel": "store"}}
    reason = rng.choice(["new phone", "repair", "billing question", "plan change", "accessories"])
    store = rng.choice(_STORES)
    b.emit(
        "stores",
        at,
        {
            "type": "track",
            "event": "Store Visit",
            **who,
            "properties": {"store_id": store, "reason": reason},
        },
    )
    if reason in ("new phone", "accessories") and rng.random() < 0.6:
        phone, price = rng.choice(_PHONES) if reason == "new phone" else ("Case", 39.0)
        b.emit(
            "stores",
            at + timedelta(minutes=rng.randint(10, 50)),
            {
                "type": "track",
                "event": "Order Completed",
                **who,
                "properties": {
                    "order_id": f"s-{b.count}",
                    "revenue": price,
                    "currency": "USD",
                    "store_id": store,
                    "products": [{"name": phone, "price": price}],
                },
            },
        )


def _emails(b: _Brand, c: _Customer) -> None:
    rng = b.rng
    campaign_day = b.start + timedelta(days=3)
    while campaign_day < b.end:
        at = campaign_day.replace(hour=15, minute=rng.randrange(30))
        campaign = f"newsletter-{campaign_day:%Y-%m}"
        who = {"userId": c.user_id, "context": {"traits": {"email": c.email}, "channel": "email"}}
        b.emit(
            "email-esp",
            at,
            {"type": "track", "event": "Email Sent", **who, "properties": {"campaign": campaign}},
        )
        if rng.random() < 0.28 * min(c.activity, 2):
            opened = at + timedelta(hours=rng.expovariate(1 / 6))
            if opened < b.end:
                b.emit(
                    "email-esp",
                    opened,
                    {
                        "type": "track",
                        "event": "Email Opened",
                        **who,
                        "properties": {"campaign": campaign},
                    },
                )
                if rng.random() < 0.18:
                    b.emit(
                        "email-esp",
                        opened + timedelta(minutes=1),
                        {
                            "type": "track",
                            "event": "Email Link Clicked",
                            **who,
                            "properties": {"campaign": campaign, "link": "/deals"},
                        },
                    )
        campaign_day += timedelta(days=30)


def _life(b: _Brand, c: _Customer) -> None:
    """Six months of one known customer across channels."""
    rng = b.rng
    begin = max(b.start, c.joined)
    # The first web visit is anonymous; they sign in during a later one.
    first = b.moment(begin, c.tz)
    _session(b, c, first, app=False, known=False)
    signin = b.moment(first, c.tz)
    traits = {
        "email": c.email,
        "phone": _phone_written(c, rng),
        "first_name": c.first,
        "last_name": c.last,
        "name": f"{c.first} {c.last}",
        "plan": c.plan,
        "account_number": c.account,
        "city": c.city,
        "state": c.state,
        "created_at": c.joined.date().isoformat(),
    }
    b.emit(
        "web",
        signin,
        {
            "type": "identify",
            "anonymousId": c.web_anon,
            "userId": c.user_id,
            "traits": traits,
            "context": {"timezone": c.tz},
        },
    )
    if c.app_anon:
        app_login = b.moment(begin, c.tz)
        b.emit(
            "ios-app",
            app_login,
            {
                "type": "identify",
                "anonymousId": c.app_anon,
                "userId": c.user_id,
                "traits": {"email": c.email},
                "context": _app_context(b, app_login, c.tz),
            },
        )
    sessions = int(rng.lognormvariate(2.2, 0.6) * c.activity) + 2
    for _ in range(sessions):
        app = c.app_anon is not None and rng.random() < 0.55
        at = b.moment(begin, c.tz)
        _session(b, c, at, app=app, known=True)
    # Password resets; failures in the app make people call.
    for _ in range(rng.choice([0, 0, 1, 1, 1, 2])):
        app = c.app_anon is not None and rng.random() < 0.7
        at = b.moment(begin, c.tz)
        if _password_reset(b, c, at, app=app):
            if rng.random() < 0.5:  # tries again a bit later
                _password_reset(b, c, at + timedelta(minutes=rng.randint(5, 90)), app=app)
            if rng.random() < (0.42 if app else 0.12):
                _call(b, c, at + timedelta(hours=rng.uniform(0.2, 44)), "password")
    # Other service contacts.
    for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
        _call(b, c, b.moment(begin, c.tz, hours=(8, 20)), rng.choice(_TOPICS))
    if rng.random() < 0.3:
        _chat(b, c, b.moment(begin, c.tz))
    if rng.random() < 0.22:
        _store_visit(b, c, b.moment(begin, c.tz))
    if rng.random() < 0.06:
        at = b.moment(begin, c.tz)
        new_plan, price = rng.choice(_PLANS)
        b.emit(
            "web",
            at,
            {
                "type": "track",
                "event": "Plan Changed",
                "userId": c.user_id,
                "properties": {"from": c.plan, "to": new_plan, "monthly": price},
            },
        )
    if rng.random() < 0.025:
        at = b.moment(begin, c.tz)
        b.emit(
            "contact-center",
            at,
            {
                "type": "track",
                "event": "Subscription Cancelled",
                "userId": c.user_id,
                "context": {"channel": "phone"},
                "properties": {
                    "plan": c.plan,
                    "reason": rng.choice(["price", "coverage", "service", "moving"]),
                },
            },
        )
    _emails(b, c)


def _visitor(b: _Brand) -> None:
    """An anonymous visitor who browses and never signs in."""
    rng = b.rng
    anon = b.anon()
    tz = rng.choice(_PLACES)[2]
    for _ in range(1 + int(rng.expovariate(0.8))):
        at = b.moment(b.start, tz)
        for _ in range(rng.randint(1, 5)):
            page = rng.choice(_WEB_PAGES[:5])
            b.emit(
                "web",
                at,
                {
                    "type": "page",
                    "anonymousId": anon,
                    "name": page,
                    "context": _web_context(page, None, tz),
                },
            )
            at += timedelta(seconds=rng.randint(5, 90))
        if rng.random() < 0.15:
            phone, price = rng.choice(_PHONES)
            b.emit(
                "web",
                at,
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "anonymousId": anon,
                    "properties": {
                        "product_id": phone.lower().replace(" ", "-"),
                        "category": "phones",
                        "price": price,
                    },
                },
            )


def generate_brand(
    customers: int = 5000, *, seed: int = 7, end: datetime | None = None, months: int = 6
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (source name, Segment message) in ascending timestamp order."""
    brand = _Brand(seed, end or DEFAULT_END, months)
    for n in range(1, customers + 1):
        _life(brand, _customer(brand, n))
    for _ in range(int(customers * 1.5)):
        _visitor(brand)
    brand.out.sort(key=lambda row: (row[0], row[1]))
    for _, _, source, message in brand.out:
        yield source, message
