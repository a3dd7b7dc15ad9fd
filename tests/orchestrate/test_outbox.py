"""The outbox: idempotent enqueue, retries with backoff, dead letters, the timeline, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from opencx.config import load_settings
from opencx.errors import Conflict, InvalidInput, NotFound
from opencx.ingest import Ingestor
from opencx.orchestrate.adapters import (
    DeliveryError,
    LogAdapter,
    WebhookAdapter,
    adapters_from_settings,
)
from opencx.orchestrate.outbox import (
    DeliveryReport,
    OutboxItem,
    backoff_delay,
    deliver_due,
    due,
    enqueue,
    list_outbox,
    outbox_counts,
    outbox_of,
    release_leases,
    retry,
)
from opencx.store import Store
from tests.conftest import ROOT
from tests.orchestrate.receivers import SECRET, WebhookReceiver, serve_smtp, serve_webhooks
from tests.voc.conftest import person

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def queue(ingestor: Ingestor, person_id: str, key: str, **fields: Any) -> OutboxItem:
    values: dict[str, Any] = {
        "idempotency_key": key, "person_id": person_id, "action": "delivery-update",
        "channel": "email", "purpose": "service", "adapter": "webhook",
        "destination": None, "payload": {"order": "A-17"}, "at": NOW, "decision_id": f"d-{key}",
    }  # fmt: skip
    values.update(fields)
    return enqueue(ingestor.store.cursor(), **values)


def timeline_events(ingestor: Ingestor, person_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    rows = (
        ingestor.store.cursor()
        .execute(
            "SELECT event, message_id, properties FROM analytics_events WHERE person_id = ? "
            "AND event IN ('Message Sent', 'Message Failed') ORDER BY seq",
            [person_id],
        )
        .fetchall()
    )
    return [(event, message_id, orjson.loads(props)) for event, message_id, props in rows]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with serve_webhooks(WebhookReceiver()) as r:
        yield r


def webhooks() -> dict[str, Any]:
    return {"webhook": WebhookAdapter(SECRET)}


class FlakyAdapter:
    """Fails with the scripted errors in order, then succeeds."""

    name = "flaky"

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.sent: list[OutboxItem] = []

    def send(self, item: OutboxItem) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(item)


# -- enqueue -------------------------------------------------------------------------
def test_enqueue_is_idempotent_by_key(ingestor: Ingestor) -> None:
    ana = person(ingestor, "ana")
    first = queue(ingestor, ana, "k1", payload={"order": "A-17", "items": [1, 2]})
    assert first.status == "pending" and first.attempts == 0
    assert first.next_attempt_at == NOW and first.payload == {"order": "A-17", "items": [1, 2]}
    again = queue(ingestor, ana, "k1", action="something else", payload={}, at=NOW + timedelta(1))
    assert again == first
    assert outbox_counts(ingestor.store.con) == {
        "pending": 1, "sending": 0, "delivered": 0, "dead": 0
    }  # fmt: skip


def test_enqueue_joins_the_callers_transaction(ingestor: Ingestor) -> None:
    ana = person(ingestor, "ana")
    con = ingestor.store.cursor()
    con.execute("BEGIN")
    queue(ingestor, ana, "k1")
    con.execute("ROLLBACK")
    assert list_outbox(con) == []
    con.execute("BEGIN")
    queue(ingestor, ana, "k1")
    con.execute("COMMIT")
    assert [i.idempotency_key for i in list_outbox(con)] == ["k1"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"channel": "carrier-pigeon"}, "channel must be one of"),
        ({"idempotency_key": " "}, "idempotency_key must be a non-empty string"),
        ({"adapter": ""}, "adapter must be a non-empty string"),
        ({"at": datetime(2026, 11, 20, 12)}, "at must carry a time zone"),
        ({"payload": {"when": object()}}, "payload must be JSON-serialisable"),
    ],
)
def test_enqueue_refuses_what_cannot_be_delivered_or_counted(
    ingestor: Ingestor, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        queue(ingestor, "p_x", "k1", **fields)


def test_due_is_what_has_come_due_for_the_adapters_asked(ingestor: Ingestor) -> None:
    ana = person(ingestor, "ana")
    queue(ingestor, ana, "now")
    queue(ingestor, ana, "later", at=NOW + timedelta(hours=1))
    queue(ingestor, ana, "by-log", adapter="log", at=NOW - timedelta(minutes=1))
    con = ingestor.store.cursor()
    assert [i.idempotency_key for i in due(con, NOW)] == ["by-log", "now"]
    assert [i.idempotency_key for i in due(con, NOW, adapters=["webhook"])] == ["now"]
    assert [i.idempotency_key for i in due(con, NOW + timedelta(hours=1), limit=2)] == [
        "by-log", "now"
    ]  # fmt: skip


# -- delivery and the timeline -------------------------------------------------------
def test_a_delivered_message_is_on_the_timeline_once_even_if_delivered_twice(
    ingestor: Ingestor, receiver: WebhookReceiver
) -> None:
    ana = person(ingestor, "ana")
    item = queue(ingestor, ana, "decision:d1", destination=receiver.url)
    report = deliver_due(ingestor, webhooks(), NOW)
    assert (report.delivered, report.retried, report.dead) == (1, 0, 0)
    [done] = report.items
    assert done.status == "delivered" and done.delivered_at == NOW and done.attempts == 1
    # The process died between sending and marking: the message is still `sending`,
    # with the lease its round took.
    con = ingestor.store.cursor()
    con.execute(
        "UPDATE outbox SET status = 'sending', delivered_at = NULL, next_attempt_at = ? "
        "WHERE id = ?",
        [NOW + timedelta(seconds=300), item.id],
    )
    assert due(con, NOW) == []  # its lease has not run out
    assert release_leases(con, NOW + timedelta(seconds=1)) == 1
    again = deliver_due(ingestor, webhooks(), NOW + timedelta(seconds=1))
    assert again.delivered == 1
    assert receiver.keys() == ["decision:d1", "decision:d1"]  # sent twice, same key
    assert list(receiver.processed) == ["decision:d1"]  # acted on once
    [(event, message_id, properties)] = timeline_events(ingestor, ana)
    assert (event, message_id) == ("Message Sent", f"outbox:{item.id}")
    assert properties == {
        "channel": "email", "purpose": "service", "action": "delivery-update",
        "adapter": "webhook", "decision_id": "d-decision:d1", "outbox_id": item.id,
        "idempotency_key": "decision:d1",
    }  # fmt: skip


def test_an_email_is_delivered_over_smtp_and_counted_on_the_timeline(
    ingestor: Ingestor,
) -> None:
    ana = person(ingestor, "ana")
    payload = {"subject": "Your order is on its way", "text": "It ships today."}
    item = queue(ingestor, ana, "decision:d7", destination="ana@example.com", adapter="email",
                 payload=payload)  # fmt: skip
    with serve_smtp() as smtp:
        adapters = adapters_from_settings(load_settings(smtp=smtp.settings))
        report = deliver_due(ingestor, adapters, NOW)
    assert report.delivered == 1
    [message] = smtp.sink.messages
    assert message["X-OpenCX-Idempotency-Key"] == "decision:d7"
    assert message["Subject"] == "Your order is on its way"
    [(event, message_id, properties)] = timeline_events(ingestor, ana)
    assert (event, message_id) == ("Message Sent", f"outbox:{item.id}")
    assert properties["adapter"] == "email" and properties["decision_id"] == "d-decision:d7"


def test_a_crashed_lease_comes_due_again_when_it_runs_out(ingestor: Ingestor) -> None:
    ana = person(ingestor, "ana")
    item = queue(ingestor, ana, "k1", adapter="log")
    con = ingestor.store.cursor()
    con.execute(
        "UPDATE outbox SET status = 'sending', attempts = 1, next_attempt_at = ? WHERE id = ?",
        [NOW + timedelta(seconds=300), item.id],
    )
    assert deliver_due(ingestor, {"log": LogAdapter()}, NOW + timedelta(seconds=299)).items == ()
    report = deliver_due(ingestor, {"log": LogAdapter()}, NOW + timedelta(seconds=300))
    [done] = report.items
    assert done.status == "delivered" and done.attempts == 2


def test_temporary_errors_retry_with_exponential_backoff(
    ingestor: Ingestor,
) -> None:
    ana = person(ingestor, "ana")
    with serve_webhooks(WebhookReceiver(script=[503, 500])) as receiver:
        queue(ingestor, ana, "k1", destination=receiver.url)
        first = deliver_due(ingestor, webhooks(), NOW, backoff_s=30)
        [item] = first.items
        assert first.retried == 1 and item.status == "pending" and item.attempts == 1
        assert item.next_attempt_at == NOW + timedelta(seconds=30)
        assert "HTTP 503" in (item.last_error or "")
        assert deliver_due(ingestor, webhooks(), NOW + timedelta(seconds=29)).items == ()
        [item] = deliver_due(ingestor, webhooks(), NOW + timedelta(seconds=30), backoff_s=30).items
        assert item.attempts == 2 and "HTTP 500" in (item.last_error or "")
        assert item.next_attempt_at == NOW + timedelta(seconds=30 + 60)
        [item] = deliver_due(ingestor, webhooks(), NOW + timedelta(seconds=90), backoff_s=30).items
        assert item.status == "delivered" and item.attempts == 3
        assert receiver.keys() == ["k1", "k1", "k1"]
        assert list(receiver.processed) == ["k1"]
    assert [e for e, _, _ in timeline_events(ingestor, ana)] == ["Message Sent"]


def test_backoff_doubles_is_capped_and_jitter_is_injected() -> None:
    assert [backoff_delay(n, 30) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff_delay(20, 30, max_backoff_s=3600) == 3600
    assert backoff_delay(3, 30, jitter=lambda: 0.0) == 60  # half of 120
    assert backoff_delay(3, 30, jitter=lambda: 0.5) == 90


def test_jitter_and_retry_after_set_the_next_attempt(ingestor: Ingestor) -> None:
    ana = person(ingestor, "ana")
    queue(ingestor, ana, "k1", adapter="flaky")
    queue(ingestor, ana, "k2", adapter="flaky")
    flaky = FlakyAdapter(
        DeliveryError("busy", permanent=False),
        DeliveryError("slow down", permanent=False, retry_after_s=600),
    )
    report = deliver_due(ingestor, {"flaky": flaky}, NOW, backoff_s=30, jitter=lambda: 0.0)
    assert [i.next_attempt_at for i in report.items] == [
        NOW + timedelta(seconds=15), NOW + timedelta(seconds=600)
    ]  # fmt: skip


def test_a_permanent_error_is_dead_at_once_and_retry_revives_it(
    ingestor: Ingestor,
) -> None:
    ana = person(ingestor, "ana")
    with serve_webhooks(WebhookReceiver(script=[404])) as receiver:
        item = queue(ingestor, ana, "k1", destination=receiver.url)
        report = deliver_due(ingestor, webhooks(), NOW, max_attempts=8)
        [dead] = report.items
        assert report.dead == 1 and dead.status == "dead" and dead.attempts == 1
        assert "HTTP 404" in (dead.last_error or "") and "permanent" in (dead.last_error or "")
        assert deliver_due(ingestor, webhooks(), NOW + timedelta(days=1)).items == ()
        revived = retry(ingestor.store.cursor(), item.id, NOW + timedelta(days=1))
        assert revived.status == "pending" and revived.attempts == 0
        assert revived.last_error == dead.last_error  # kept for the record
        [done] = deliver_due(ingestor, webhooks(), NOW + timedelta(days=1)).items
        assert done.status == "delivered"
        assert list(receiver.processed) == ["k1"]
    events = timeline_events(ingestor, ana)
    assert [e for e, _, _ in events] == ["Message Failed", "Message Sent"]
    assert "HTTP 404" in events[0][2]["error"]


def test_max_attempts_of_temporary_errors_make_it_dead_with_the_last_error(
    ingestor: Ingestor,
) -> None:
    ana = person(ingestor, "ana")
    queue(ingestor, ana, "k1", adapter="flaky")
    flaky = FlakyAdapter(*(DeliveryError(f"timeout {n}", permanent=False) for n in (1, 2, 3)))
    moment = NOW
    statuses = []
    for _ in range(3):  # bounded: three rounds
        [item] = deliver_due(ingestor, {"flaky": flaky}, moment, max_attempts=3, backoff_s=1).items
        statuses.append(item.status)
        moment = item.next_attempt_at
    assert statuses == ["pending", "pending", "dead"]
    assert item.attempts == 3 and item.last_error == "timeout 3 (3 attempts)"
    assert flaky.sent == []


def test_an_adapter_bug_is_retried_and_does_not_stop_the_round(ingestor: Ingestor) -> None:
    ana = person(ingestor, "ana")
    queue(ingestor, ana, "k1", adapter="flaky")
    queue(ingestor, ana, "k2", adapter="flaky", at=NOW + timedelta(seconds=1))
    flaky = FlakyAdapter(KeyError("subject"))
    report = deliver_due(ingestor, {"flaky": flaky}, NOW + timedelta(seconds=1))
    assert [(i.idempotency_key, i.status) for i in report.items] == [
        ("k1", "pending"), ("k2", "delivered")
    ]  # fmt: skip
    assert "adapter error: KeyError" in (report.items[0].last_error or "")


def test_messages_for_an_adapter_not_configured_wait(ingestor: Ingestor) -> None:
    ana = person(ingestor, "ana")
    queue(ingestor, ana, "k1", adapter="email", destination="ana@example.com")
    report = deliver_due(ingestor, {"log": LogAdapter()}, NOW)
    assert report.items == () and report.waiting == 1 and report.waiting_for == {"email": 1}
    [waiting] = list_outbox(ingestor.store.cursor())
    assert waiting.status == "pending" and waiting.attempts == 0


def test_a_contact_for_a_person_without_identifiers_is_delivered_and_says_so(
    ingestor: Ingestor,
) -> None:
    ana = person(ingestor, "ana")
    queue(ingestor, "p_unknown", "k1", adapter="log")
    queue(ingestor, ana, "k2", adapter="log")
    report = deliver_due(ingestor, {"log": LogAdapter()}, NOW)
    assert [i.status for i in report.items] == ["delivered", "delivered"]
    unknown, known = sorted(report.items, key=lambda i: i.idempotency_key)
    assert unknown.last_error == (
        "Message Sent event not written: profile 'p_unknown' has no identifier to address "
        "an event to"
    )
    assert known.last_error is None
    assert [e for e, _, _ in timeline_events(ingestor, ana)] == ["Message Sent"]


# -- reading and retrying ------------------------------------------------------------
def test_outbox_of_a_person_lists_and_counts(ingestor: Ingestor) -> None:
    ana, bo = person(ingestor, "ana"), person(ingestor, "bo")
    queue(ingestor, ana, "a1", adapter="log")
    queue(ingestor, ana, "a2", adapter="log", at=NOW + timedelta(minutes=1))
    queue(ingestor, bo, "b1", adapter="nowhere")
    deliver_due(ingestor, {"log": LogAdapter()}, NOW)
    con = ingestor.store.cursor()
    assert [i.idempotency_key for i in outbox_of(con, ana)] == ["a2", "a1"]
    assert [i.idempotency_key for i in list_outbox(con, status="delivered")] == ["a1"]
    assert [i.idempotency_key for i in list_outbox(con, limit=1)] == ["a2"]
    assert outbox_counts(con) == {"pending": 2, "sending": 0, "delivered": 1, "dead": 0}
    with pytest.raises(InvalidInput, match="status must be one of pending, sending"):
        list_outbox(con, status="lost")
    with pytest.raises(NotFound, match="no profile"):
        outbox_of(con, "p_nobody")


def test_only_dead_messages_are_retried(ingestor: Ingestor) -> None:
    ana = person(ingestor, "ana")
    item = queue(ingestor, ana, "k1", adapter="log")
    con = ingestor.store.cursor()
    with pytest.raises(Conflict, match=f"outbox message {item.id} is pending"):
        retry(con, item.id, NOW)
    with pytest.raises(NotFound, match="no outbox message with id 'ob_nope'"):
        retry(con, "ob_nope", NOW)


# -- crash safety --------------------------------------------------------------------
@pytest.mark.slow
def test_killing_the_process_mid_delivery_neither_loses_nor_duplicates(tmp_path: Path) -> None:
    db = tmp_path / "crash.duckdb"
    with serve_webhooks(WebhookReceiver(block_on=3)) as receiver:
        with Store(db) as store:
            ingestor = Ingestor(store, load_settings(db=db, profiles_refresh_s=0))
            people = [person(ingestor, f"u{n}") for n in range(5)]
            keys = [f"decision:{n}" for n in range(5)]
            now = datetime.now(UTC)
            for n, (who, key) in enumerate(zip(people, keys, strict=True)):
                queue(
                    ingestor, who, key, destination=receiver.url, at=now + timedelta(milliseconds=n)
                )
        env = {**os.environ, "OPENCX_WEBHOOK_SECRET": SECRET, "PYTHONPATH": str(ROOT / "src")}
        deliver = [sys.executable, "-m", "opencx.cli", "outbox", "deliver", "--db", str(db)]
        log = (tmp_path / "first.log").open("wb")
        with log:
            process = subprocess.Popen(deliver, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                assert receiver.blocked.wait(60), (tmp_path / "first.log").read_text()
                process.send_signal(signal.SIGKILL)
                process.wait(10)
            finally:
                if process.poll() is None:
                    process.kill()
        receiver.release.set()
        assert process.returncode == -signal.SIGKILL
        assert receiver.keys() == keys[:3]  # the third was received; its answer never read
        with Store(db) as store:
            states = {i.idempotency_key: i.status for i in list_outbox(store.con)}
        assert states == dict.fromkeys(keys, "sending")  # the round's chunk, never marked
        restarted = subprocess.run(deliver, env=env, capture_output=True, timeout=120)
        assert restarted.returncode == 0, restarted.stderr.decode()
        assert b"5 interrupted deliveries were due again" in restarted.stdout
    assert sorted(set(receiver.keys())) == keys  # every contact arrived
    # What was sent before the kill was sent again, with the same keys ...
    assert [receiver.keys().count(k) for k in keys] == [2, 2, 2, 1, 1]
    assert sorted(receiver.processed) == keys  # ... and the receiver acted on each once
    with Store(db) as store:
        assert outbox_counts(store.con) == {"pending": 0, "sending": 0, "delivered": 5, "dead": 0}
        sent = store.con.execute(
            "SELECT message_id, count(*) FROM analytics_events WHERE event = 'Message Sent' "
            "GROUP BY message_id"
        ).fetchall()
    assert len(sent) == 5 and all(n == 1 for _, n in sent)


def test_two_rounds_at_once_send_each_message_once(ingestor: Ingestor) -> None:
    people = [person(ingestor, f"u{n}") for n in range(4)]
    for n in range(24):
        queue(ingestor, people[n % 4], f"k{n}", adapter="counting")
    sent: list[str] = []
    lock = threading.Lock()
    both_started = threading.Barrier(2, timeout=10)
    first = threading.local()

    class Counting:
        name = "counting"

        def send(self, item: OutboxItem) -> None:
            if not getattr(first, "done", False):  # both rounds hold a list of due messages
                first.done = True
                both_started.wait()
            with lock:
                sent.append(item.idempotency_key)

    reports: list[DeliveryReport] = []

    def deliver() -> None:
        reports.append(deliver_due(ingestor, {"counting": Counting()}, NOW, limit=24))

    rounds = [threading.Thread(target=deliver) for _ in range(2)]
    for r in rounds:
        r.start()
    for r in rounds:
        r.join(60)
    assert sorted(sent) == sorted(f"k{n}" for n in range(24))  # none twice
    assert sum(r.delivered for r in reports) == 24
    sent_events = (
        ingestor.store.cursor()
        .execute(
            "SELECT count(*), count(DISTINCT message_id) FROM analytics_events "
            "WHERE event = 'Message Sent'"
        )
        .fetchall()
    )
    assert sent_events == [(24, 24)]
