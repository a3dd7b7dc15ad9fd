"""The months of one known customer across channels, and of one anonymous visitor.

Order matters: devices and their sign-in moments come first, then whether and when the
customer leaves (a failed password reset can hasten it), then everything they do until then,
and last the surveys all that calls for (so they change nothing else).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

from opencx.demo._assisted import (
    call,
    chat,
    contact_center,
    plan_changed_by_staff,
    store_visit,
)
from opencx.demo._catalog import (
    CALL_TOPIC_WEIGHTS,
    CALL_TOPICS,
    CALLS,
    CANCEL_REASONS,
    CODE_NOT_RECEIVED,
    PLANS,
    STORE_REASON_WEIGHTS,
    STORE_REASONS,
    STORES,
)
from opencx.demo._clock import DAY_MS, HOUR_MS, MINUTE_MS, Clock
from opencx.demo._digital import (
    ResetOutcome,
    Visit,
    browse,
    change_plan,
    password_reset,
    shop,
    sign_in,
    sign_up,
    support,
    view_bill,
)
from opencx.demo._messages import Log, by_traits
from opencx.demo._messaging import (
    ESP_TZ,
    Campaign,
    bill_ready,
    consent_stream,
    months,
    newsletters,
    promotions,
    record_consent,
    send_email,
    sms_alerts,
    unsubscribe,
)
from opencx.demo._people import Customer, Device, Visitor
from opencx.demo._surveys import send_surveys

MONTH_MS = 30 * DAY_MS
# Baseline contacts with other causes; password calls happen without any failure too.
_TOPICS = (*CALL_TOPICS, "password", "cancellation")
_TOPIC_WEIGHTS = (*CALL_TOPIC_WEIGHTS, 3, 2)


def _count(rng: random.Random, mean: float) -> int:
    """A whole number with the given mean (cheaper than a Poisson draw, good enough here)."""
    whole = int(mean)
    return whole + (rng.random() < mean - whole)


def live(log: Log, clock: Clock, rng: random.Random, c: Customer) -> None:
    """Everything one customer does in the period, across every channel, and the surveys."""
    first_row = len(log.rows)
    c.stop_ms = clock.end_ms
    months_active = (clock.end_ms - c.begin_ms) / MONTH_MS
    _schedule_devices(clock, rng, c, months_active)
    signed_in = max((d.identified_ms for d in c.devices), default=c.created_ms)
    earliest_exit = max(signed_in, c.begin_ms) + 7 * DAY_MS
    if rng.random() < 0.011 * months_active and earliest_exit < clock.end_ms:
        c.stop_ms = earliest_exit + int(rng.random() * (clock.end_ms - earliest_exit))
        c.cancel_reason = rng.choice(CANCEL_REASONS)
    _password_resets(log, clock, rng, c, months_active, earliest_exit)
    if rng.random() < 0.012 * months_active and c.begin_ms + 7 * DAY_MS < c.stop_ms:
        at = clock.moment("web", c.tz, rng, c.begin_ms + 7 * DAY_MS, c.stop_ms)
        c.plan_change = (at, rng.choice([p for p in PLANS if p != c.plan]))
    if c.new and not c.devices:
        store_visit(log, clock, rng, c, c.created_ms, "new phone", _period(c.created_ms, clock))
    for index, device in enumerate(c.devices):
        _device_sessions(log, clock, rng, c, device, first=index == 0)
    _plan_change(log, clock, rng, c)
    _bills(log, clock, rng, c)
    _contacts(log, clock, rng, c, months_active)
    crng = consent_stream(c)
    _marketing(log, clock, rng, c, crng, record_consent(log, clock, crng, c))
    if c.sms_alerts:
        sms_alerts(log, clock, rng, c)
    if c.stop_ms < clock.end_ms:
        _cancel(log, clock, rng, c)
    send_surveys(log, clock, rng, c, log.rows[first_row:])


def _period(ms: int, clock: Clock) -> str:
    return clock.date_text[clock.day_of(ms)][:7]


def _schedule_devices(clock: Clock, rng: random.Random, c: Customer, months_active: float) -> None:
    """Session moments per device, and which session signs in (earlier ones are anonymous)."""
    kept = []
    for index, device in enumerate(c.devices):
        app = device.kind == "app"
        per_month = (0.9 if app else 0.55) * c.activity
        count = 1 + _count(rng, per_month * months_active)
        anonymous = min(rng.choice((0, 1, 1, 2, 3)), count - 1)
        rhythm = device.kind
        lo = c.begin_ms if not c.new or index == 0 else c.created_ms + DAY_MS
        if lo >= clock.end_ms - HOUR_MS:
            continue
        if c.new and index == 0:
            # Browses anonymously, then signs up at `created_ms`; later sessions follow.
            anonymous = max(anonymous, 1)
            before = clock.moments(rhythm, c.tz, rng, lo, c.created_ms, anonymous)
            after_lo = c.created_ms + HOUR_MS
            rest = count - anonymous - 1
            after = clock.moments(rhythm, c.tz, rng, after_lo, clock.end_ms, rest)
            device.sessions = [*before, c.created_ms, *after]
        else:
            device.sessions = clock.moments(rhythm, c.tz, rng, lo, clock.end_ms, count)
        device.sign_in_session = anonymous
        device.identified_ms = device.sessions[anonymous]
        if app:
            lag_days = rng.expovariate(1 / (30 if rng.random() < 0.08 else 3))
            device.update_ms = clock.release_ms + int(lag_days * DAY_MS)
        kept.append(device)
    c.devices = kept


def _signed_in_device(c: Customer, ms: int, prefer: str) -> Device | None:
    """A device the customer had signed in on by `ms`, preferring one kind."""
    ready = [d for d in c.devices if d.identified_ms + HOUR_MS < ms]
    for device in ready:
        if device.kind == prefer:
            return device
    return ready[0] if ready else None


def _device_sessions(
    log: Log, clock: Clock, rng: random.Random, c: Customer, d: Device, *, first: bool
) -> None:
    tz = c.tz
    app = d.kind == "app"
    if c.begin_ms <= d.update_ms < c.stop_ms:
        v = Visit(log, clock, rng, d, tz, d.update_ms, user_id=_user_at(c, d, d.update_ms))
        v.track(
            "Application Updated",
            {"previous_version": "5.1.4", "previous_build": "5140", "version": "5.2.0"},
        )
    for index, ms in enumerate(d.sessions):
        if ms >= c.stop_ms:
            break
        signed_in = index > d.sign_in_session
        v = Visit(log, clock, rng, d, tz, ms, user_id=c.user_id if signed_in else None)
        v.open_app()
        if index == d.sign_in_session:
            if c.new and first:
                sign_up(v, c)
                continue
            if rng.random() < 0.5:
                browse(v)
            sign_in(v, c, full=True)
        elif not signed_in:
            if rng.random() < 0.5:
                shop(v, None, clock.deal(ms))
            else:
                browse(v)
            continue
        _signed_in_session(log, clock, rng, c, v, app)


def _user_at(c: Customer, d: Device, ms: int) -> str | None:
    return c.user_id if ms > d.identified_ms else None


def _signed_in_session(
    log: Log, clock: Clock, rng: random.Random, c: Customer, v: Visit, app: bool
) -> None:
    roll = rng.random()
    if roll < (0.42 if app else 0.28):
        browse(v)
    elif roll < (0.75 if app else 0.53):
        if not app and rng.random() < 0.2:  # the session had expired
            sign_in(v, c, full=False)
        v.view("Account")
        if rng.random() < 0.7:
            view_bill(v, c, _period(v.ms, clock), pay=False)
    elif roll < (0.9 if app else 0.85):
        bought = shop(v, c, clock.deal(v.ms))
        if bought is not None and rng.random() < 0.08:
            later = v.ms + int(rng.uniform(20, 72) * HOUR_MS)
            contact_center(log, clock, rng, c, later, "device")
    else:
        support(v)
        if rng.random() < 0.12:
            topic = rng.choice(("billing", "technical", "device"))
            entry = "app" if app else "web"
            chat(log, clock, rng, c, v.ms + 30_000, topic, signed_in=True, entry_point=entry)


def _password_resets(
    log: Log,
    clock: Clock,
    rng: random.Random,
    c: Customer,
    months_active: float,
    earliest_exit: int,
) -> None:
    """Forgotten passwords, in time order; the app's broken resets send people to the phone."""
    if not c.devices:
        return
    signed_in = min(d.identified_ms for d in c.devices) + HOUR_MS
    if signed_in >= c.stop_ms:
        return
    count = _count(rng, 0.11 * months_active * (0.7 + 0.3 * min(c.activity, 3)))
    for ms in clock.moments("app", c.tz, rng, signed_in, c.stop_ms, count):
        if ms >= c.stop_ms:
            break
        prefer = "app" if rng.random() < 0.7 else "web"
        device = _signed_in_device(c, ms, prefer)
        if device is None:
            continue
        v = Visit(log, clock, rng, device, c.tz, ms, user_id=c.user_id)
        outcome = password_reset(v, c)
        if outcome.failures:
            _after_failed_reset(log, clock, rng, c, outcome, earliest_exit)


def _after_failed_reset(
    log: Log,
    clock: Clock,
    rng: random.Random,
    c: Customer,
    outcome: ResetOutcome,
    earliest_exit: int,
) -> None:
    """What people do next: read help, try the website, call, maybe give up on the brand."""
    call_p = 0.03
    if outcome.broken and outcome.gave_up:
        call_p = 0.62
        web = _signed_in_device(c, outcome.ms, "web")
        if web is not None and web.kind == "web":
            at = outcome.ms + int(rng.uniform(2, 30) * MINUTE_MS)
            if rng.random() < 0.2:
                support(Visit(log, clock, rng, web, c.tz, at, user_id=c.user_id), CODE_NOT_RECEIVED)
            if rng.random() < 0.2:
                retry = password_reset(Visit(log, clock, rng, web, c.tz, at, user_id=c.user_id), c)
                call_p = 0.5 if retry.gave_up else 0.12
    elif outcome.broken:
        call_p = 0.1
    elif outcome.gave_up:
        call_p = 0.2
    if rng.random() >= call_p:
        return
    delay = min(rng.expovariate(1 / 8), 40.0) * HOUR_MS
    at = clock.when_open(outcome.ms + int(delay), c.tz, rng, 8, 20)
    if at - outcome.ms > 47 * HOUR_MS or at >= c.stop_ms:
        return
    end_ms, resolved = call(log, clock, rng, c, at, "password", resolved_p=0.62)
    if outcome.broken and rng.random() < 0.1:  # frustrated enough to leave
        leave = end_ms + int(rng.uniform(3, 25) * DAY_MS)
        if earliest_exit <= leave < c.stop_ms:
            c.stop_ms, c.cancel_reason = leave, "service"
    elif resolved and outcome.app and rng.random() < 0.6:
        device = _signed_in_device(c, end_ms, "app")
        if device is not None:
            at = end_ms + int(rng.uniform(5, 120) * MINUTE_MS)
            v = Visit(log, clock, rng, device, c.tz, at, user_id=c.user_id)
            v.open_app()
            sign_in(v, c, full=False)


def _plan_change(log: Log, clock: Clock, rng: random.Random, c: Customer) -> None:
    if c.plan_change is None or c.plan_change[0] >= c.stop_ms:
        return
    at = c.plan_change[0]
    device = _signed_in_device(c, at, "web")
    roll = rng.random()
    if device is not None and roll < 0.6:
        v = Visit(log, clock, rng, device, c.tz, at, user_id=c.user_id)
        v.open_app()
        change_plan(v, c)
    elif roll < 0.85:
        end_ms, _ = call(log, clock, rng, c, at, "plan change", verified=True, resolved_p=1.0)
        plan_changed_by_staff(log, rng, c, end_ms - 60_000, CALLS)
    else:
        store_visit(log, clock, rng, c, at, "plan change", _period(at, clock))
        plan_changed_by_staff(log, rng, c, at + 15 * MINUTE_MS, STORES)


def _bills(log: Log, clock: Clock, rng: random.Random, c: Customer) -> None:
    """The monthly bill email; customers without AutoPay then pay online, in store or by phone."""
    for year, month in months(clock):
        period = f"{year}-{month:02d}"
        sent = clock.at_local(date(year, month, c.bill_day), c.tz, 6, 2 * HOUR_MS, rng)
        if sent is None or not c.begin_ms <= sent < c.stop_ms:
            continue
        click = send_email(log, clock, rng, c, sent, bill_ready(period), 0.5, 0.3)
        if c.autopay:
            if click is not None:
                _bill_session(log, clock, rng, c, click, period, pay=False, from_email=True)
            continue
        if click is not None:
            _bill_session(log, clock, rng, c, click, period, pay=True, from_email=True)
            continue
        due = min(sent + 14 * DAY_MS, c.stop_ms)
        if sent + HOUR_MS >= due:
            continue
        at = clock.moment("app", c.tz, rng, sent + HOUR_MS, due)
        if _bill_session(log, clock, rng, c, at, period, pay=True, from_email=False):
            continue
        if rng.random() < 0.4:
            store_visit(log, clock, rng, c, at, "payment", period)
        else:
            end_ms, _ = call(log, clock, rng, c, at, "billing", verified=True, resolved_p=0.97)
            payment = {"amount": c.bill_amount(at), "currency": "USD", "method": "card"}
            payment["bill_period"] = period
            traits = {"phone": c.phone(2), "account_number": c.account}
            message = by_traits("Payment Made", "phone", traits, payment, c.user_id)
            log.add(end_ms - 30_000, CALLS, message)


def _bill_session(
    log: Log,
    clock: Clock,
    rng: random.Random,
    c: Customer,
    at: int,
    period: str,
    *,
    pay: bool,
    from_email: bool,
) -> bool:
    """Looking at (and paying) the bill online; False if they have no signed-in device."""
    device = _signed_in_device(c, at, "web" if from_email else "app")
    if device is None:
        return False
    campaign: dict[str, str] | None = {
        "source": "northwind",
        "medium": "email",
        "name": f"bill-ready-{period}",
    }
    if not from_email or device.kind != "web":
        campaign = None
    v = Visit(log, clock, rng, device, c.tz, at, user_id=c.user_id, campaign=campaign)
    v.open_app()
    view_bill(v, c, period, pay=pay)
    return True


def _contacts(
    log: Log, clock: Clock, rng: random.Random, c: Customer, months_active: float
) -> None:
    """Calls, chats and store visits with no digital trigger."""
    offline = not c.devices
    lo, hi, tz = c.begin_ms, c.stop_ms, c.tz
    if hi - lo < HOUR_MS:
        return
    busy = 0.6 + 0.4 * min(c.activity, 3)
    for _ in range(_count(rng, (0.13 + 0.12 * offline) * busy * months_active)):
        topic = rng.choices(_TOPICS, weights=_TOPIC_WEIGHTS)[0]
        contact_center(log, clock, rng, c, clock.moment("call", tz, rng, lo, hi), topic)
    if not offline:
        for _ in range(_count(rng, 0.045 * months_active)):
            topic = rng.choices(CALL_TOPICS, weights=CALL_TOPIC_WEIGHTS)[0]
            signed_in = rng.random() < 0.5
            at = clock.moment("chat", tz, rng, lo, hi)
            chat(log, clock, rng, c, at, topic, signed_in=signed_in)
    for _ in range(_count(rng, (0.05 + 0.08 * offline) * months_active)):
        reason = rng.choices(STORE_REASONS, weights=STORE_REASON_WEIGHTS)[0]
        at = clock.moment("store", tz, rng, lo, hi)
        store_visit(log, clock, rng, c, at, reason, _period(at, clock))


def _marketing(
    log: Log,
    clock: Clock,
    rng: random.Random,
    c: Customer,
    crng: random.Random,
    unsubscribe_after: int,
) -> None:
    """Newsletters and promotions to subscribers; a click opens the site, often to shop.
    A customer who unsubscribes (from their `unsubscribe_after`-th email) gets no more."""
    if not c.newsletter:
        return
    engagement = min(0.5 + 0.5 * c.activity, 2.0)
    campaigns = (*newsletters(clock), *promotions(clock))
    last_day = _last_marketing_day(campaigns, c, unsubscribe_after)
    for day, campaign in campaigns:
        sent = clock.at_local(day, ESP_TZ, 10, 3 * HOUR_MS, rng)
        if sent is None or not c.begin_ms <= sent < c.stop_ms:
            continue
        if last_day is not None and day > last_day:
            continue
        promo = campaign.email_type == "promotion"
        open_p = (0.24 if promo else 0.2) * engagement
        click = send_email(log, clock, rng, c, sent, campaign, open_p, 0.18 if promo else 0.12)
        if day == last_day:
            unsubscribe(log, crng, c, sent, campaign)
        device = None if click is None else _signed_in_device(c, click, "web")
        if device is None or click is None:
            continue
        utm = {"source": "northwind", "medium": "email", "name": campaign.campaign_id}
        if device.kind != "web":
            utm = None
        v = Visit(log, clock, rng, device, c.tz, click + 2000, user_id=c.user_id, campaign=utm)
        v.open_app()
        if promo or rng.random() < 0.4:
            shop(v, c, clock.deal(click))
        else:
            browse(v)


def _last_marketing_day(
    campaigns: tuple[tuple[date, Campaign], ...], c: Customer, unsubscribe_after: int
) -> date | None:
    """The day of the marketing email a customer unsubscribes from (None: they never do)."""
    if not unsubscribe_after:
        return None
    active = sorted(
        day
        for day, _ in campaigns
        if c.begin_ms
        <= datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000
        < c.stop_ms
    )
    return active[min(unsubscribe_after, len(active)) - 1] if active else None


def _cancel(log: Log, clock: Clock, rng: random.Random, c: Customer) -> None:
    """Leaving: a call to the retention queue that ends with the subscription cancelled."""
    end_ms, _ = call(log, clock, rng, c, c.stop_ms, "cancellation", verified=True, resolved_p=1.0)
    plan = c.plan_at(c.stop_ms)
    properties = {
        "plan": plan.name,
        "plan_id": plan.plan_id,
        "monthly_price": plan.monthly,
        "reason": c.cancel_reason,
    }
    traits = {"phone": c.phone(2), "account_number": c.account}
    message = by_traits("Subscription Cancelled", "phone", traits, properties, c.user_id)
    log.add(end_ms - 60_000, CALLS, message)


def browse_anonymously(log: Log, clock: Clock, rng: random.Random, visitor: Visitor) -> None:
    """A visitor's few sessions: browsing, shopping without buying, reading support."""
    sessions = 1 + min(int(rng.expovariate(1.3)), 6)
    times = clock.moments("web", visitor.tz, rng, clock.start_ms, clock.end_ms, sessions)
    for index, ms in enumerate(times):
        campaign = visitor.campaign if index == 0 else None
        v = Visit(log, clock, rng, visitor, visitor.tz, ms, campaign=campaign)
        roll = rng.random()
        if roll < 0.45:
            browse(v)
        elif roll < 0.85:
            shop(v, None, clock.deal(ms))
        else:
            support(v)
