"""The consent ledger, read from events on the timeline."""

from __future__ import annotations

from datetime import timedelta

from opencx.ingest import Ingestor
from opencx.orchestrate.consent import consent_for, consents_of, current_consents
from opencx.orchestrate.policy import Proposal, decide, default_policy
from opencx.orchestrate.state import person_state
from tests.conftest import WEB
from tests.orchestrate.conftest import NOW, Track, person

DAY = timedelta(days=1)


def test_consent_updated_events_make_the_history(ingestor: Ingestor, track: Track) -> None:
    pid = person(ingestor, "u1")
    track("u1", "Consent Updated", NOW - 30 * DAY,
          properties={"channel": "email", "purpose": "marketing", "granted": True,
                      "source": "sign-up form"})  # fmt: skip
    track("u1", "Consent Updated", NOW - 20 * DAY,
          properties={"channel": "SMS", "purpose": "marketing", "granted": "true"})  # fmt: skip
    track("u1", "Consent Updated", NOW - 10 * DAY,
          properties={"channel": "email", "purpose": "marketing", "granted": False})  # fmt: skip
    # Not clear enough to be consent: skipped, not guessed.
    track("u1", "Consent Updated", NOW - 5 * DAY, properties={"purpose": "marketing"})
    track("u1", "Consent Updated", NOW - 5 * DAY, properties={"purpose": "spam", "granted": True})
    history = consents_of(ingestor.store.con, pid)
    assert [(r.channel, r.purpose, r.granted, r.source) for r in history] == [
        ("email", "marketing", True, "sign-up form"),
        ("sms", "marketing", True, "web"),
        ("email", "marketing", False, "web"),
    ]
    assert history[0].at == NOW - 30 * DAY and history[0].event == "Consent Updated"
    current = current_consents(history)
    assert current[("email", "marketing")].granted is False
    assert current[("sms", "marketing")].granted is True


def test_context_consent_preferences_on_any_event(ingestor: Ingestor, track: Track) -> None:
    pid = person(ingestor, "u2")

    def page(days: int, **prefs: bool) -> None:
        context = {"consent": {"categoryPreferences": prefs}}
        track("u2", "Product Viewed", NOW - days * DAY, context=context)

    page(9, marketing=True, advertising=True, analytics=True)
    page(8, marketing=True, advertising=True, analytics=False)  # no purpose changed
    page(7, marketing=True, advertising=False, surveys=False)  # both map to marketing
    page(6, marketing=True, advertising=False, surveys=False)
    history = consents_of(ingestor.store.con, pid)
    assert [(r.channel, r.purpose, r.granted, r.at) for r in history] == [
        ("all", "marketing", True, NOW - 9 * DAY),
        ("all", "marketing", False, NOW - 7 * DAY),
        ("all", "survey", False, NOW - 7 * DAY),
    ]
    # The policy maps its own categories.
    custom = consents_of(ingestor.store.con, pid, {"analytics": "service"})
    assert [(r.purpose, r.granted) for r in custom] == [("service", True), ("service", False)]


def test_unsubscribes_withdraw_marketing_on_their_channel(ingestor: Ingestor, track: Track) -> None:
    pid = person(ingestor, "u3")
    track("u3", "Consent Updated", NOW - 30 * DAY,
          properties={"channel": "all", "purpose": "marketing", "granted": True})  # fmt: skip
    track("u3", "Email Unsubscribed", NOW - 3 * DAY, channel="email", source="esp",
          properties={"campaign_id": "newsletter-2026-11"})  # fmt: skip
    track("u3", "SMS Opted Out", NOW - 2 * DAY, channel="sms", source="sms-gateway")
    current = current_consents(consents_of(ingestor.store.con, pid))
    email = consent_for(current, "email", "marketing")
    assert email is not None and not email.granted and email.event == "Email Unsubscribed"
    app = consent_for(current, "app", "marketing")
    assert app is not None and app.granted
    state = person_state(ingestor.store.con, pid, NOW)
    policy = default_policy()

    def outcome(purpose: str, channel: str) -> str:
        p = Proposal(pid, "x", channel, purpose, NOW, f"{purpose}-{channel}")  # type: ignore[arg-type]
        return decide(p, state, policy, NOW).outcome

    assert outcome("marketing", "email") == "drop"
    assert outcome("transactional", "email") == "send"  # the bill still goes
    assert outcome("marketing", "app") == "send"
    assert outcome("transactional", "sms") == "drop"  # STOP stops everything on SMS
    assert outcome("service", "sms") == "drop"


def test_merged_profiles_share_one_ledger(ingestor: Ingestor, track: Track) -> None:
    ingestor.ingest(
        [{"type": "track", "anonymousId": "anon-9", "event": "Consent Updated",
          "messageId": "c-anon", "timestamp": (NOW - 5 * DAY).isoformat(),
          "properties": {"channel": "email", "purpose": "marketing", "granted": True}},
         {"type": "identify", "anonymousId": "anon-9", "userId": "u9", "messageId": "c-link",
          "timestamp": (NOW - 4 * DAY).isoformat()}],
        WEB,
    )  # fmt: skip
    pid = person(ingestor, "u9")
    history = consents_of(ingestor.store.con, pid)
    assert [(r.channel, r.granted) for r in history] == [("email", True)]
