"""Next best action: relevant actions ranked for one person now, each with its reasons."""

from __future__ import annotations

import doctest
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from opencx.config import load_settings
from opencx.demo import load_demo
from opencx.errors import InvalidInput, NotFound
from opencx.ingest import Ingestor, SourceContext
from opencx.orchestrate.actions import ActionCatalogue, parse_actions, save_actions
from opencx.orchestrate.nba import Recommendation, next_best_actions, person_signals
from opencx.profiles import find_profiles
from opencx.store import Store
from opencx.voc import open_case, update_case

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
APP = SourceContext("app", "app")
PHONE = SourceContext("calls", "phone")
WEB = SourceContext("web", "web")
_ids = itertools.count(1)


def northwind() -> ActionCatalogue:
    return parse_actions(
        resources.files("opencx.demo").joinpath("northwind_actions.yaml").read_text()
    )


def customer(ingestor: Ingestor, user_id: str, **traits: str) -> str:
    """A known customer (identified on the web a month ago); returns their profile id."""
    ingestor.ingest(
        [{"type": "identify", "userId": user_id, "messageId": f"id-{user_id}",
          "timestamp": (NOW - timedelta(days=40)).isoformat(),
          "traits": {"first_name": "Jane", "email": f"{user_id}@example.com", **traits}}],
        WEB,
    )  # fmt: skip
    [found] = find_profiles(ingestor.store.con, f"user_id:{user_id}")
    return found


def track(
    ingestor: Ingestor,
    user_id: str,
    event: str,
    at: datetime,
    source: SourceContext = APP,
    **properties: Any,
) -> None:
    ingestor.ingest(
        [{"type": "track", "event": event, "userId": user_id, "messageId": f"t-{next(_ids)}",
          "timestamp": at.isoformat(), "properties": properties}],
        source,
    )  # fmt: skip


def failed_reset(ingestor: Ingestor, user_id: str, at: datetime) -> None:
    track(ingestor, user_id, "Password Reset Started", at - timedelta(minutes=3), method="sms")
    track(ingestor, user_id, "Password Reset Failed", at, error="sms_code_not_received")


def by_id(recs: list[Recommendation]) -> dict[str, Recommendation]:
    return {r.action: r for r in recs}


class Policy:
    """A contact-policy hook that records its calls and answers as told."""

    def __init__(self, allowed: bool = True, reasons: tuple[str, ...] = ()) -> None:
        self.allowed, self.reasons = allowed, reasons
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, person_id: str, channel: str, purpose: str) -> tuple[bool, tuple[str, ...]]:
        self.calls.append((person_id, channel, purpose))
        return self.allowed, self.reasons


def test_an_app_reset_that_failed_yesterday_puts_the_apology_first(ingestor: Ingestor) -> None:
    jane = customer(ingestor, "u-1", plan="Plus 20GB")
    failed_reset(ingestor, "u-1", NOW - timedelta(days=1))
    policy = Policy(True, ("sms: 0 of 3 contacts in 7 days",))
    recs = next_best_actions(
        ingestor.store.con, jane, channel="phone", now=NOW, catalogue=northwind(), check=policy
    )
    first = recs[0]
    assert first.action == "reset-apology-sms-link" and first.allowed and first.channel == "phone"
    assert first.title == "Apologise for the failed password reset and send a new link by SMS"
    assert first.script.startswith("Apologise to Jane: the password reset in our app failed")
    assert "yesterday at 12:00 UTC" in first.script
    assert first.reasons[0] == (
        "Password Reset Failed on app yesterday at 12:00 UTC, no password reset completed since"
    )
    assert "sms: 0 of 3 contacts in 7 days" in first.reasons
    # The SMS it sends is what the policy was asked about; nothing else contacts her.
    assert policy.calls == [(jane, "sms", "service")]
    upgrade = by_id(recs)["unlimited-upgrade"]
    assert not upgrade.allowed and recs[-1] == upgrade
    assert upgrade.blocked_by == (
        "do not offer the upgrade: Password Reset Failed on app yesterday at 12:00 UTC",
    )


def test_a_reset_completed_since_needs_no_apology(ingestor: Ingestor) -> None:
    jane = customer(ingestor, "u-1", plan="Unlimited")
    failed_reset(ingestor, "u-1", NOW - timedelta(days=1))
    track(ingestor, "u-1", "Password Reset Completed", NOW - timedelta(hours=20), source=WEB)
    recs = next_best_actions(
        ingestor.store.con, jane, channel="phone", now=NOW, catalogue=northwind()
    )
    assert not {"reset-apology-sms-link", "reset-with-agent"} & set(by_id(recs))


def test_fresher_and_repeated_failures_say_so_and_score_higher(ingestor: Ingestor) -> None:
    jane = customer(ingestor, "u-1")
    sam = customer(ingestor, "u-2")
    failed_reset(ingestor, "u-1", NOW - timedelta(days=6))
    failed_reset(ingestor, "u-1", NOW - timedelta(hours=1))
    failed_reset(ingestor, "u-2", NOW - timedelta(days=6))
    con, catalogue = ingestor.store.con, northwind()
    fresh = next_best_actions(con, jane, channel="app", now=NOW, catalogue=catalogue)[0]
    stale = next_best_actions(con, sam, channel="app", now=NOW, catalogue=catalogue)[0]
    assert fresh.action == stale.action == "reset-help-banner"
    assert fresh.reasons[0].startswith(
        "Password Reset Failed on app today at 11:00 UTC (2 times in 7 days)"
    )
    assert stale.reasons[0].startswith("Password Reset Failed on app 6 days ago,")
    assert 90 <= stale.score < fresh.score <= 100


def test_the_policy_can_block_the_sms_and_the_agent_gets_the_next_best(
    ingestor: Ingestor,
) -> None:
    jane = customer(ingestor, "u-1", plan="Unlimited")
    failed_reset(ingestor, "u-1", NOW - timedelta(hours=5))
    policy = Policy(False, ("sms consent withdrawn on 11-02",))
    recs = next_best_actions(
        ingestor.store.con, jane, channel="phone", now=NOW, catalogue=northwind(), check=policy
    )
    assert [(r.action, r.allowed) for r in recs] == [
        ("reset-with-agent", True),
        ("reset-apology-sms-link", False),
    ]
    assert recs[1].blocked_by == ("contact policy: sms consent withdrawn on 11-02",)
    assert recs[1].score > recs[0].score  # it would have won: blocked ones come after


def test_no_upgrade_offer_while_a_complaint_is_open(ingestor: Ingestor) -> None:
    jane = customer(ingestor, "u-1", plan="Basic 5GB")
    sam = customer(ingestor, "u-2", plan="Basic 5GB")
    case = open_case(
        ingestor,
        person_id=jane,
        source_message_id="answer-1",
        properties={"survey_type": "nps", "score": 3, "touchpoint": "relationship"},
        now=NOW - timedelta(days=2),
    )
    assert case is not None
    con, catalogue = ingestor.store.con, northwind()
    recs = next_best_actions(con, jane, channel="phone", now=NOW, catalogue=catalogue)
    assert [(r.action, r.allowed) for r in recs] == [
        ("acknowledge-open-case", True),
        ("unlimited-upgrade", False),
    ]
    assert recs[0].script.startswith("Jane has a case open since 11-18 (NPS 3 (≤ 6))")
    assert recs[1].blocked_by == (
        "do not offer the upgrade: open case since 11-18 (NPS 3 (≤ 6) at relationship, "
        "high priority)",
    )
    assert recs[1].script.startswith("Jane is on Basic 5GB. Offer Unlimited")
    # Someone on the same plan without a case is offered it, and so is Jane once resolved.
    assert by_id(next_best_actions(con, sam, channel="phone", now=NOW, catalogue=catalogue))[
        "unlimited-upgrade"
    ].allowed
    update_case(ingestor, case.id, by="agent", status="resolved", root_cause="billing", now=NOW)
    later = NOW + timedelta(days=20)
    assert by_id(next_best_actions(con, jane, channel="phone", now=later, catalogue=catalogue))[
        "unlimited-upgrade"
    ].allowed


def test_a_recent_detractor_answer_suppresses_and_calls_for_recovery(
    ingestor: Ingestor,
) -> None:
    jane = customer(ingestor, "u-1", plan="Plus 20GB")
    track(ingestor, "u-1", "Survey Responded", NOW - timedelta(days=5), source=WEB,
          survey_id="nps-relationship", survey_type="nps", score=4)  # fmt: skip
    con, catalogue = ingestor.store.con, northwind()
    recs = by_id(next_best_actions(con, jane, channel="phone", now=NOW, catalogue=catalogue))
    assert recs["detractor-recovery"].allowed
    assert recs["detractor-recovery"].reasons == ("answered NPS 4 5 days ago",)
    assert "answered NPS 4 on 11-15" in recs["detractor-recovery"].script
    assert recs["unlimited-upgrade"].blocked_by == (
        "do not offer the upgrade: answered NPS 4 5 days ago",
    )
    # Fifteen days on the 14-day suppression is over; after 30 the recovery call is too.
    recs = by_id(
        next_best_actions(
            con, jane, channel="phone", now=NOW + timedelta(days=10), catalogue=catalogue
        )
    )
    assert recs["unlimited-upgrade"].allowed and "detractor-recovery" in recs
    recs = by_id(
        next_best_actions(
            con, jane, channel="phone", now=NOW + timedelta(days=26), catalogue=catalogue
        )
    )
    assert "detractor-recovery" not in recs


AUDIENCE = """
actions:
  - id: vip-thanks
    title: Thank them for ten years
    kind: info
    channels: [phone, web]
    purpose: service
    script: "Thank {first_name} for ten years with us."
    audience: ten-years
    value: 40
  - id: everyone
    title: Say hello
    kind: info
    channels: [web]
    purpose: service
    script: "Hello {first_name}"
    value: 10
"""


def test_an_audience_is_a_saved_segment(ingestor: Ingestor) -> None:
    jane = customer(ingestor, "u-1")
    sam = customer(ingestor, "u-2")
    con, catalogue = ingestor.store.con, parse_actions(AUDIENCE)
    con.execute("INSERT INTO segment_members VALUES ('ten-years', ?, ?)", [jane, NOW])
    jane_recs = next_best_actions(con, jane, channel="web", now=NOW, catalogue=catalogue)
    assert [r.action for r in jane_recs] == ["vip-thanks", "everyone"]
    assert jane_recs[0].reasons == ("no condition: fits everyone", "in segment 'ten-years'")
    assert [r.action for r in next_best_actions(con, sam, channel="web", now=NOW,
                                                catalogue=catalogue)] == ["everyone"]  # fmt: skip


def test_channel_filtering(ingestor: Ingestor) -> None:
    jane = customer(ingestor, "u-1", plan="Plus 20GB")
    failed_reset(ingestor, "u-1", NOW - timedelta(hours=2))
    con, catalogue = ingestor.store.con, northwind()
    on_app = next_best_actions(con, jane, channel="app", now=NOW, catalogue=catalogue)
    assert on_app[0].action == "reset-help-banner" and on_app[0].channel == "app"
    assert all("app" in catalogue.action(r.action).channels for r in on_app)
    on_sms = next_best_actions(con, jane, channel="sms", now=NOW, catalogue=catalogue)
    assert [r.action for r in on_sms] == ["reset-link-sms"]
    assert on_sms[0].reasons[-1] == "contact policy not checked for sms"
    everywhere = next_best_actions(con, jane, channel=None, now=NOW, catalogue=catalogue, limit=9)
    assert {r.action for r in everywhere} >= {r.action for r in on_app + on_sms}
    assert len(next_best_actions(con, jane, channel=None, now=NOW, catalogue=catalogue,
                                 limit=2)) == 2  # fmt: skip
    with pytest.raises(InvalidInput, match="channel must be one of"):
        next_best_actions(con, jane, channel="fax", now=NOW, catalogue=catalogue)
    with pytest.raises(InvalidInput, match="limit"):
        next_best_actions(con, jane, channel="app", now=NOW, catalogue=catalogue, limit=0)


COMPUTED = """
failure_touchpoints: ["checkout_abandoned@*"]
actions:
  - id: effort-callback
    title: Call back the people who work hardest
    kind: service
    channels: [phone]
    purpose: service
    script: "{first_name} hopped channels {effort_channel_hops_90d} times; call back."
    when: [{computed: effort_channel_hops_90d, min: 2}]
  - id: basket-rescue
    title: Rescue the abandoned basket
    kind: offer
    channels: [phone]
    purpose: marketing
    script: "{failure} {failure_when}"
    when: [{failed: "checkout_*@web", within: 2d}]
"""


def test_computed_traits_and_flagged_failures(ingestor: Ingestor) -> None:
    jane = customer(ingestor, "u-1")
    con, catalogue = ingestor.store.con, parse_actions(COMPUTED)
    con.execute(
        "INSERT INTO computed_traits VALUES (?, 'effort_channel_hops_90d', '3', ?)", [jane, NOW]
    )
    track(ingestor, "u-1", "Checkout Abandoned", NOW - timedelta(hours=3), source=WEB)
    recs = by_id(next_best_actions(con, jane, channel="phone", now=NOW, catalogue=catalogue))
    assert recs["effort-callback"].script == "Jane hopped channels 3 times; call back."
    assert recs["effort-callback"].reasons == ("computed trait effort_channel_hops_90d is 3",)
    assert recs["basket-rescue"].script == "Checkout Abandoned on web today at 09:00 UTC"
    con.execute("UPDATE computed_traits SET value = '1' WHERE person_id = ?", [jane])
    recs = by_id(next_best_actions(con, jane, channel="phone", now=NOW, catalogue=catalogue))
    assert "effort-callback" not in recs


def test_signals_follow_merges_and_stop_at_now(ingestor: Ingestor) -> None:
    ingestor.ingest(
        [{"type": "track", "event": "Password Reset Failed", "anonymousId": "device-1",
          "messageId": "anon-1", "timestamp": (NOW - timedelta(days=3)).isoformat()}],
        APP,
    )  # fmt: skip
    [anonymous] = find_profiles(ingestor.store.con, "anonymous_id:device-1")
    jane = customer(ingestor, "u-1")
    ingestor.ingest(
        [{"type": "identify", "userId": "u-1", "anonymousId": "device-1", "messageId": "link-1",
          "timestamp": (NOW - timedelta(days=2)).isoformat()}],
        APP,
    )  # fmt: skip
    track(ingestor, "u-1", "Bill Viewed", NOW + timedelta(hours=1))
    con = ingestor.store.con
    signals = person_signals(con, anonymous, NOW)
    [survivor] = find_profiles(con, "user_id:u-1")
    assert signals.person_id == survivor and {anonymous, jane} >= {survivor}
    assert [(e.event, e.failed) for e in signals.events] == [("Password Reset Failed", True)]
    assert signals.events[0].touchpoint == "password_reset_failed@app"
    assert signals.traits["first_name"] == "Jane"
    later = person_signals(con, jane, NOW + timedelta(hours=2))
    assert [e.event for e in later.events] == ["Bill Viewed", "Password Reset Failed"]
    with pytest.raises(NotFound):
        person_signals(con, "p_nobody", NOW)


@pytest.fixture(scope="module")
def brand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A small Northwind Mobile, its action catalogue saved as a CX team would."""
    db: Path = tmp_path_factory.mktemp("brand") / "brand.duckdb"
    settings = load_settings(db=db, profiles_refresh_s=0)
    with Store(db) as store:
        load_demo(store, settings, customers=120, seed=5)
        text = resources.files("opencx.demo").joinpath("northwind_actions.yaml").read_text()
        save_actions(store.con, text, by="test")
        yield store


def test_the_sample_brand_gets_sensible_answers(brand: Store) -> None:
    con = brand.con
    # The people whose last app reset failed and who did not get in since.
    stuck = con.execute(
        "SELECT person_id, max(timestamp) FILTER (event = 'Password Reset Failed' "
        "AND channel = 'app') AS failed_at FROM analytics_events "
        "WHERE event IN ('Password Reset Failed', 'Password Reset Completed') "
        "GROUP BY person_id HAVING failed_at > coalesce(max(timestamp) FILTER "
        "(event = 'Password Reset Completed'), '1970-01-01'::TIMESTAMPTZ) "
        "ORDER BY person_id LIMIT 5"
    ).fetchall()
    assert stuck
    for person, failed_at in stuck:
        recs = next_best_actions(con, person, channel="phone", now=failed_at + timedelta(hours=20))
        assert recs[0].action == "reset-apology-sms-link", (person, recs)
        assert "[first_name]" not in recs[0].script and "{" not in recs[0].script
    # Every known customer gets answers that explain themselves, on every channel.
    people = [p for (p,) in con.execute(
        "SELECT profile_id FROM profiles WHERE len(channels) >= 3 ORDER BY profile_id"
    ).fetchall()]  # fmt: skip
    end = con.execute("SELECT max(timestamp) FROM events").fetchall()[0][0]
    seen: set[str] = set()
    for person, channel in zip(
        people, itertools.cycle(("phone", "app", "web", "sms")), strict=False
    ):
        for rec in next_best_actions(con, person, channel=channel, now=end):
            seen.add(rec.action)
            assert rec.reasons and all(rec.reasons)
            assert rec.allowed == (not rec.blocked_by)
            assert "{" not in rec.script and "[" not in rec.script
    assert len(seen) >= 3


def test_docstring_examples() -> None:
    from opencx.orchestrate import nba

    result = doctest.testmod(nba)
    assert result.attempted and not result.failed
