"""The surveys Northwind Mobile sends and how its customers answer them.

Four programs, as a survey tool would run them: CSAT by email after an order, CES by text or
email after a call, chat or store visit, CES in the app or on the website right after a
password reset, and a relationship NPS by email each quarter. The brand never invites anyone
twice within a week: an invitation that would is skipped. Answers follow the experience
asked about, so the failing app resets show up as low CES (it was not easy), detractors,
and comments about codes that never arrive.

Surveys are decided last, from the messages the customer's months produced (as a survey
tool reads the event stream), so they draw on the customer's own random stream without
changing anything else the customer does.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from opencx.demo._catalog import APP, EMAIL, SMS, WEB
from opencx.demo._clock import DAY_MS, HOUR_MS, MINUTE_MS, Clock, nth_weekday
from opencx.demo._messages import Log, Row, by_traits
from opencx.demo._messaging import ESP_TZ
from opencx.demo._people import Customer
from opencx.demo._verbatims import TONES, verbatim
from opencx.ingest import SCORE_RANGES
from opencx.journeys import touchpoint_id

WAIT_MS = 7 * DAY_MS  # the brand's contact sense: at most one survey invitation a week
RELATIONSHIP = "relationship"  # what the quarterly NPS measures, in place of a touchpoint


@dataclass(frozen=True, slots=True)
class Program:
    """A survey the brand runs: its id, its scale, and the share of invitations answered."""

    survey_id: str
    survey_type: str  # nps, csat or ces
    response_p: float


CSAT_PURCHASE = Program("csat-purchase", "csat", 0.25)
CES_CONTACT = Program("ces-contact", "ces", 0.2)
CES_RESET_APP = Program("ces-reset-app", "ces", 0.3)
CES_RESET_WEB = Program("ces-reset-web", "ces", 0.3)
NPS_RELATIONSHIP = Program("nps-relationship", "nps", 0.17)

# Topics a comment may be about, by tone; several entries weigh a topic, none: no comment.
Topics = Mapping[str, tuple[str, ...]]


def _topics(
    negative: tuple[str, ...], neutral: tuple[str, ...], positive: tuple[str, ...]
) -> Topics:
    return {"negative": negative, "neutral": neutral, "positive": positive}


def _any_tone(*topics: str) -> Topics:
    return dict.fromkeys(TONES, topics)


def _by_tone(mix: Mapping[str, tuple[int, int, int]]) -> Topics:
    """Topics by tone from a table of weights (negative, neutral, positive) per topic."""
    return _topics(
        *(tuple(t for t, w in mix.items() for _ in range(w[column])) for column in range(3))
    )


# Scores are weights over the scale, lowest first (NPS 0-10, CSAT 1-5, CES 1-7, where 7 is
# "strongly agree the company made it easy").
_CSAT_ORDER = (4, 5, 11, 34, 46)
_CSAT_ORDER_IN_RUSH = (9, 9, 16, 32, 34)  # Black Friday weekend: late parcels, busy stores
_CES_RESOLVED = (3, 4, 6, 10, 20, 27, 30)
_CES_UNRESOLVED = (28, 24, 18, 12, 8, 6, 4)
_CES_STORE = (4, 5, 7, 12, 20, 25, 27)
_CES_RESET_DONE = (1, 2, 3, 8, 18, 30, 38)
_CES_RESET_RETRIED = (14, 20, 22, 18, 13, 8, 5)  # got in, but only after failed attempts
_CES_RESET_GAVE_UP = (42, 28, 15, 7, 4, 2, 2)
# 25% detractors (0-6), 35% passives, 40% promoters; after a failed app reset 52/30/18,
# and 70/20/10 for those who then had to call about it.
_NPS_ORDINARY = (1, 1, 1.5, 2, 3, 6.5, 10, 15, 20, 17, 23)
_NPS_FAILED_RESET = (6, 4, 6, 7, 8, 9, 12, 14, 16, 8, 10)
_NPS_FAILED_AND_CALLED = (10, 6, 8, 10, 10, 12, 14, 10, 10, 5, 5)

_PURCHASE_TOPICS = {
    "web": _any_tone("delivery", "delivery", "price"),
    "app": _any_tone("delivery", "delivery", "price", "app_general"),
    "store": _any_tone("store_visit", "store_visit", "price"),
}
# What a contact was about, as a comment topic (None: only the person who helped).
_SUBJECTS: dict[str, str | None] = {
    "billing": "billing",
    "technical": "network_coverage",
    "device": None,
    "roaming": "billing",
    "plan change": "plan_change",
    "order status": "delivery",
    "password": "password_reset_app",
    "new phone": "store_visit",
    "accessories": "store_visit",
    "repair": "store_visit",
    "billing question": "billing",
    "trade-in": "store_visit",
    "payment": "billing",
}
_RESET_APP_TOPICS = _any_tone("password_reset_app")
# The comment generator writes about the app's SMS reset only, not the website's emailed
# link: web reset answers go without a comment rather than with one about the app.
_RESET_WEB_TOPICS = _any_tone()
# topic: weight among (negative, neutral, positive) relationship comments
_RELATIONSHIP_MIX = {
    "billing": (3, 2, 1),
    "network_coverage": (3, 2, 3),
    "price": (3, 2, 2),
    "agent_helpful": (1, 1, 3),
    "app_general": (1, 1, 2),
    "store_visit": (1, 1, 1),
    "plan_change": (1, 1, 1),
    "delivery": (1, 0, 0),
}
_RELATIONSHIP_TOPICS = _by_tone(_RELATIONSHIP_MIX)
# People who failed to reset their password in the app mostly write about that.
_RELATIONSHIP_AFTER_FAILED_RESET = _by_tone({**_RELATIONSHIP_MIX, "password_reset_app": (28, 4, 0)})
_COMMENT_P = {"negative": 0.62, "neutral": 0.38, "positive": 0.48}
# Highest score read as negative and lowest read as positive, per survey type.
_NEGATIVE_UP_TO = {"nps": 6, "csat": 2, "ces": 3}
_POSITIVE_FROM = {"nps": 9, "csat": 4, "ces": 5}
_WATCHED = frozenset(
    (
        "Order Completed",
        "Call Ended",
        "Chat Ended",
        "Store Visit",
        "Password Reset Started",
        "Password Reset Completed",
        "Password Reset Failed",
    )
)


@dataclass(frozen=True, slots=True)
class _Ask:
    """An invitation the brand would send, if the week's wait allows, and how it would go."""

    ms: int
    program: Program
    touchpoint: str
    channel: str  # delivery: email or sms, or app or web in the product
    weights: tuple[float, ...]  # of each score on the scale, lowest first
    topics: Topics
    trigger: dict[str, Any] | None = None  # the message of the interaction asked about


@dataclass(slots=True)
class _Reset:
    """One password-reset episode (up to three attempts), as its messages tell it."""

    channel: str
    started: dict[str, Any]  # the last attempt's Password Reset Started
    ms: int  # when the last attempt started or ended
    failures: int = 0
    succeeded: bool | None = None  # None while an attempt is open (or the period ended)


@dataclass(slots=True)
class _History:
    """The interactions of one customer that surveys ask about: (ms, message) each."""

    orders: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    contacts: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    resets: list[_Reset] = field(default_factory=list)
    password_calls: list[int] = field(default_factory=list)


def send_surveys(log: Log, clock: Clock, rng: random.Random, c: Customer, rows: list[Row]) -> None:
    """Invite `c` to the surveys that `rows` (their messages, in the order they were made)
    and the quarterly waves call for, a week apart at least; some answer."""
    history = _read(rows)
    asks = [
        *_purchase_asks(clock, rng, history),
        *_contact_asks(rng, history),
        *_reset_asks(rng, history),
        *_relationship_asks(clock, rng, c, history),
    ]
    asks.sort(key=_when)
    last = -WAIT_MS
    for ask in asks:
        if ask.ms - last < WAIT_MS or not c.begin_ms <= ask.ms < c.stop_ms:
            continue
        if _invite(log, clock, rng, c, ask):
            last = ask.ms


def _when(ask: _Ask) -> int:
    return ask.ms


def _read(rows: list[Row]) -> _History:
    """Orders, contacts and reset episodes; the rows of one reset are made one after another."""
    history = _History()
    reset: _Reset | None = None
    for ms, _, _, message in rows:
        event = message.get("event")
        if event not in _WATCHED:
            continue
        if event == "Password Reset Started":
            if reset is None or message["properties"]["attempt"] == 1:
                reset = _Reset(message["context"]["channel"], message, ms)
                history.resets.append(reset)
            reset.started, reset.ms, reset.succeeded = message, ms, None
        elif event == "Password Reset Completed" and reset is not None:
            reset.ms, reset.succeeded = ms, True
        elif event == "Password Reset Failed" and reset is not None:
            reset.ms, reset.succeeded = ms, False
            reset.failures += 1
        elif event == "Order Completed":
            history.orders.append((ms, message))
        elif message["properties"].get("topic") != "cancellation":  # leaving, not served
            history.contacts.append((ms, message))
            if message["properties"].get("topic") == "password" and event == "Call Ended":
                history.password_calls.append(ms)
    return history


@functools.cache
def _touchpoint(event: str, channel: str) -> str:
    return touchpoint_id(event, channel)


def _purchase_asks(clock: Clock, rng: random.Random, history: _History) -> list[_Ask]:
    """CSAT by email about two hours after each order, online or in a store."""
    asks = []
    for ms, order in history.orders:
        channel = order["context"]["channel"]
        at = ms + int(rng.uniform(1.75, 2.25) * HOUR_MS)
        weights = _CSAT_ORDER_IN_RUSH if clock.deal(ms) >= 1.5 else _CSAT_ORDER
        touchpoint = _touchpoint("Order Completed", channel)
        topics = _PURCHASE_TOPICS[channel]
        asks.append(_Ask(at, CSAT_PURCHASE, touchpoint, "email", weights, topics, order))
    return asks


def _contact_asks(rng: random.Random, history: _History) -> list[_Ask]:
    """CES within the hour after a call or store visit (mostly by text) or a chat (email)."""
    asks = []
    for ms, contact in history.contacts:
        event, channel = contact["event"], contact["context"]["channel"]
        properties = contact["properties"]
        if event == "Store Visit":
            subject, weights = properties["reason"], _CES_STORE
            by_text = rng.random() < 0.5
        else:
            subject = properties["topic"]
            weights = _CES_RESOLVED if properties["resolved"] else _CES_UNRESOLVED
            by_text = channel == "phone" and rng.random() < 0.7
        at = ms + int(rng.uniform(10, 70) * MINUTE_MS)
        topics = _contact_topics(subject, "store_visit" if channel == "store" else "agent_helpful")
        touchpoint = _touchpoint(event, channel)
        delivery = "sms" if by_text else "email"
        asks.append(_Ask(at, CES_CONTACT, touchpoint, delivery, weights, topics, contact))
    return asks


@functools.cache
def _contact_topics(subject: str, helper: str) -> Topics:
    """Comments on what the contact was about, or on who helped (the staff, the agent)."""
    topic = _SUBJECTS.get(subject)
    if topic is None:
        return _any_tone(helper)
    if topic == "password_reset_app":  # a good call about it praises the agent, not the app
        return _topics((topic, helper), (helper,), (helper,))
    return _any_tone(topic, helper)


def _reset_asks(rng: random.Random, history: _History) -> list[_Ask]:
    """In-product CES seconds after a reset episode ends, on the device it happened on."""
    asks = []
    for reset in history.resets:
        if reset.succeeded is None:
            continue
        if not reset.succeeded:
            weights = _CES_RESET_GAVE_UP
        else:
            weights = _CES_RESET_RETRIED if reset.failures else _CES_RESET_DONE
        app = reset.channel == "app"
        program = CES_RESET_APP if app else CES_RESET_WEB
        topics = _RESET_APP_TOPICS if app else _RESET_WEB_TOPICS
        at = reset.ms + int(rng.uniform(2, 10) * 1000)
        touchpoint = _touchpoint("Password Reset Started", reset.channel)
        asks.append(_Ask(at, program, touchpoint, reset.channel, weights, topics, reset.started))
    return asks


@functools.lru_cache(maxsize=4)  # one clock a run
def _waves(clock: Clock) -> tuple[date, ...]:
    """Relationship NPS days: the second Tuesday of each quarter's middle month, in the period."""
    first, last = clock.dates[0], clock.dates[-1]
    days = (
        nth_weekday(y, m, 1, 2) for y in range(first.year, last.year + 1) for m in (2, 5, 8, 11)
    )
    return tuple(day for day in days if first <= day <= last)


def _relationship_asks(
    clock: Clock, rng: random.Random, c: Customer, history: _History
) -> list[_Ask]:
    """The quarterly NPS email to everyone still a customer; a failed app reset weighs on it."""
    asks = []
    for day in _waves(clock):
        at = clock.at_local(day, ESP_TZ, 10, 3 * HOUR_MS, rng)
        if at is None:
            continue
        failed = [r.ms for r in history.resets if r.channel == "app" and r.failures and r.ms < at]
        called = any(
            0 <= call - ms <= 50 * HOUR_MS
            for ms in failed
            for call in history.password_calls
            if call < at
        )
        weights, topics = _NPS_ORDINARY, _RELATIONSHIP_TOPICS
        if failed:
            weights = _NPS_FAILED_AND_CALLED if called else _NPS_FAILED_RESET
            topics = _RELATIONSHIP_AFTER_FAILED_RESET
        asks.append(_Ask(at, NPS_RELATIONSHIP, RELATIONSHIP, "email", weights, topics))
    return asks


def _invite(log: Log, clock: Clock, rng: random.Random, c: Customer, ask: _Ask) -> bool:
    """Send the invitation (True if it falls in the period) and perhaps an answer to it."""
    program = ask.program
    invitation_id = c.next_id("inv-")
    invited = {
        "survey_id": program.survey_id,
        "survey_type": program.survey_type,
        "invitation_id": invitation_id,
        "touchpoint": ask.touchpoint,
    }
    if not log.add(ask.ms, *_message(c, ask, "Survey Invited", invited)):
        return False
    if ask.trigger is not None:
        log.refer(invited, "trigger_message_id", ask.trigger)
    if rng.random() < program.response_p:
        _answer(log, clock, rng, c, ask, invitation_id)
    return True


def _answer(
    log: Log, clock: Clock, rng: random.Random, c: Customer, ask: _Ask, invitation_id: str
) -> None:
    """A score, often a comment in the tone of the score, on the channel of the invitation."""
    at = _answered_at(clock, rng, c, ask)
    if at >= c.stop_ms:
        return
    kind = ask.program.survey_type
    low, high = SCORE_RANGES[kind]
    score = rng.choices(range(low, high + 1), ask.weights)[0]
    if score <= _NEGATIVE_UP_TO[kind]:
        tone = "negative"
    else:
        tone = "positive" if score >= _POSITIVE_FROM[kind] else "neutral"
    answered: dict[str, Any] = {
        "survey_id": ask.program.survey_id,
        "survey_type": kind,
        "score": score,
    }
    topics = ask.topics[tone]
    if topics and rng.random() < _COMMENT_P[tone]:
        answered["comment"] = verbatim(rng, rng.choice(topics), tone)
    answered["touchpoint"] = ask.touchpoint
    answered["invitation_id"] = invitation_id
    answered["channel"] = ask.channel
    log.add(at, *_message(c, ask, "Survey Responded", answered))


def _answered_at(clock: Clock, rng: random.Random, c: Customer, ask: _Ask) -> int:
    """In the product within a minute or two; texts within the hour; emails within days."""
    if ask.channel in ("app", "web"):
        return ask.ms + int(rng.uniform(8, 90) * 1000)
    mean_hours = 0.4 if ask.channel == "sms" else 7.0
    delay = MINUTE_MS + int(min(rng.expovariate(1 / mean_hours), 96.0) * HOUR_MS)
    return clock.when_open(ask.ms + delay, c.tz, rng, 7, 23)


def _message(
    c: Customer, ask: _Ask, event: str, properties: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """(source, message): the ESP and SMS gateway know people by traits, like their other
    sends; in the product, the survey widget tracks on the page or screen of the reset."""
    if ask.channel == "email":
        return EMAIL, by_traits(event, "email", {"email": c.email}, properties, c.user_id)
    if ask.channel == "sms":
        return SMS, by_traits(event, "sms", {"phone": c.phone(2)}, properties, c.user_id)
    trigger = ask.trigger
    assert trigger is not None
    message: dict[str, Any] = {"type": "track", "event": event}
    for key in ("anonymousId", "userId"):
        if key in trigger:
            message[key] = trigger[key]
    message["properties"] = properties
    message["context"] = {
        key: dict(value) if isinstance(value, dict) else value
        for key, value in trigger["context"].items()
    }
    return (APP if ask.channel == "app" else WEB), message
