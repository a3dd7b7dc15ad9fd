"""Assisted channels: the contact center, chat and stores, which know people by phone,
email or account number, and only sometimes by user id."""

from __future__ import annotations

import random
from typing import Any

from opencx.demo._catalog import ACCESSORIES, CALLS, CHAT, PHONE_WEIGHTS, PHONES, QUEUES, STORES
from opencx.demo._clock import Clock
from opencx.demo._messages import Log, by_traits
from opencx.demo._people import Customer

_MEDIAN_HANDLE_S = {"billing": 420, "technical": 620, "device": 560, "password": 380}


def _caller_traits(rng: random.Random, customer: Customer, verified: bool) -> dict[str, Any]:
    # Caller ID always gives a phone number; the IVR sometimes asks for the account.
    traits: dict[str, Any] = {"phone": customer.phone(2 if rng.random() < 0.7 else 1)}
    if verified or rng.random() < 0.6:
        traits["account_number"] = customer.account
    return traits


def call(
    log: Log,
    clock: Clock,
    rng: random.Random,
    customer: Customer,
    ms: int,
    topic: str,
    *,
    verified: bool = False,
    resolved_p: float = 0.8,
) -> tuple[int, bool]:
    """An inbound call during opening hours; returns (when it ended, whether it was resolved)."""
    ms = clock.when_open(ms, customer.tz, rng, 8, 20)
    traits = _caller_traits(rng, customer, verified)
    user_id = customer.user_id if verified or rng.random() < 0.5 else None
    queue = QUEUES[topic]
    call_id = customer.next_id("CALL-")
    wait_s = int(rng.lognormvariate(4.4, 0.8) * (1.6 if queue == "account-security" else 1.0))
    handle_s = int(rng.lognormvariate(0, 0.5) * _MEDIAN_HANDLE_S.get(topic, 480))
    started = {"topic": topic, "queue": queue, "call_id": call_id, "direction": "inbound"}
    log.add(ms, CALLS, by_traits("Call Started", "phone", traits, started, user_id))
    resolved = rng.random() < resolved_p
    ended = {**started, "wait_s": wait_s, "handle_s": handle_s, "resolved": resolved}
    end_ms = ms + (wait_s + handle_s) * 1000
    log.add(end_ms, CALLS, by_traits("Call Ended", "phone", dict(traits), ended, user_id))
    return end_ms, resolved


def contact_center(
    log: Log, clock: Clock, rng: random.Random, customer: Customer, ms: int, topic: str
) -> int:
    """A call about `topic`; an unresolved one is often followed by another within days."""
    end_ms, resolved = call(log, clock, rng, customer, ms, topic)
    if not resolved and rng.random() < 0.35:
        later = end_ms + int(rng.uniform(4, 96) * 3_600_000)
        end_ms, _ = call(log, clock, rng, customer, later, topic, resolved_p=0.7)
    return end_ms


def chat(
    log: Log,
    clock: Clock,
    rng: random.Random,
    customer: Customer,
    ms: int,
    topic: str,
    *,
    signed_in: bool,
    entry_point: str = "web",
) -> None:
    """A chat; the pre-chat form asks for an email, typed however the person types it."""
    ms = clock.when_open(ms, customer.tz, rng, 8, 22)
    email = customer.email
    style = rng.random()
    if style < 0.12:
        email = email.capitalize()
    elif style < 0.16:
        email = email.upper()
    traits = {"email": email}
    user_id = customer.user_id if signed_in else None
    chat_id = customer.next_id("CHAT-")
    started = {"topic": topic, "chat_id": chat_id, "entry_point": entry_point}
    log.add(ms, CHAT, by_traits("Chat Started", "chat", traits, started, user_id))
    duration_s = int(rng.lognormvariate(6.0, 0.6))
    resolved = rng.random() < 0.72
    ended: dict[str, Any] = {**started, "duration_s": duration_s, "resolved": resolved}
    if rng.random() < 0.3:
        ended["csat"] = rng.choice((1, 2, 3, 4, 4, 5, 5, 5) if resolved else (1, 1, 2, 2, 3, 4))
    end_ms = ms + duration_s * 1000
    log.add(end_ms, CHAT, by_traits("Chat Ended", "chat", dict(traits), ended, user_id))


def _store_traits(rng: random.Random, customer: Customer) -> dict[str, Any]:
    # Staff look people up by account or phone; phone-only customers' accounts were never
    # seen online, so staff always note their phone, which links the account to them.
    roll = rng.random()
    phone = customer.phone(rng.choice((1, 3)))
    if roll < 0.4 and customer.devices:
        return {"account_number": customer.account}
    if roll < 0.8:
        return {"phone": phone}
    return {"account_number": customer.account, "phone": phone}


def store_visit(
    log: Log,
    clock: Clock,
    rng: random.Random,
    customer: Customer,
    ms: int,
    reason: str,
    period: str,
) -> None:
    """A store visit and what came of it: an order, a payment or a plan change."""
    traits = _store_traits(rng, customer)
    user_id = customer.user_id if rng.random() < 0.5 else None
    store_id = f"store-{customer.place.code}-{rng.randint(1, customer.place.stores):02d}"
    visit = {"store_id": store_id, "reason": reason}
    log.add(ms, STORES, by_traits("Store Visit", "store", traits, visit, user_id))
    ms += int(rng.uniform(8, 45) * 60_000)
    properties: dict[str, Any] | None = None
    event = "Order Completed"
    if reason in ("new phone", "trade-in") and rng.random() < 0.65:
        phone = rng.choices(PHONES, weights=PHONE_WEIGHTS)[0]
        cart = [phone, rng.choice(ACCESSORIES)] if rng.random() < 0.4 else [phone]
        properties = _store_order(customer, store_id, cart)
    elif reason == "accessories" and rng.random() < 0.7:
        properties = _store_order(customer, store_id, [rng.choice(ACCESSORIES)])
    elif reason == "payment":
        event = "Payment Made"
        amount = customer.bill_amount(ms)
        method = rng.choice(("card", "cash"))
        properties = {"amount": amount, "currency": "USD", "method": method}
        properties |= {"bill_period": period, "store_id": store_id}
    if properties is not None:
        log.add(ms, STORES, by_traits(event, "store", dict(traits), properties, user_id))


def _store_order(customer: Customer, store_id: str, cart: list[Any]) -> dict[str, Any]:
    products = [
        {"product_id": p.product_id, "sku": p.sku, "name": p.name, "category": p.category}
        | {"price": p.price, "quantity": 1}
        for p in cart
    ]
    return {
        "order_id": customer.next_id("S"),
        "revenue": round(sum(p.price for p in cart), 2),
        "currency": "USD",
        "products": products,
        "store_id": store_id,
    }


def plan_changed_by_staff(
    log: Log, rng: random.Random, customer: Customer, ms: int, source: str
) -> None:
    """A plan change an agent or store made, recorded against the verified customer."""
    change = customer.plan_change
    assert change is not None
    new = change[1]
    properties = {
        "previous_plan": customer.plan.name,
        "previous_monthly_price": customer.plan.monthly,
        "plan": new.name,
        "plan_id": new.plan_id,
        "monthly_price": new.monthly,
    }
    channel = "phone" if source == CALLS else "store"
    traits = {"account_number": customer.account, "phone": customer.phone(2)}
    log.add(ms, source, by_traits("Plan Changed", channel, traits, properties, customer.user_id))
