"""The contact policy's rules, one by one and together, on hand-made states."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from opencx.errors import InvalidInput
from opencx.orchestrate.consent import ConsentRecord
from opencx.orchestrate.moments import Response
from opencx.orchestrate.policy import (
    ContactPolicy,
    Proposal,
    arbitrate,
    decide,
    default_policy,
    load_policy,
    parse_policy,
    save_policy,
)
from opencx.orchestrate.state import Contact, PersonState, SurveyAnswer
from opencx.store import Store

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
POLICY = default_policy()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def granted(channel: str, purpose: str, when: str = "2026-06-01T12:00:00Z", yes: bool = True):
    return {(channel, purpose): ConsentRecord(channel, purpose, yes, at(when), "crm", "m1")}


def proposal(
    purpose: str = "marketing", channel: str = "email", when: datetime = NOW, **kw: object
) -> Proposal:
    key = kw.pop("key", f"test:{purpose}:{channel}:{when.isoformat()}")
    return Proposal("p1", kw.pop("action", "offer"), channel, purpose, when, key, **kw)  # type: ignore[arg-type]


def opted_in(**kw: object) -> PersonState:
    consents = {**granted("email", "marketing"), **granted("sms", "marketing")}
    return PersonState("p1", timezone="America/New_York", consents=consents, **kw)  # type: ignore[arg-type]


# Consent


def test_marketing_needs_an_opt_in_by_default() -> None:
    d = decide(proposal(), PersonState("p1"), POLICY, NOW)
    assert (d.outcome, d.rule) == ("drop", "consent")
    assert d.reasons[0] == "blocked: no marketing consent on email (opt-in needed, none recorded)"
    assert decide(proposal(), opted_in(), POLICY, NOW).outcome == "send"


def test_service_and_surveys_are_allowed_unless_withdrawn() -> None:
    assert decide(proposal("service"), PersonState("p1"), POLICY, NOW).outcome == "send"
    assert decide(proposal("survey"), PersonState("p1"), POLICY, NOW).outcome == "send"
    withdrawn = PersonState("p1", consents=granted("all", "survey", yes=False))
    d = decide(proposal("survey"), withdrawn, POLICY, NOW)
    assert (d.outcome, d.rule) == ("drop", "consent")
    assert d.reasons[0] == "blocked: survey on email withdrawn 2026-06-01 (crm)"


def test_a_later_withdrawal_on_all_channels_beats_an_earlier_grant() -> None:
    consents = {
        **granted("email", "marketing", "2026-06-01T00:00:00Z"),
        **granted("all", "marketing", "2026-09-01T00:00:00Z", yes=False),
    }
    d = decide(proposal(), PersonState("p1", consents=consents), POLICY, NOW)
    assert d.rule == "consent"
    regranted = {**consents, **granted("email", "marketing", "2026-10-01T00:00:00Z")}
    assert decide(proposal(), PersonState("p1", consents=regranted), POLICY, NOW).outcome == "send"


def test_defaults_per_purpose_are_configurable() -> None:
    policy = parse_policy("consent: {defaults: {marketing: opt_out, survey: opt_in}}")
    assert decide(proposal(), PersonState("p1"), policy, NOW).outcome == "send"
    assert decide(proposal("survey"), PersonState("p1"), policy, NOW).rule == "consent"


def test_transactional_bypasses_caps_quiet_hours_and_suppressions() -> None:
    full = tuple(Contact(NOW - timedelta(days=1), "email", "marketing", "x") for _ in range(5))
    state = PersonState(
        "p1", timezone="America/New_York", contacts=full, open_cases=1,
        answers=(SurveyAnswer(NOW - timedelta(days=1), "nps", 2),),
        consents=granted("email", "marketing", yes=False),  # unsubscribed from marketing
    )  # fmt: skip
    night = at("2026-11-23T23:30:00-05:00")
    d = decide(proposal("transactional", when=night), state, POLICY, NOW)
    assert d.outcome == "send" and d.rule is None
    assert "transactional: caps, quiet hours and suppressions do not apply" in d.reasons


def test_transactional_never_bypasses_a_withdrawal_of_the_channel() -> None:
    stop = {("sms", "all"): ConsentRecord("sms", "all", False, at("2026-10-02T10:00:00Z"),
                                          "sms-gateway", "m9", "SMS Opted Out")}  # fmt: skip
    d = decide(proposal("transactional", "sms"), PersonState("p1", consents=stop), POLICY, NOW)
    assert (d.outcome, d.rule) == ("drop", "consent")
    assert d.reasons[0] == (
        "blocked: transactional on sms withdrawn 2026-10-02 (SMS Opted Out, sms-gateway)"
    )
    # ... but only on that channel.
    email = decide(
        proposal("transactional", "email"), PersonState("p1", consents=stop), POLICY, NOW
    )
    assert email.outcome == "send"


# The one budget, and channel caps


def test_one_budget_across_channels_and_kinds_with_the_contacts_listed() -> None:
    contacts = (
        Contact(at("2026-11-20T15:00:00Z"), "email", "marketing", "newsletter"),
        Contact(at("2026-11-21T15:00:00Z"), "sms", "service", "data alert"),
        Contact(at("2026-11-22T15:00:00Z"), "email", "survey", "nps"),
    )
    d = decide(proposal(channel="sms"), opted_in(contacts=contacts), POLICY, NOW)
    assert (d.outcome, d.rule, d.hold_until) == ("drop", "budget", None)
    assert d.reasons[0] == (
        "blocked: 3 contacts in the last 7 days: email 11-20, sms 11-21, survey 11-22"
    )


def test_the_budget_skips_old_and_transactional_contacts() -> None:
    contacts = (
        Contact(NOW - timedelta(days=8), "email", "marketing", "old"),
        Contact(NOW - timedelta(days=2), "email", "transactional", "bill"),
        Contact(NOW - timedelta(days=2), "email", "transactional", "bill"),
        Contact(NOW - timedelta(days=1), "email", "marketing", "promo"),
        Contact(NOW - timedelta(hours=1), "web", "service", "chat"),
    )
    d = decide(proposal(), opted_in(contacts=contacts), POLICY, NOW)
    assert d.outcome == "send"
    assert "budget: 2 of 3 contacts in the last 7 days" in d.reasons


def test_a_full_budget_can_hold_until_a_slot_frees() -> None:
    policy = parse_policy("budget: {max: 2, per: 3d, when_full: hold}")
    first, second = NOW - timedelta(days=2), NOW - timedelta(hours=5)
    contacts = (Contact(first, "email", "marketing", "a"), Contact(second, "app", "service", "b"))
    d = decide(proposal(), opted_in(contacts=contacts), policy, NOW)
    assert (d.outcome, d.rule, d.hold_until) == ("hold", "budget", first + timedelta(days=3))
    assert d.reasons[0].startswith("blocked: 2 contacts in the last 3 days: email 11-21, app 11-23")


def test_channel_caps_count_one_channel() -> None:
    contacts = (
        Contact(NOW - timedelta(days=3), "sms", "service", "alert"),
        Contact(NOW - timedelta(days=1), "sms", "marketing", "promo"),
    )
    state = opted_in(contacts=contacts)
    policy = parse_policy("budget: {max: 5}\nchannel_caps: {sms: {max: 2, per: 7d}}")
    d = decide(proposal(channel="sms"), state, policy, NOW)
    assert (d.outcome, d.rule) == ("drop", "channel_cap")
    assert d.reasons[0] == "blocked: 2 sms contacts in the last 7 days: sms 11-20, sms 11-22"
    assert decide(proposal(channel="email"), state, policy, NOW).outcome == "send"


# Quiet hours, in the person's time zone, across daylight-saving changes


@pytest.mark.parametrize(
    ("zone", "when", "until"),
    [
        # 22:00 EST the evening before clocks spring forward: 08:00 is EDT (UTC-4).
        ("America/New_York", "2026-03-07T22:00:00-05:00", "2026-03-08T12:00:00Z"),
        # 22:00 EDT the evening before clocks fall back: 08:00 is EST (UTC-5).
        ("America/New_York", "2026-10-31T22:00:00-04:00", "2026-11-01T13:00:00Z"),
        # Early morning, after the change: the same day's 08:00.
        ("America/New_York", "2026-03-08T05:30:00-04:00", "2026-03-08T12:00:00Z"),
        # Berlin falls back on 2026-10-25: 23:00 CEST, then 08:00 CET (UTC+1).
        ("Europe/Berlin", "2026-10-24T23:00:00+02:00", "2026-10-25T07:00:00Z"),
        ("Europe/Berlin", "2026-03-28T21:30:00+01:00", "2026-03-29T06:00:00Z"),
    ],
)
def test_quiet_hours_hold_until_the_local_end_across_dst(zone: str, when: str, until: str) -> None:
    state = PersonState("p1", timezone=zone)
    d = decide(proposal("service", when=at(when)), state, POLICY, NOW)
    assert (d.outcome, d.rule) == ("hold", "quiet_hours")
    assert d.hold_until == at(until)
    assert d.reasons[0].endswith(f"held until 08:00 {at(until).astimezone(state_zone(zone)):%m-%d}")


def state_zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def test_a_quiet_end_inside_the_spring_forward_gap_moves_forward() -> None:
    policy = parse_policy("quiet_hours: {start: '22:00', end: '02:30'}")
    state = PersonState("p1", timezone="America/New_York")
    d = decide(proposal("service", when=at("2026-03-07T23:00:00-05:00")), state, policy, NOW)
    # 02:30 does not exist on 2026-03-08 in New York; the wall clock reads 03:30 EDT then.
    assert d.hold_until == at("2026-03-08T07:30:00Z")


def test_quiet_hours_can_drop_and_use_the_default_zone() -> None:
    late = at("2026-11-23T03:00:00Z")  # 22:00 in New York, 19:00 in Los Angeles
    unknown = PersonState("p1")
    d = decide(proposal("service", when=late, on_quiet_hours="drop"), unknown, POLICY, NOW)
    assert (d.outcome, d.rule, d.hold_until) == ("drop", "quiet_hours", None)
    assert d.reasons[0] == "quiet hours 21:00-08:00: 22:00 local (America/New_York)"
    west = parse_policy("default_timezone: America/Los_Angeles")
    assert decide(proposal("service", when=late), unknown, west, NOW).outcome == "send"
    la = PersonState("p1", timezone="America/Los_Angeles")
    assert decide(proposal("service", when=late), la, POLICY, NOW).outcome == "send"
    assert decide(proposal("service", when=late), la, parse_policy("quiet_hours: null"), NOW)


def test_a_hold_waits_for_the_persons_best_moment_when_known() -> None:
    # They open emails around 11:00 New York time.
    opens = tuple(
        Response(at(f"2026-11-{day:02d}T11:20:00-05:00"), "email", "Email Opened")
        for day in (2, 5, 9, 12, 16)
    )
    state = PersonState("p1", timezone="America/New_York", responses=opens)
    d = decide(proposal("service", when=at("2026-11-23T23:00:00-05:00")), state, POLICY, NOW)
    assert d.hold_until == at("2026-11-24T11:00:00-05:00")
    assert "their best moment after 08:00" in d.reasons[0]
    few = replace(state, responses=opens[:2])  # too few to know: the end of quiet hours
    d = decide(proposal("service", when=at("2026-11-23T23:00:00-05:00")), few, POLICY, NOW)
    assert d.hold_until == at("2026-11-24T08:00:00-05:00")


# Survey fatigue and suppressions


def test_survey_fatigue_needs_a_gap_since_the_last_invitation() -> None:
    state = PersonState("p1", last_survey_at=NOW - timedelta(days=3))
    d = decide(proposal("survey"), state, POLICY, NOW)
    assert (d.outcome, d.rule) == ("drop", "survey_fatigue")
    assert d.reasons[0] == (
        "blocked: last survey invitation 11-20 (3d ago); at least 7d between surveys"
    )
    assert decide(proposal("service"), state, POLICY, NOW).outcome == "send"
    recent = replace(state, last_survey_at=NOW - timedelta(hours=5, minutes=10))
    assert "(5h ago)" in decide(proposal("survey"), recent, POLICY, NOW).reasons[0]
    week_ago = replace(state, last_survey_at=NOW - timedelta(days=8))
    assert decide(proposal("survey"), week_ago, POLICY, NOW).outcome == "send"


def test_an_open_case_stops_marketing_only() -> None:
    state = opted_in(open_cases=1)
    d = decide(proposal(), state, POLICY, NOW)
    assert (d.outcome, d.rule) == ("drop", "open_case")
    assert d.reasons[0] == "suppressed: 1 open case; no marketing until resolved"
    assert decide(proposal("service"), state, POLICY, NOW).outcome == "send"
    assert decide(proposal("survey"), state, POLICY, NOW).outcome == "send"


@pytest.mark.parametrize(
    ("survey_type", "score", "suppressed"),
    [("nps", 6, True), ("nps", 7, False), ("csat", 2, True), ("csat", 4, False), ("ces", 1, False)],
)
def test_after_a_detractor_answer_only_service(
    survey_type: str, score: int, suppressed: bool
) -> None:
    state = opted_in(answers=(SurveyAnswer(NOW - timedelta(days=3), survey_type, score),))
    d = decide(proposal(), state, POLICY, NOW)
    assert (d.rule == "after_detractor") is suppressed
    assert decide(proposal("service"), state, POLICY, NOW).outcome == "send"
    if suppressed:
        assert d.reasons[0] == (
            "suppressed: detractor answer on 11-20; only service and transactional messages for 14d"
        )
        assert decide(proposal("survey"), state, POLICY, NOW).rule == "after_detractor"


def test_the_detractor_window_ends() -> None:
    old = opted_in(answers=(SurveyAnswer(NOW - timedelta(days=15), "nps", 0),))
    assert decide(proposal(), old, POLICY, NOW).outcome == "send"
    longer = parse_policy("after_detractor: {days: 30}")
    assert decide(proposal(), old, longer, NOW).rule == "after_detractor"
    # A state built without answers (synthetic) may still carry the date.
    bare = opted_in(last_detractor_at=NOW - timedelta(days=2))
    assert decide(proposal(), bare, POLICY, NOW).rule == "after_detractor"


# Rules together, and arbitration


def test_rules_apply_in_order_and_passed_checks_are_reasons() -> None:
    contacts = tuple(Contact(NOW - timedelta(days=1), "email", "marketing", "x") for _ in range(3))
    night = at("2026-11-23T23:00:00-05:00")
    # Budget full and quiet hours: dropped for the budget, not held for the night.
    d = decide(proposal(when=night), opted_in(contacts=contacts), POLICY, NOW)
    assert d.rule == "budget"
    assert d.reasons[1].startswith("consent: marketing on email granted 2026-06-01")
    d = decide(proposal(when=night), opted_in(contacts=contacts[:1]), POLICY, NOW)
    assert d.rule == "quiet_hours" and d.outcome == "hold"
    assert d.reasons[1:] == (
        "consent: marketing on email granted 2026-06-01 (crm)",
        "budget: 1 of 3 contacts in the last 7 days",
    )


def test_arbitration_gives_the_room_to_the_highest_priority() -> None:
    contacts = tuple(Contact(NOW - timedelta(days=1), "email", "marketing", "x") for _ in range(2))
    state = opted_in(contacts=contacts)
    low = proposal(action="upsell", priority=1, key="upsell")
    high = proposal("service", action="delivery-update", priority=5, key="delivery")
    other = proposal(action="newsletter", priority=1, key="news", channel="sms")
    decided = {d.proposal.key: d for d in arbitrate([low, other, high], state, POLICY, NOW)}
    assert decided["delivery"].outcome == "send"
    for key in ("upsell", "news"):
        assert (decided[key].outcome, decided[key].rule) == ("drop", "arbitration")
        assert (
            decided[key]
            .reasons[0]
            .startswith("arbitration: lost to delivery-update (priority 5); blocked: 3 contacts")
        )


def test_arbitration_is_not_blamed_for_a_budget_already_full() -> None:
    contacts = tuple(Contact(NOW - timedelta(days=1), "email", "marketing", "x") for _ in range(3))
    decided = arbitrate(
        [proposal("service", priority=2, key="a"), proposal(key="b")],
        opted_in(contacts=contacts),
        POLICY,
        NOW,
    )
    assert [d.rule for d in decided] == ["budget", "budget"]


def test_equal_priorities_go_first_come_first_served() -> None:
    state = opted_in(contacts=(Contact(NOW - timedelta(days=1), "email", "marketing", "x"),) * 2)
    later = proposal(key="later", when=NOW + timedelta(minutes=5))
    sooner = proposal(key="sooner")
    decided = arbitrate([later, sooner], state, POLICY, NOW)
    assert [(d.proposal.key, d.outcome) for d in decided] == [("sooner", "send"), ("later", "drop")]


# The YAML document


def test_policy_yaml_round_trips_and_errors_name_the_field() -> None:
    assert parse_policy(POLICY.to_yaml()) == POLICY
    unquoted = parse_policy("quiet_hours:\n  start: 21:30\n  end: 07:00\n")
    assert f"{unquoted.quiet_hours.start:%H:%M}" == "21:30"  # type: ignore[union-attr]
    for text, field in [
        ("budget: {max: -1}", "budget.max"),
        ("budget: {per: soon}", "per"),
        ("quiet_hours: {start: '08:00', end: '08:00'}", "quiet_hours"),
        ("default_timezone: Mars/Olympus", "default_timezone"),
        ("budgets: {max: 2}", "budgets"),
        ("channel_caps: {pigeon: {max: 1}}", "channel_caps"),
        ("consent: {defaults: {marketing: maybe}}", "consent.defaults.marketing"),
    ]:
        with pytest.raises(InvalidInput, match=field.replace(".", r"\.")):
            parse_policy(text)


def test_a_saved_policy_is_loaded_and_the_default_otherwise() -> None:
    with Store() as store:
        assert load_policy(store.con) == default_policy()
        saved = save_policy(store.con, "# stricter\nbudget: {max: 1}\n", by="ana@example.com")
        assert load_policy(store.con) == saved and saved.budget.max == 1
        with pytest.raises(InvalidInput):
            save_policy(store.con, "budget: {max: many}", by="ana@example.com")
        assert load_policy(store.con).budget.max == 1


def test_policy_is_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        POLICY.budget.max = 9  # type: ignore[misc]
    assert isinstance(POLICY, ContactPolicy)
