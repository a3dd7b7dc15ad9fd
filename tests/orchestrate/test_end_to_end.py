"""End to end: a burst of events for one customer becomes exactly the contacts the policy
allows, delivered to a real webhook receiver and SMTP server on loopback; the rest are
held or dropped with reasons, and the customer's timeline shows what was sent."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from opencx.ingest import Ingestor, SourceContext
from opencx.orchestrate.adapters import SmtpAdapter, WebhookAdapter
from opencx.orchestrate.decisions import decisions_of
from opencx.orchestrate.outbox import deliver_due
from opencx.orchestrate.policy import parse_policy
from opencx.orchestrate.triggers import run_triggers, save_trigger
from opencx.profiles import refresh_profiles, timeline
from tests.orchestrate.receivers import SECRET, WebhookReceiver, serve_smtp, serve_webhooks
from tests.voc.conftest import person

LATE = datetime(2026, 11, 19, 4, 0, tzinfo=UTC)  # 23:00 in New York, in quiet hours
POLICY = "budget: {max: 2, per: 7d}\nquiet_hours: {start: '21:00', end: '08:00'}\n"
TRIGGERS = (
    """
id: order-confirmation
when: {event: Order Completed}
action: {type: message, channel: email, purpose: transactional, priority: 50,
         subject: "Order $order_id", text: "Thanks $first_name, order $order_id is in."}
""",
    """
id: order-sms
when: {event: Order Completed}
action: {type: message, channel: sms, purpose: service, priority: 30, adapter: webhook,
         url: URL, text: "Order $order_id is being prepared."}
""",
    """
id: accessories-promo
when: {event: Order Completed}
action: {type: message, channel: email, purpose: marketing, priority: 10, quiet_hours: drop,
         subject: Cases for your phone, text: "20% off cases this week."}
""",
)


def test_a_burst_gets_exactly_what_the_policy_allows(ingestor: Ingestor) -> None:
    con = ingestor.store.cursor()
    jane = person(ingestor, "jane", first_name="Jane", phone="+1 415 555 0100")
    ingestor.ingest(
        [{"type": "track", "userId": "jane", "event": "Consent Updated",
          "timestamp": (LATE - timedelta(days=30)).isoformat(),
          "properties": {"channel": "email", "purpose": "marketing", "granted": True}}],
        SourceContext("web", "web"),
    )  # fmt: skip
    refresh_profiles(con)
    with serve_webhooks(WebhookReceiver()) as gateway, serve_smtp() as smtp:
        for text in TRIGGERS:
            save_trigger(con, text.replace("URL", gateway.url))
        ingestor.ingest(
            [{"type": "track", "userId": "jane", "event": "Order Completed",
              "timestamp": (LATE + timedelta(seconds=i)).isoformat(),
              "properties": {"order_id": f"N-{i}"},
              "context": {"timezone": "America/New_York"}} for i in range(3)],
            SourceContext("web", "web"),
        )  # fmt: skip
        adapters = {
            "email": SmtpAdapter(smtp.settings), "webhook": WebhookAdapter(SECRET),
        }  # fmt: skip
        policy = parse_policy(POLICY)

        night = run_triggers(ingestor, policy, now=LATE + timedelta(minutes=1))
        by = Counter((d.proposal.trigger, d.outcome) for d in night.decisions)
        assert by == {
            ("order-confirmation", "send"): 3,  # transactional: no caps, no quiet hours
            ("order-sms", "hold"): 3,  # quiet hours: until 08:00 in New York
            ("accessories-promo", "drop"): 3,  # quiet hours, and it asked to be dropped
        }
        deliver_due(ingestor, adapters, LATE + timedelta(minutes=2))
        assert sorted(m["Subject"] for m in smtp.sink.messages) == [
            "Order N-0", "Order N-1", "Order N-2",
        ]  # fmt: skip
        assert gateway.requests == []

        morning = datetime(2026, 11, 19, 13, 5, tzinfo=UTC)  # 08:05 in New York
        released = run_triggers(ingestor, policy, now=morning)
        assert Counter(d.outcome for d in released.decisions) == {"send": 2, "drop": 1}
        [lost] = [d for d in released.decisions if d.outcome == "drop"]
        assert lost.rule in ("arbitration", "budget")
        assert "2 contacts in the last 7 days" in " ".join(lost.reasons)
        deliver_due(ingestor, adapters, morning + timedelta(minutes=1))
        assert len(gateway.requests) == 2
        assert all(r.verified for r in gateway.requests)
        assert len(set(gateway.processed)) == 2  # two idempotency keys, each once
        assert {r.body["payload"]["to"] for r in gateway.requests} == {"+14155550100"}

        nothing_more = run_triggers(ingestor, policy, now=morning + timedelta(hours=1))
        assert nothing_more.decisions == []

    reasons = {d.proposal.trigger: d.reasons for d in decisions_of(con, jane, limit=50)}
    assert any("quiet hours" in r for r in reasons["accessories-promo"])
    sent = [e for e in timeline(con, jane, limit=100) if e.event == "Message Sent"]
    assert Counter(e.channel for e in sent) == {"email": 3, "sms": 2}
    assert all((e.properties or {}).get("decision_id") for e in sent)
