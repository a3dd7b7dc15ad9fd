"""Delivery adapters against real receivers on loopback: a signed webhook, SMTP, the log."""

from __future__ import annotations

import doctest
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from opencx.config import SmtpSettings, load_settings
from opencx.orchestrate import adapters as adapters_module
from opencx.orchestrate import outbox as outbox_module
from opencx.orchestrate.adapters import (
    DeliveryError,
    LogAdapter,
    SmtpAdapter,
    WebhookAdapter,
    adapters_from_settings,
    sign,
    verify_signature,
)
from opencx.orchestrate.outbox import OutboxItem
from tests.conftest import ROOT, free_port
from tests.orchestrate.receivers import (
    SECRET,
    SmtpServer,
    WebhookReceiver,
    serve_smtp,
    serve_webhooks,
)

CREATED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def outbox_item(**fields: Any) -> OutboxItem:
    values: dict[str, Any] = {
        "id": "ob_1", "idempotency_key": "decision:d1", "decision_id": "d1",
        "person_id": "p_1", "action": "delivery-update", "channel": "email",
        "purpose": "service", "adapter": "webhook", "destination": None,
        "payload": {"subject": "Your order is on its way", "text": "It ships today."},
        "status": "sending", "attempts": 1, "next_attempt_at": CREATED, "last_error": None,
        "created_at": CREATED, "delivered_at": None,
    }  # fmt: skip
    values.update(fields)
    return OutboxItem(**values)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with serve_webhooks(WebhookReceiver()) as r:
        yield r


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with serve_smtp() as server:
        yield server


# -- signatures ----------------------------------------------------------------------
def test_a_signature_verifies_only_with_the_secret_the_body_and_a_fresh_timestamp() -> None:
    body = b'{"id":"ob_1"}'
    header = sign(SECRET, body, 1_767_225_600)
    assert header.startswith("t=1767225600,v1=")
    assert verify_signature(SECRET, header, body, 1_767_225_600 + 299)
    assert verify_signature(SECRET, header, body, datetime.fromtimestamp(1_767_225_600, UTC))
    assert not verify_signature("another secret", header, body, 1_767_225_600)
    assert not verify_signature(SECRET, header, b'{"id":"ob_2"}', 1_767_225_600)
    assert not verify_signature(SECRET, header, body, 1_767_225_600 + 301)  # replayed later
    assert not verify_signature(SECRET, header, body, 1_767_225_600 - 301)
    assert not verify_signature(SECRET, "v1=abc", body, 1_767_225_600)
    assert not verify_signature(SECRET, None, body, 1_767_225_600)
    assert not verify_signature("", header, body, 1_767_225_600)
    # A receiver rotating its secret accepts a header signed with either.
    rotated = header + ",v1=" + sign("old secret", body, 1_767_225_600).partition("v1=")[2]
    assert verify_signature(SECRET, rotated, body, 1_767_225_600)
    assert verify_signature("old secret", rotated, body, 1_767_225_600)


# -- webhooks ------------------------------------------------------------------------
def test_a_webhook_is_posted_signed_with_its_idempotency_key(
    receiver: WebhookReceiver,
) -> None:
    item = outbox_item(destination=receiver.url, payload={"order": "A-17"})
    WebhookAdapter(SECRET).send(item)
    [got] = receiver.requests
    assert got.verified
    assert got.key == "decision:d1"
    assert abs(int(got.headers["x-opencx-timestamp"]) - time.time()) < 3600
    assert got.headers["content-type"] == "application/json"
    assert got.body == {
        "id": "ob_1", "idempotency_key": "decision:d1", "person_id": "p_1",
        "action": "delivery-update", "channel": "email", "purpose": "service",
        "payload": {"order": "A-17"}, "created_at": "2026-11-20T12:00:00+00:00",
    }  # fmt: skip
    assert receiver.processed == {"decision:d1": got.body}


def test_a_webhook_signed_with_another_secret_is_refused_by_the_receiver(
    receiver: WebhookReceiver,
) -> None:
    with pytest.raises(DeliveryError) as refused:
        WebhookAdapter("not the receiver's secret").send(outbox_item(destination=receiver.url))
    assert refused.value.permanent
    assert "HTTP 401" in refused.value.message
    assert receiver.processed == {}


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(500, False), (502, False), (503, False), (408, False), (429, False),
     (400, True), (404, True), (410, True), (422, True), (302, True)],
)  # fmt: skip
def test_http_statuses_are_temporary_or_permanent(status: int, permanent: bool) -> None:
    with serve_webhooks(WebhookReceiver(script=[status], headers={"Location": "/x"})) as r:
        with pytest.raises(DeliveryError) as failed:
            WebhookAdapter(SECRET).send(outbox_item(destination=r.url))
        assert len(r.requests) == 1  # a redirect is not followed
    assert failed.value.permanent is permanent
    assert f"HTTP {status}" in failed.value.message


def test_retry_after_is_passed_on() -> None:
    receiver = WebhookReceiver(script=[429], headers={"Retry-After": "120"})
    with serve_webhooks(receiver) as r, pytest.raises(DeliveryError) as failed:
        WebhookAdapter(SECRET).send(outbox_item(destination=r.url))
    assert not failed.value.permanent
    assert failed.value.retry_after_s == 120


def test_an_unreachable_or_silent_receiver_is_a_temporary_error() -> None:
    nobody = f"http://127.0.0.1:{free_port()}/hook"
    with pytest.raises(DeliveryError) as refused:
        WebhookAdapter(SECRET).send(outbox_item(destination=nobody))
    assert not refused.value.permanent
    assert "cannot reach" in refused.value.message
    slow = WebhookReceiver(block_on=1)
    with serve_webhooks(slow), pytest.raises(DeliveryError) as silent:
        WebhookAdapter(SECRET, timeout_s=0.5).send(outbox_item(destination=slow.url))
    assert not silent.value.permanent
    assert "timed out" in silent.value.message


@pytest.mark.parametrize("destination", [None, "", "ftp://example.com/x", "not a url", "http://"])
def test_an_invalid_webhook_address_is_permanent(destination: str | None) -> None:
    with pytest.raises(DeliveryError, match="invalid address") as failed:
        WebhookAdapter(SECRET).send(outbox_item(destination=destination))
    assert failed.value.permanent


def test_webhooks_are_never_sent_unsigned(receiver: WebhookReceiver) -> None:
    with pytest.raises(DeliveryError, match="webhook_secret is empty") as refused:
        WebhookAdapter("").send(outbox_item(destination=receiver.url))
    assert refused.value.permanent
    assert receiver.requests == []


# -- email -------------------------------------------------------------------------
def test_an_email_arrives_with_its_idempotency_headers(smtp_server: SmtpServer) -> None:
    item = outbox_item(
        adapter="email", destination="ana@example.com",
        payload={"subject": "Your order is on its way", "text": "It ships today.",
                 "html": "<p>It ships <b>today</b>.</p>"},
    )  # fmt: skip
    SmtpAdapter(smtp_server.settings).send(item)
    [message] = smtp_server.sink.messages
    assert smtp_server.sink.envelopes == [("care@northwind.example", ["ana@example.com"])]
    assert message["To"] == "ana@example.com"
    assert message["From"] == "care@northwind.example"
    assert message["Subject"] == "Your order is on its way"
    assert message["X-OpenCX-Idempotency-Key"] == "decision:d1"
    assert message["Message-ID"].endswith("@northwind.example>")
    assert message.get_body(("plain",)).get_content().strip() == "It ships today."
    assert "<b>today</b>" in message.get_body(("html",)).get_content()
    # The same key gives the same Message-ID, so a re-sent copy can be recognised.
    SmtpAdapter(smtp_server.settings).send(item)
    assert smtp_server.sink.messages[1]["Message-ID"] == message["Message-ID"]
    other = outbox_item(adapter="email", destination="ana@example.com", idempotency_key="k2")
    SmtpAdapter(smtp_server.settings).send(other)
    assert smtp_server.sink.messages[2]["Message-ID"] != message["Message-ID"]


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("550 5.1.1 No such mailbox", True), ("451 4.3.0 Try again later", False)],
)
def test_smtp_5xx_is_permanent_and_4xx_temporary(
    smtp_server: SmtpServer, reply: str, permanent: bool
) -> None:
    smtp_server.sink.refuse = reply
    item = outbox_item(adapter="email", destination="gone@example.com")
    with pytest.raises(DeliveryError) as failed:
        SmtpAdapter(smtp_server.settings).send(item)
    assert failed.value.permanent is permanent
    assert reply.split()[0] in failed.value.message
    assert smtp_server.sink.messages == []


def test_an_unreachable_smtp_server_is_temporary() -> None:
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), sender="a@b.example", timeout_s=2)
    with pytest.raises(DeliveryError, match="cannot reach SMTP server") as failed:
        SmtpAdapter(settings).send(outbox_item(adapter="email", destination="ana@example.com"))
    assert not failed.value.permanent


@pytest.mark.parametrize(
    ("destination", "payload", "message"),
    [
        ("ana", {"subject": "s", "text": "t"}, "invalid address"),
        ("ana@example.com\r\nBcc: all@example.com", {"subject": "s", "text": "t"},
         "invalid address"),
        (None, {"subject": "s", "text": "t"}, "invalid address"),
        ("ana@example.com", {"text": "t"}, "payload.subject"),
        ("ana@example.com", {"subject": "s", "text": ""}, "payload.text"),
        ("ana@example.com", {"subject": "s", "text": "t", "html": 3}, "payload.html"),
    ],
)  # fmt: skip
def test_an_email_that_cannot_be_made_is_permanent(
    smtp_server: SmtpServer, destination: str | None, payload: dict[str, Any], message: str
) -> None:
    item = outbox_item(adapter="email", destination=destination, payload=payload)
    with pytest.raises(DeliveryError, match=message) as failed:
        SmtpAdapter(smtp_server.settings).send(item)
    assert failed.value.permanent
    assert smtp_server.sink.messages == []


# -- log and settings ----------------------------------------------------------------
def test_the_log_adapter_records_the_message(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="opencx.delivery"):
        LogAdapter().send(outbox_item(channel="sms", destination="+15551234567"))
    [record] = caplog.records
    assert "ob_1" in record.getMessage() and "+15551234567" in record.getMessage()


def test_adapters_follow_the_settings() -> None:
    plain = adapters_from_settings(load_settings(webhook_secret="s"))
    assert sorted(plain) == ["log", "webhook"]  # no smtp.host: email waits in the outbox
    with_mail = adapters_from_settings(
        load_settings(smtp=SmtpSettings(host="127.0.0.1", sender="a@b.example"))
    )
    assert sorted(with_mail) == ["email", "log", "webhook"]
    assert all(adapter.name == name for name, adapter in with_mail.items())


# -- docs that cannot drift ------------------------------------------------------------
def test_the_receivers_snippet_in_the_docs_verifies_a_real_request(
    receiver: WebhookReceiver,
) -> None:
    text = (ROOT / "docs" / "delivery.md").read_text()
    [snippet] = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "docs/delivery.md", "exec"), namespace)
    verify = namespace["verify"]
    WebhookAdapter(SECRET).send(outbox_item(destination=receiver.url))
    [got] = receiver.requests
    body = got.raw
    signature = got.headers["x-opencx-signature"]
    assert verify(SECRET, signature, body)
    assert not verify("wrong", signature, body)
    assert not verify(SECRET, signature, body + b" ")
    assert not verify(SECRET, sign(SECRET, body, int(time.time()) - 301), body)


def test_the_docstring_examples_hold() -> None:
    for module in (adapters_module, outbox_module):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
