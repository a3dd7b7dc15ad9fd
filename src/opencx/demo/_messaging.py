"""Emails from the ESP (bills, newsletters, promotions), texts from the SMS gateway, and
the customers' consent to them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from opencx.demo._catalog import APP, EMAIL, SMS, STORES, WEB
from opencx.demo._clock import HOUR_MS, Clock, nth_weekday
from opencx.demo._messages import Log, by_traits, sms_sent
from opencx.demo._people import Customer

ESP_TZ = "America/New_York"  # campaigns go out in one batch, on the East Coast's morning


@dataclass(frozen=True, slots=True)
class Campaign:
    """One email send: what it is and where its link goes."""

    campaign_id: str
    name: str
    subject: str
    email_type: str  # transactional, newsletter or promotion
    link: str  # page name the link opens

    def properties(self) -> dict[str, str]:
        return {
            "campaign_id": self.campaign_id,
            "campaign_name": self.name,
            "email_subject": self.subject,
            "email_type": self.email_type,
        }


def months(clock: Clock) -> list[tuple[int, int]]:
    """(year, month) of every month the period touches."""
    first, last = clock.dates[0], clock.dates[-1]
    first_index, last_index = first.year * 12 + first.month - 1, last.year * 12 + last.month
    return [(i // 12, i % 12 + 1) for i in range(first_index, last_index)]


def promotions(clock: Clock) -> list[tuple[date, Campaign]]:
    """The year's promotional sends in the years the period touches."""
    sends: list[tuple[date, Campaign]] = []
    for year in range(clock.dates[0].year, clock.dates[-1].year + 1):
        thanksgiving = nth_weekday(year, 11, 3, 4)
        dated = (
            (date(year, 4, 10), "spring-upgrade", "Spring upgrade event", "Upgrade for less"),
            (date(year, 7, 1), "summer-deals", "Summer deals", "Summer deals on every phone"),
            (date(year, 8, 14), "back-to-school", "Back to school", "Back-to-school savings"),
            (date(year, 9, 19), "new-iphone", "New iPhone", "The new iPhone is here"),
            (date(year, 11, 6), "bf-preview", "Black Friday preview", "Black Friday starts early"),
            (
                thanksgiving + timedelta(days=1),
                "black-friday",
                "Black Friday",
                "Black Friday: up to $800 off",
            ),
            (date(year, 12, 8), "holiday-gifts", "Holiday gifts", "Gifts they'll love"),
        )
        for day, campaign_id, name, subject in dated:
            campaign = Campaign(f"{campaign_id}-{year}", name, subject, "promotion", "Deals")
            sends.append((day, campaign))
    return sends


def send_email(
    log: Log,
    clock: Clock,
    rng: random.Random,
    customer: Customer,
    ms: int,
    campaign: Campaign,
    open_p: float,
    click_p: float,
) -> int | None:
    """Sent, maybe opened (when they are awake), maybe clicked; returns the click's time."""
    properties = campaign.properties()
    traits = {"email": customer.email}
    user_id = customer.user_id
    if not log.add(ms, EMAIL, by_traits("Email Sent", "email", traits, properties, user_id)):
        return None
    if rng.random() >= open_p:
        return None
    opened = ms + int(rng.expovariate(1 / 5) * HOUR_MS)
    opened = clock.when_open(opened, customer.tz, rng, 7, 23)
    if opened >= customer.stop_ms:
        return None
    event = by_traits("Email Opened", "email", dict(traits), dict(properties), user_id)
    log.add(opened, EMAIL, event)
    if rng.random() >= click_p:
        return None
    clicked = opened + int(rng.uniform(5, 120) * 1000)
    link = {**properties, "link_url": f"https://www.northwind-mobile.example/{campaign.link}"}
    event = by_traits("Email Link Clicked", "email", dict(traits), link, user_id)
    log.add(clicked, EMAIL, event)
    return clicked


def newsletters(clock: Clock) -> list[tuple[date, Campaign]]:
    """The monthly newsletter, second Tuesday of the month."""
    sends = []
    for year, month in months(clock):
        day = nth_weekday(year, month, 1, 2)
        campaign_id = f"newsletter-{year}-{month:02d}"
        subject = f"What's new at Northwind: {day:%B} {year}"
        campaign = Campaign(campaign_id, "Monthly newsletter", subject, "newsletter", "Home")
        sends.append((day, campaign))
    return sends


def bill_ready(period: str) -> Campaign:
    return Campaign(
        f"bill-ready-{period}",
        "Bill ready",
        f"Your {period} bill is ready",
        "transactional",
        "Bill",
    )


def sms_alerts(log: Log, clock: Clock, rng: random.Random, customer: Customer) -> None:
    """Bill reminders before each due date, and data alerts on capped plans."""
    tz = customer.tz
    for year, month in months(clock):
        due = date(year, month, customer.bill_day)
        ms = clock.at_local(due, tz, 11, HOUR_MS, rng)
        if ms is not None and customer.begin_ms <= ms < customer.stop_ms:
            log.add(ms, *sms_sent(customer, "bill_reminder"))
        if customer.plan.monthly <= 40 and rng.random() < 0.4 and customer.active_span_ms > 0:
            alert = clock.moment("app", tz, rng, customer.begin_ms, customer.stop_ms)
            log.add(alert, *sms_sent(customer, "data_usage_alert"))


# Consent: most customers agree to marketing email when they sign up, fewer to marketing
# texts, and a few unsubscribe later from a marketing email's footer link.
SMS_MARKETING_P = (0.3, 0.08)  # with and without email marketing
UNSUBSCRIBE_P = 0.06  # of email subscribers, at some marketing email of the period


def consent_stream(customer: Customer) -> random.Random:
    """The customer's own random stream for consent, apart from the one that drives their
    behaviour (seeded by their address, which the run's seed chose), so recording consent
    changes nothing else the customer does."""
    return random.Random(f"northwind/consent/{customer.email}")


def record_consent(log: Log, clock: Clock, crng: random.Random, customer: Customer) -> int:
    """`Consent Updated` events: a new customer's choices on the sign-up form (or in the
    store), an existing customer's as the ESP's and the SMS gateway's lists stood when the
    period began. Returns after how many marketing emails they unsubscribe (0: never)."""
    sms_marketing = crng.random() < SMS_MARKETING_P[0 if customer.newsletter else 1]
    if customer.new:
        kinds = {d.kind for d in customer.devices}
        source, channel = (WEB, "web") if "web" in kinds else (APP, "app")
        origin = "sign-up form"
        if not kinds:
            source, channel, origin = STORES, "store", "in store at sign-up"
        ms = customer.created_ms + 1000
        lists = (
            (source, channel, "email", customer.newsletter),
            (source, channel, "sms", sms_marketing),
        )
    else:
        ms = clock.start_ms + int(crng.random() * HOUR_MS)
        origin = "subscription list"
        lists = ((EMAIL, "email", "email", customer.newsletter), (SMS, "sms", "sms", sms_marketing))
    for source, channel, about, granted in lists:
        properties = {
            "channel": about,
            "purpose": "marketing",
            "granted": granted,
            "source": origin,
        }
        traits = {"email": customer.email}
        log.add(
            ms, source, by_traits("Consent Updated", channel, traits, properties, customer.user_id)
        )
    if customer.newsletter and crng.random() < UNSUBSCRIBE_P:
        return crng.randint(1, 8)
    return 0


def unsubscribe(
    log: Log, crng: random.Random, customer: Customer, sent_ms: int, campaign: Campaign
) -> None:
    """The footer link of a marketing email: marketing email withdrawn, from the ESP."""
    at = sent_ms + int(crng.uniform(0.1, 30) * HOUR_MS)
    properties = {**campaign.properties(), "list": "marketing"}
    traits = {"email": customer.email}
    log.add(
        at, EMAIL, by_traits("Email Unsubscribed", "email", traits, properties, customer.user_id)
    )
