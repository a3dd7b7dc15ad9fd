"""Web and app sessions: browsing, the shop funnel, bills, support, sign-in, password resets."""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from opencx.demo._catalog import (
    ACCESSORIES,
    APP,
    APP_BROWSE_SCREENS,
    APP_NAME,
    APP_NAMESPACE,
    ARTICLES,
    BROKEN_RELEASE,
    BROWSE_PAGES,
    BUILDS,
    OLD_RELEASE,
    PHONE_WEIGHTS,
    PHONES,
    SITE,
    WEB,
    WEB_PAGES,
    Product,
)
from opencx.demo._clock import Clock
from opencx.demo._messages import Log, sms_sent
from opencx.demo._people import Customer, Device, Visitor

_PHONE_CUM = tuple(accumulate(PHONE_WEIGHTS))


class Visit:
    """One web or app session on one device: views and tracks, each a little after the last."""

    __slots__ = (
        "app",
        "campaign",
        "clock",
        "device",
        "ids",
        "log",
        "ms",
        "page",
        "referrer",
        "rng",
        "source",
        "started",
        "tz",
    )

    def __init__(
        self,
        log: Log,
        clock: Clock,
        rng: random.Random,
        device: Device | Visitor,
        tz: str,
        ms: int,
        *,
        user_id: str | None = None,
        campaign: dict[str, str] | None = None,
        referrer: str = "",
    ) -> None:
        self.log, self.clock, self.rng = log, clock, rng
        self.device, self.tz, self.ms = device, tz, ms
        self.app = isinstance(device, Device) and device.kind == "app"
        self.source = APP if self.app else WEB
        self.ids: dict[str, str] = {"anonymousId": device.anonymous_id}
        if user_id is not None:
            self.ids["userId"] = user_id
        self.campaign = campaign
        self.referrer = referrer
        self.page: dict[str, str] = {}
        self.started = False

    def pause(self, low_s: float, high_s: float) -> None:
        self.ms += int(self.rng.uniform(low_s, high_s) * 1000)

    def app_version(self) -> str | None:
        """The app's version at this moment of the visit, None on the web."""
        device = self.device
        if not isinstance(device, Device) or device.kind != "app":
            return None
        return BROKEN_RELEASE if self.ms >= device.update_ms else OLD_RELEASE

    def context(self) -> dict[str, Any]:
        """What the SDK attaches: the page and browser, or the app, device and OS."""
        if self.app:
            device = self.device
            assert isinstance(device, Device)
            version = self.app_version() or OLD_RELEASE
            return {
                "channel": "app",
                "app": {
                    "name": APP_NAME,
                    "version": version,
                    "build": BUILDS[version],
                    "namespace": APP_NAMESPACE,
                },
                "device": {"manufacturer": "Apple", "model": device.agent, "type": "ios"},
                "os": {"name": "iOS", "version": device.os_version},
                "library": {"name": "analytics-ios", "version": "4.1.8"},
                "locale": "en-US",
                "timezone": self.tz,
            }
        context: dict[str, Any] = {
            "channel": "web",
            "page": dict(self.page),
            "userAgent": self.device.agent,
            "library": {"name": "analytics.js", "version": "next-1.74.0"},
            "locale": "en-US",
            "timezone": self.tz,
        }
        if self.campaign is not None:
            context["campaign"] = dict(self.campaign)
        return context

    def view(self, name: str, slug: str = "", title: str | None = None) -> None:
        """A page view on the web, a screen view in the app."""
        if self.started:
            self.pause(4, 75)
        self.started = True
        if self.app:
            message = {"type": "screen", "name": name, **self.ids, "context": self.context()}
            self.log.add(self.ms, APP, message)
            return
        path, default_title = WEB_PAGES[name]
        url = SITE + path + slug
        self.page = {
            "path": path + slug,
            "referrer": self.referrer,
            "title": title or default_title,
            "url": url,
        }
        self.referrer = url
        message = {
            "type": "page",
            "name": name,
            **self.ids,
            "properties": dict(self.page),
            "context": self.context(),
        }
        self.log.add(self.ms, WEB, message)

    def track(self, event: str, properties: dict[str, Any]) -> None:
        if self.started:
            self.pause(1, 20)
        self.started = True
        message = {
            "type": "track",
            "event": event,
            **self.ids,
            "properties": properties,
            "context": self.context(),
        }
        self.log.add(self.ms, self.source, message)

    def identify(self, user_id: str, traits: dict[str, Any]) -> None:
        """Sign-in: from here on this device's events carry the userId too."""
        self.pause(1, 4)
        self.ids["userId"] = user_id
        message = {"type": "identify", **self.ids, "traits": traits, "context": self.context()}
        self.log.add(self.ms, self.source, message)

    def open_app(self) -> None:
        if self.app:
            self.track("Application Opened", {"from_background": self.rng.random() < 0.6})


def _product_properties(product: Product) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "sku": product.sku,
        "name": product.name,
        "category": product.category,
        "price": product.price,
    }


def _pick_product(rng: random.Random) -> Product:
    if rng.random() < 0.75:
        return rng.choices(PHONES, cum_weights=_PHONE_CUM)[0]
    return rng.choice(ACCESSORIES)


def browse(v: Visit) -> None:
    """A few pages or screens with no particular goal."""
    pages = APP_BROWSE_SCREENS if v.app else BROWSE_PAGES
    for _ in range(v.rng.choice((1, 1, 2, 2, 3, 4))):
        v.view(v.rng.choice(pages))


def shop(v: Visit, customer: Customer | None, deal: float) -> Product | None:
    """Product pages, maybe a cart and checkout; only customers complete orders.

    Returns the phone bought, if any.
    """
    rng = v.rng
    v.view("Shop" if v.app else rng.choice(("Phones", "Phones", "Deals", "Plans")))
    viewed: Product | None = None
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        viewed = _pick_product(rng)
        v.view("Product", viewed.product_id, f"{viewed.name} | Northwind Mobile")
        v.track("Product Viewed", _product_properties(viewed))
    assert viewed is not None
    if rng.random() >= 0.3 * deal:
        return None
    cart = [viewed]
    v.track("Product Added", {**_product_properties(viewed), "quantity": 1})
    if viewed.category == "phones" and rng.random() < 0.3:
        extra = rng.choice(ACCESSORIES)
        cart.append(extra)
        v.track("Product Added", {**_product_properties(extra), "quantity": 1})
    v.view("Cart")
    if rng.random() >= 0.6:
        return None
    revenue = round(sum(p.price for p in cart) * (1.0 if deal < 1.2 else 0.85), 2)
    products = [{**_product_properties(p), "quantity": 1} for p in cart]
    v.view("Checkout")
    v.track("Checkout Started", {"revenue": revenue, "currency": "USD", "products": products})
    if customer is None or rng.random() >= 0.62 * min(deal, 1.3):
        return None
    v.pause(60, 400)
    order = {
        "order_id": customer.next_id("W"),
        "revenue": revenue,
        "currency": "USD",
        "products": products,
    }
    if deal >= 1.2:
        order["coupon"] = "BLACKFRIDAY"
        order["discount"] = round(sum(p.price for p in cart) - revenue, 2)
    v.track("Order Completed", order)
    v.view("Order Confirmation")
    return viewed if viewed.category == "phones" else None


def view_bill(v: Visit, customer: Customer, period: str, *, pay: bool) -> None:
    """The bill, and for customers without AutoPay, paying it."""
    amount = customer.bill_amount(v.ms)
    v.view("Bill")
    v.track("Bill Viewed", {"amount": amount, "currency": "USD", "bill_period": period})
    if pay:
        v.pause(20, 120)
        method = v.rng.choice(("card", "card", "card", "apple_pay", "paypal", "bank_account"))
        v.track(
            "Payment Made",
            {"amount": amount, "currency": "USD", "method": method, "bill_period": period},
        )


def support(v: Visit, article: tuple[str, str, str] | None = None) -> None:
    """Help articles; most people read one or two."""
    v.view("Support")
    chosen = [article] if article else v.rng.sample(ARTICLES, v.rng.choice((1, 1, 2, 3)))
    for slug, title, category in chosen:
        if not v.app:
            v.view("Support Article", slug, f"{title} | Northwind Mobile")
        v.track(
            "Support Article Viewed",
            {"article_id": slug, "title": title, "category": category},
        )


def sign_in(v: Visit, customer: Customer, *, full: bool) -> None:
    """Signing in; the first time on a device sends every trait."""
    v.view("Sign In")
    v.pause(10, 40)
    v.track("Account Login", {"method": "password"})
    traits = customer.traits(v.ms) if full else {"email": customer.email}
    v.identify(customer.user_id, traits)


def sign_up(v: Visit, customer: Customer) -> None:
    """A new customer's first order, a plan and a phone, then the account's first identify."""
    rng = v.rng
    plan = customer.plan
    phone = rng.choices(PHONES, cum_weights=_PHONE_CUM)[0]
    v.view("Plans")
    v.view("Product", phone.product_id, f"{phone.name} | Northwind Mobile")
    v.track("Product Viewed", _product_properties(phone))
    v.track("Product Added", {**_product_properties(phone), "quantity": 1})
    v.view("Cart")
    products = [
        {**_product_properties(phone), "quantity": 1},
        {
            "product_id": plan.plan_id,
            "sku": f"PLAN-{plan.plan_id.upper()}",
            "name": plan.name,
            "category": "plans",
            "price": plan.monthly,
            "quantity": 1,
        },
    ]
    revenue = round(phone.price + plan.monthly, 2)
    v.view("Checkout")
    v.track("Checkout Started", {"revenue": revenue, "currency": "USD", "products": products})
    v.pause(60, 400)
    order = {
        "order_id": customer.next_id("W"),
        "revenue": revenue,
        "currency": "USD",
        "products": products,
    }
    v.track("Order Completed", order)
    v.identify(customer.user_id, customer.traits(v.ms))
    v.view("Order Confirmation")


def change_plan(v: Visit, customer: Customer) -> None:
    """Switching plans online, then an identify with the new plan."""
    change = customer.plan_change
    assert change is not None
    new = change[1]
    v.view("Plans")
    v.pause(30, 200)
    v.track(
        "Plan Changed",
        {
            "previous_plan": customer.plan.name,
            "previous_monthly_price": customer.plan.monthly,
            "plan": new.name,
            "plan_id": new.plan_id,
            "monthly_price": new.monthly,
        },
    )
    v.identify(customer.user_id, {"plan": new.name})


@dataclass(frozen=True, slots=True)
class ResetOutcome:
    """How a password-reset episode went."""

    app: bool
    broken: bool  # on the app release whose SMS codes never arrive
    failures: int
    gave_up: bool  # the last attempt failed
    ms: int  # when it ended


def password_reset(v: Visit, customer: Customer) -> ResetOutcome:
    """Forgotten password: up to three attempts. App 5.2.0 never requests the SMS code."""
    rng = v.rng
    v.open_app()
    v.view("Sign In")
    v.view("Password Reset")
    method = "sms" if v.app else "email"
    failures = 0
    broken = False
    for attempt in (1, 2, 3):
        v.track("Password Reset Started", {"method": method, "attempt": attempt})
        broken = v.app_version() == BROKEN_RELEASE
        if v.app and not broken:
            v.log.add(v.ms + 4000, *sms_sent(customer, "verification_code"))
        v.pause(40, 240)
        if rng.random() >= (0.45 if broken else 0.05):
            v.track("Password Reset Completed", {"method": method, "attempt": attempt})
            v.track("Account Login", {"method": "password"})
            return ResetOutcome(v.app, broken, failures, False, v.ms)
        failures += 1
        v.track(
            "Password Reset Failed",
            {
                "method": method,
                "attempt": attempt,
                "error": _reset_error(rng, v.app, broken),
                "step": "verify_code" if v.app else "open_link",
            },
        )
        if attempt == 3 or rng.random() >= (0.55 if attempt == 1 else 0.35):
            break
        v.pause(120, 1500)
        v.view("Password Reset")
    return ResetOutcome(v.app, broken, failures, True, v.ms)


def _reset_error(rng: random.Random, app: bool, broken: bool) -> str:
    if broken:
        return "sms_code_not_received"
    if app:
        return rng.choice(("invalid_code", "code_expired", "sms_code_not_received"))
    return rng.choice(("link_expired", "link_expired", "email_not_received"))
