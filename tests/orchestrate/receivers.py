"""Real receivers on 127.0.0.1 for delivery tests: a webhook endpoint that verifies the
signature and drops duplicate keys, and an SMTP server that keeps what it receives."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from aiosmtpd.controller import Controller

from opencx.config import SmtpSettings
from opencx.orchestrate.adapters import verify_signature
from tests.conftest import free_port

SECRET = "whsec_test_0123456789"


# -- a webhook receiver ------------------------------------------------------------
@dataclass
class Received:
    key: str | None
    verified: bool
    body: dict[str, Any]
    headers: dict[str, str]
    raw: bytes


@dataclass
class WebhookReceiver:
    """A receiver as a customer would write one: verify the signature, drop duplicates.

    `script` holds the statuses of the first requests (then 200); `block_on` makes the
    n-th request (1-based) wait, after it was processed, until `release` is set: the
    sender sees no answer, as when it dies or times out mid-request.
    """

    secret: str = SECRET
    script: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    block_on: int | None = None
    requests: list[Received] = field(default_factory=list)
    processed: dict[str, dict[str, Any]] = field(default_factory=dict)
    blocked: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def keys(self) -> list[str | None]:
        return [r.key for r in self.requests]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        key = handler.headers.get("Idempotency-Key")
        signature = handler.headers.get("X-OpenCX-Signature")
        verified = verify_signature(self.secret, signature, body, time.time())
        with self.lock:
            headers = {k.lower(): v for k, v in handler.headers.items()}  # case-insensitive
            self.requests.append(Received(key, verified, orjson.loads(body), headers, body))
            number = len(self.requests)
            status = self.script[number - 1] if number <= len(self.script) else 200
            if not verified:
                status = 401
            if status == 200 and key is not None and key not in self.processed:
                self.processed[key] = orjson.loads(body)
        if number == self.block_on:
            self.blocked.set()
            self.release.wait(30)  # bounded: the test sets it, or gives up after 30 s
        try:
            handler.send_response(status)
            for name, value in self.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", "2")
            handler.end_headers()
            handler.wfile.write(b"ok")
        except OSError:  # the sender is gone (killed or timed out)
            pass


class _Handler(BaseHTTPRequestHandler):
    receiver: WebhookReceiver

    def do_POST(self) -> None:
        self.server.receiver.handle(self)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass


class serve_webhooks:
    """`with serve_webhooks(WebhookReceiver(...)) as receiver:` on 127.0.0.1."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.receiver = receiver  # type: ignore[attr-defined]
        receiver.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/opencx"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self.receiver

    def __exit__(self, *exc: object) -> None:
        self.receiver.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


# -- an SMTP server ----------------------------------------------------------------
@dataclass
class SmtpSink:
    """aiosmtpd handler: keeps every message; `refuse` answers RCPT with a scripted reply."""

    refuse: str | None = None
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:  # fmt: skip
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    sink: SmtpSink
    settings: SmtpSettings


@contextmanager
def serve_smtp() -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1 that keeps what it receives."""
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = SmtpSettings(
            host="127.0.0.1", port=port, sender="care@northwind.example", timeout_s=5
        )
        yield SmtpServer(sink, settings)
    finally:
        controller.stop()
