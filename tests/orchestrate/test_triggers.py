"""Triggers: what fires, when, for whom, and what each action leaves behind."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from opencx.errors import InvalidInput
from opencx.ingest import Ingestor, SourceContext
from opencx.orchestrate.adapters import LogAdapter
from opencx.orchestrate.outbox import deliver_due
from opencx.orchestrate.policy import default_policy, parse_policy
from opencx.orchestrate.state import person_state
from opencx.orchestrate.triggers import parse_trigger, render, run_triggers, save_trigger
from opencx.profiles import get_profile, refresh_profiles
from opencx.voc import save_survey
from tests.voc.conftest import CES_AFTER_CALL, person

T0 = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York
_ids = itertools.count(1)

DELIVERY = """
id: delivery-update
name: Delivery update after a web order
when: {event: Order Completed, channel: web}
action:
  type: message
  channel: email
  purpose: transactional
  subject: Your order $order_id
  text: "Hi $first_name, order $order_id ships today."
"""


def track(ingestor: Ingestor, user: str, event: str, at: datetime, channel: str = "web",
          **properties: Any) -> str:  # fmt: skip
    message_id = f"ev-{next(_ids)}"
    ingestor.ingest(
        [{"type": "track", "userId": user, "event": event, "messageId": message_id,
          "timestamp": at.isoformat(), "properties": properties,
          "context": {"timezone": "America/New_York"}}],
        SourceContext(channel, channel),
    )  # fmt: skip
    return message_id


def outbox(ingestor: Ingestor) -> list[tuple[Any, ...]]:
    return (
        ingestor.store.cursor()
        .execute(
            "SELECT person_id, action, channel, adapter, destination, payload, idempotency_key "
            "FROM outbox ORDER BY created_at, id"
        )
        .fetchall()
    )


@pytest.fixture
def jane(ingestor: Ingestor) -> str:
    found = person(ingestor, "jane", first_name="Jane")
    refresh_profiles(ingestor.store.cursor())
    return found


def test_errors_name_the_field() -> None:
    with pytest.raises(InvalidInput, match="exactly one of `when`"):
        parse_trigger("id: x\naction: {type: task, title: Call}")
    with pytest.raises(InvalidInput, match=r"action: .*needs text"):
        parse_trigger("id: x\nwhen: {event: A}\naction: {type: message}")
    with pytest.raises(InvalidInput, match="unknown channel 'fax'"):
        parse_trigger("id: x\nwhen: {event: A, channel: fax}\naction: {type: task, title: T}")
    with pytest.raises(InvalidInput, match="needs an audience"):
        parse_trigger("id: x\nschedule: {at: '10:00'}\naction: {type: task, title: T}")
    with pytest.raises(InvalidInput, match="delay"):
        parse_trigger("id: x\nwhen: {event: A, delay: soon}\naction: {type: task, title: T}")


def test_placeholders_fill_text_and_never_run_code() -> None:
    assert render("Hi $first_name, ${order_id}!", {"first_name": "Jane"}) == "Hi Jane, !"
    assert render("${__class__} {0.__dict__} $x", {"x": "{x}"}) == " {0.__dict__} {x}"


def test_an_event_sends_the_message_once_through_the_policy(ingestor: Ingestor, jane: str) -> None:
    con = ingestor.store.cursor()
    track(ingestor, "jane", "Order Completed", T0 - timedelta(hours=1), order_id="A-0")
    save_trigger(con, DELIVERY)  # starts from now: the earlier order is history
    track(ingestor, "jane", "Order Completed", T0, order_id="A-1")
    track(ingestor, "jane", "Order Completed", T0, channel="store", order_id="S-1")

    run = run_triggers(ingestor, default_policy(), now=T0 + timedelta(minutes=1))
    assert run.matched["delivery-update"] == 1
    assert run.outcomes["send"] == 1
    [(who, action, channel, adapter, to, payload, _key)] = outbox(ingestor)
    assert (who, action, channel, adapter, to) == (jane, "delivery-update", "email", "email",
                                                   "jane@example.com")  # fmt: skip
    body = orjson.loads(payload)
    assert body["subject"] == "Your order A-1"
    assert body["text"] == "Hi Jane, order A-1 ships today."

    again = run_triggers(ingestor, default_policy(), now=T0 + timedelta(minutes=2))
    assert again.matched["delivery-update"] == 0
    assert len(outbox(ingestor)) == 1


def test_a_delay_waits_and_old_events_are_not_acted_on(ingestor: Ingestor, jane: str) -> None:
    con = ingestor.store.cursor()
    save_trigger(con, DELIVERY.replace("channel: web}", "channel: web, delay: 3d}"))
    track(ingestor, "jane", "Order Completed", T0 - timedelta(days=30), order_id="OLD")
    track(ingestor, "jane", "Order Completed", T0, order_id="A-2")
    assert run_triggers(ingestor, default_policy(), now=T0 + timedelta(days=1)).matched == {
        "delivery-update": 0
    }
    run = run_triggers(ingestor, default_policy(), now=T0 + timedelta(days=3, minutes=1))
    assert run.matched["delivery-update"] == 1
    [row] = outbox(ingestor)
    assert "A-2" in orjson.loads(row[5])["text"]


def test_property_filter_and_audience(ingestor: Ingestor, jane: str) -> None:
    con = ingestor.store.cursor()
    bob = person(ingestor, "bob")
    refresh_profiles(con)
    save_trigger(
        con,
        DELIVERY.replace("channel: web}", "channel: web, where: {plan: gold}}") + "audience: vip\n",
    )
    con.execute("INSERT INTO segment_members VALUES ('vip', ?, ?)", [jane, T0])
    track(ingestor, "jane", "Order Completed", T0, plan="gold", order_id="J")
    track(ingestor, "jane", "Order Completed", T0, plan="silver", order_id="J2")
    track(ingestor, "bob", "Order Completed", T0, plan="gold", order_id="B")
    run = run_triggers(ingestor, default_policy(), now=T0 + timedelta(minutes=1))
    assert run.matched["delivery-update"] == 1
    assert [r[0] for r in outbox(ingestor)] == [jane]
    assert bob != jane


def test_a_channel_hop_creates_one_agent_task(ingestor: Ingestor, jane: str) -> None:
    con = ingestor.store.cursor()
    save_trigger(
        con,
        """
id: hop-task
name: Customer gave up on the app and called
when:
  event: Call Started
  channel: phone
  after: {channel: app, within: 48h}
action: {type: task, title: "Call back $first_name about the app", text: "They tried the app first"}
""",
    )
    person(ingestor, "bob")
    track(ingestor, "jane", "Password Reset Failed", T0 - timedelta(hours=5), channel="app")
    track(ingestor, "jane", "Call Started", T0, channel="phone")
    track(ingestor, "bob", "Call Started", T0, channel="phone")
    run = run_triggers(ingestor, default_policy(), now=T0 + timedelta(minutes=1))
    assert run.done["task"] == 1
    tasks = con.execute("SELECT person_id, title, body, status FROM agent_tasks").fetchall()
    assert tasks == [(jane, "Call back Jane about the app", "They tried the app first", "open")]
    run_triggers(ingestor, default_policy(), now=T0 + timedelta(minutes=2))
    assert con.execute("SELECT count(*) FROM agent_tasks").fetchall() == [(1,)]


def test_a_trait_action_updates_the_profile(ingestor: Ingestor, jane: str) -> None:
    con = ingestor.store.cursor()
    save_trigger(
        con,
        "id: mark-buyer\nwhen: {event: Order Completed}\n"
        "action: {type: trait, traits: {has_ordered: true}}\n",
    )
    track(ingestor, "jane", "Order Completed", T0)
    run_triggers(ingestor, default_policy(), now=T0 + timedelta(minutes=1))
    assert get_profile(con, jane).traits["has_ordered"] is True


def test_a_survey_action_invites_and_queues_the_link(ingestor: Ingestor, jane: str) -> None:
    con = ingestor.store.cursor()
    save_survey(con, CES_AFTER_CALL)
    save_trigger(
        con,
        "id: ces-after-call\nwhen: {event: Call Ended, channel: phone, delay: 1h}\n"
        "action: {type: survey, survey: ces-contact, channel: email, purpose: survey,"
        " text: 'How easy was it? $link'}\n",
    )
    track(ingestor, "jane", "Call Ended", T0, channel="phone")
    run = run_triggers(
        ingestor, default_policy(), now=T0 + timedelta(hours=2), base_url="https://cx.example/"
    )
    assert run.outcomes["send"] == 1
    [row] = outbox(ingestor)
    payload = orjson.loads(row[5])
    assert payload["survey_id"] == "ces-contact"
    assert payload["link"].startswith("https://cx.example/s/")
    assert payload["text"] == f"How easy was it? {payload['link']}"
    invited = con.execute(
        "SELECT count(*) FROM analytics_events WHERE event = 'Survey Invited' AND person_id = ?",
        [jane],
    ).fetchall()
    assert invited == [(1,)]
    assert con.execute("SELECT count(*) FROM survey_invitations").fetchall() == [(1,)]


def test_a_schedule_fires_once_a_day_at_local_time(ingestor: Ingestor, jane: str) -> None:
    con = ingestor.store.cursor()
    track(ingestor, "jane", "Application Opened", T0 - timedelta(days=1), channel="app")
    con.execute("INSERT INTO segment_members VALUES ('at-risk', ?, ?)", [jane, T0])
    save_trigger(
        con,
        "id: daily-task\nschedule: {every: day, at: '10:00'}\naudience: at-risk\n"
        "action: {type: task, title: Check in}\n",
    )
    early = datetime(2026, 11, 18, 14, 30, tzinfo=UTC)  # 09:30 in New York
    assert run_triggers(ingestor, default_policy(), now=early).done["task"] == 0
    assert (
        run_triggers(ingestor, default_policy(), now=early + timedelta(hours=1)).done["task"] == 1
    )
    assert (
        run_triggers(ingestor, default_policy(), now=early + timedelta(hours=5)).done["task"] == 0
    )
    next_day = early + timedelta(days=1, hours=1)
    assert run_triggers(ingestor, default_policy(), now=next_day).done["task"] == 1


def _message_trigger(trigger_id: str, priority: int) -> str:
    return (
        f"id: {trigger_id}\nwhen: {{event: Order Completed}}\n"
        f"action: {{type: message, channel: sms, purpose: service, priority: {priority},"
        f" text: 'from {trigger_id}'}}\n"
    )


def test_competing_triggers_share_one_budget(ingestor: Ingestor, jane: str) -> None:
    con = ingestor.store.cursor()
    save_trigger(con, _message_trigger("low", 1))
    save_trigger(con, _message_trigger("high", 9))
    track(ingestor, "jane", "Order Completed", T0)
    policy = parse_policy("budget: {max: 1, per: 7d}")
    run = run_triggers(ingestor, policy, now=T0 + timedelta(minutes=1))
    by_trigger = {d.proposal.trigger: d for d in run.decisions}
    assert by_trigger["high"].outcome == "send"
    assert by_trigger["low"].outcome == "drop"
    assert by_trigger["low"].rule == "arbitration"
    assert [orjson.loads(r[5])["text"] for r in outbox(ingestor)] == ["from high"]


def test_quiet_hours_hold_then_release(ingestor: Ingestor, jane: str) -> None:
    con = ingestor.store.cursor()
    save_trigger(con, _message_trigger("late", 1))
    late = datetime(2026, 11, 19, 4, 0, tzinfo=UTC)  # 23:00 in New York
    track(ingestor, "jane", "Order Completed", late)
    run = run_triggers(ingestor, default_policy(), now=late + timedelta(minutes=1))
    [held] = run.decisions
    assert held.outcome == "hold"
    assert held.hold_until is not None and held.hold_until.astimezone(UTC).hour == 13  # 08:00
    assert outbox(ingestor) == []
    morning = held.hold_until + timedelta(minutes=5)
    released = run_triggers(ingestor, default_policy(), now=morning)
    assert released.matched["released"] == 1
    assert [d.outcome for d in released.decisions] == ["send"]
    assert len(outbox(ingestor)) == 1
    assert (
        run_triggers(ingestor, default_policy(), now=morning + timedelta(hours=1)).decisions == []
    )


def test_a_webhook_to_another_system_is_not_a_contact(ingestor: Ingestor, jane: str) -> None:
    con = ingestor.store.cursor()
    save_trigger(
        con,
        "id: crm\nwhen: {event: Order Completed}\n"
        "action: {type: webhook, url: 'https://crm.example/hooks', text: 'order $order_id'}\n",
    )
    track(ingestor, "jane", "Order Completed", T0, order_id="W-1")
    run = run_triggers(ingestor, default_policy(), now=T0 + timedelta(minutes=1))
    assert run.done["webhook"] == 1 and run.decisions == []
    [row] = outbox(ingestor)
    assert row[3:5] == ("webhook", "https://crm.example/hooks")
    delivered = deliver_due(ingestor, {"webhook": LogAdapter()}, T0 + timedelta(minutes=2))
    assert delivered.delivered == 1
    events = con.execute(
        "SELECT event FROM analytics_events WHERE person_id = ? AND event LIKE '%Delivered'",
        [jane],
    ).fetchall()
    assert events == [("Webhook Delivered",)]
    assert person_state(con, jane, T0 + timedelta(minutes=3)).contacts == ()
