"""Delivery adapters: how an outbox message leaves OpenCX (signed webhook, SMTP email, log).

An adapter either returns (the receiver accepted the message) or raises `DeliveryError`,
saying whether trying again could help (`permanent=False`) or not. Every message carries
its idempotency key, so a receiver can drop the duplicates that at-least-once delivery
sends after a crash.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import re
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import orjson

from opencx import __version__
from opencx.config import Settings, SmtpSettings

if TYPE_CHECKING:
    from opencx.orchestrate.outbox import OutboxItem

log = logging.getLogger("opencx.delivery")

SIGNATURE_HEADER = "X-OpenCX-Signature"
TIMESTAMP_HEADER = "X-OpenCX-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_MAX_ERROR_BODY = 200
# An address with one @, no spaces, brackets or separators: what one SMTP recipient is.
_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+$")


class DeliveryError(Exception):
    """A message was not delivered; `permanent` says that trying again cannot help."""

    def __init__(self, message: str, *, permanent: bool, retry_after_s: float | None = None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after_s = retry_after_s


class Adapter(Protocol):
    """Hands one outbox message to a gateway; returns once the gateway accepted it."""

    name: str

    def send(self, item: OutboxItem) -> None: ...


# -- webhooks ----------------------------------------------------------------------
def webhook_body(item: OutboxItem) -> dict[str, Any]:
    """The JSON document a webhook receiver gets."""
    return {
        "id": item.id,
        "idempotency_key": item.idempotency_key,
        "person_id": item.person_id,
        "action": item.action,
        "channel": item.channel,
        "purpose": item.purpose,
        "payload": item.payload,
        "created_at": item.created_at.astimezone(UTC).isoformat(),
    }


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-OpenCX-Signature` value: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.

    The HMAC covers `f"{timestamp}.{body}"`, so a captured request cannot be replayed
    later with a new timestamp.

    >>> sign("s3cret", b'{"id":"ob_1"}', 1767225600)[:13]
    't=1767225600,'
    """
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    now: datetime | float,
    tolerance_s: float = 300,
) -> bool:
    """For receivers: is `header` a valid signature of `body`, made within `tolerance_s`?

    Accepts several `v1=` values (a sender rotating its secret signs with both); compares
    in constant time.

    >>> body = b'{"id":"ob_1"}'
    >>> verify_signature("s3cret", sign("s3cret", body, 1767225600), body, 1767225700)
    True
    >>> verify_signature("other", sign("s3cret", body, 1767225600), body, 1767225700)
    False
    """
    if not secret or not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = now.timestamp() if isinstance(now, datetime) else float(now)
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).partition(",v1=")[2]
    found = False
    for candidate in candidates:  # every candidate is compared: no early exit
        found |= hmac.compare_digest(expected.encode(), candidate.encode())
    return found


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be re-sent as a GET without its body: refuse instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookAdapter:
    """POSTs the message as JSON, signed with HMAC-SHA256 and timestamped (Stripe-style).

    2xx: delivered. 408, 429 and 5xx, timeouts and connection errors: temporary (429 and
    503 may say when with `Retry-After`). Any other status, redirects included: permanent.
    """

    name = "webhook"

    def __init__(
        self,
        secret: str,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        self.timeout_s = timeout_s
        self.clock = clock
        self._opener = urllib.request.build_opener(_NoRedirects)

    def request(self, item: OutboxItem) -> urllib.request.Request:
        """The signed HTTP request for an item (raises `DeliveryError` if it cannot be made)."""
        if not self.secret:
            raise DeliveryError(
                "webhook_secret is empty: webhooks are never sent unsigned "
                "(set OPENCX_WEBHOOK_SECRET, then retry the message)",
                permanent=True,
            )
        url = item.destination or ""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DeliveryError(
                f"invalid address: destination must be an http(s) URL, got {url!r}",
                permanent=True,
            )
        body = orjson.dumps(webhook_body(item))
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"OpenCX/{__version__}",
            IDEMPOTENCY_HEADER: item.idempotency_key,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self.secret, body, timestamp),
        }
        return urllib.request.Request(url, data=body, headers=headers, method="POST")

    def send(self, item: OutboxItem) -> None:
        request = self.request(item)
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                response.read(64 * 1024)  # let the receiver finish its answer
        except urllib.error.HTTPError as exc:
            with exc:
                text = exc.read(_MAX_ERROR_BODY).decode("utf-8", "replace").strip()
            status = exc.code
            temporary = status in (408, 429) or 500 <= status < 600
            what = f"HTTP {status} from {request.full_url}" + (f": {text}" if text else "")
            raise DeliveryError(
                what,
                permanent=not temporary,
                retry_after_s=_retry_after(exc.headers.get("Retry-After")) if temporary else None,
            ) from None
        except urllib.error.URLError as exc:
            raise DeliveryError(
                f"cannot reach {request.full_url}: {exc.reason}", permanent=False
            ) from None
        except (TimeoutError, http.client.HTTPException, OSError) as exc:
            raise DeliveryError(
                f"no answer from {request.full_url}: {type(exc).__name__} {exc}".rstrip(),
                permanent=False,
            ) from None


# -- email -------------------------------------------------------------------------
class SmtpAdapter:
    """Email over SMTP: payload `{subject, text, html?}`, the destination is the address.

    The Message-ID is derived from the idempotency key (and the key is also in the header
    `X-OpenCX-Idempotency-Key`), so a mail system can drop a re-sent copy. SMTP 5xx
    answers about the message are permanent; 4xx, connection errors and a refused login
    are temporary (fixing the settings lets the queue drain).
    """

    name = "email"

    def __init__(self, settings: SmtpSettings, *, clock: Callable[[], datetime] | None = None):
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))

    def message(self, item: OutboxItem) -> EmailMessage:
        """The email for an item (raises a permanent `DeliveryError` if it cannot be made)."""
        address = (item.destination or "").strip()
        if not _EMAIL.match(address):
            raise DeliveryError(
                f"invalid address: destination must be one email address, got {address!r}",
                permanent=True,
            )
        subject, text, html = (item.payload.get(k) for k in ("subject", "text", "html"))
        for field, value in (("subject", subject), ("text", text)):
            if not isinstance(value, str) or not value.strip():
                raise DeliveryError(
                    f"payload.{field} must be a non-empty string for an email", permanent=True
                )
        if html is not None and not isinstance(html, str):
            raise DeliveryError("payload.html must be a string when given", permanent=True)
        sender = self.settings.sender
        domain = sender.rpartition("@")[2] or "opencx.invalid"
        digest = hashlib.sha256(item.idempotency_key.encode()).hexdigest()[:32]
        message = EmailMessage()
        message["From"] = sender
        message["To"] = address
        message["Subject"] = subject
        message["Date"] = format_datetime(self.clock())
        message["Message-ID"] = f"<{digest}@{domain}>"
        message["X-OpenCX-Idempotency-Key"] = item.idempotency_key
        message.set_content(text)
        if html:
            message.add_alternative(html, subtype="html")
        return message

    def send(self, item: OutboxItem) -> None:
        settings = self.settings
        if not settings.host or not settings.sender:
            raise DeliveryError(
                "smtp.host and smtp.sender must be set to send email", permanent=False
            )
        message = self.message(item)
        where = f"{settings.host}:{settings.port}"
        try:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
        except smtplib.SMTPConnectError as exc:
            raise _smtp_error(where, exc.smtp_code, exc.smtp_error) from None
        except OSError as exc:
            raise DeliveryError(
                f"cannot reach SMTP server {where}: {exc}", permanent=False
            ) from None
        try:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, settings.password)
            smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()))
            raise _smtp_error(where, code, reason) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP login refused by {where}: {exc.smtp_code} {_text(exc.smtp_error)}",
                permanent=False,
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise _smtp_error(where, exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"SMTP delivery to {where} failed: {type(exc).__name__} {exc}".rstrip(),
                permanent=False,
            ) from None
        finally:
            _close(smtp)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _smtp_error(where: str, code: int, reason: bytes | str) -> DeliveryError:
    return DeliveryError(
        f"SMTP server {where} answered {code} {_text(reason)}", permanent=500 <= code < 600
    )


def _close(smtp: smtplib.SMTP) -> None:
    """Say goodbye; the message is already accepted, so a failing QUIT changes nothing."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


# -- channels without a gateway ----------------------------------------------------
class LogAdapter:
    """For channels with no gateway configured (sms, push, in-app): logs and succeeds."""

    name = "log"

    def send(self, item: OutboxItem) -> None:
        log.info(
            "message %s (%s, %s on %s) for %s to %s: %s",
            item.id, item.action, item.purpose, item.channel, item.person_id,
            item.destination or "-", orjson.dumps(item.payload).decode(),
        )  # fmt: skip


def adapters_from_settings(settings: Settings) -> dict[str, Adapter]:
    """The adapters the settings allow: webhook and log always, email when smtp.host is set.

    Messages for an adapter that is not configured wait in the outbox.
    """
    adapters: dict[str, Adapter] = {
        "webhook": WebhookAdapter(settings.webhook_secret),
        "log": LogAdapter(),
    }
    if settings.smtp.host:
        adapters["email"] = SmtpAdapter(settings.smtp)
    return adapters
