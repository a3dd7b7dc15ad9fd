"""Request limits: token-bucket rate limits (per write key, token, sign-in address) and
the body size of everything that is not ingestion (which has its own, `max_batch_bytes`).

Buckets live in this process's memory: a restart forgets them, and each server process
counts on its own (OpenCX runs one process per database).
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opencx import web
from opencx.config import RateLimitSettings
from opencx.errors import Overloaded, PayloadTooLarge
from opencx.web.app import SecurityHeaders

_MAX_KEYS = 100_000
"""Buckets kept per limiter; past this the full (idle-looking) ones are forgotten."""


class TokenBucket:
    """`rate` requests a second per key, in bursts of up to `burst` (0: no limit).

    `take(key)` costs one dictionary lookup and a little arithmetic under a lock.
    """

    def __init__(self, rate: float, burst: float, *, clock: Any = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str, *, spend: bool = True) -> float:
        """Spend one request of `key`'s allowance: 0 if allowed, else the seconds to wait.
        With `spend=False`, only say whether one is left."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if not spend:
                    return 0.0
                if len(self._buckets) >= _MAX_KEYS:
                    self._forget_full(now)
                self._buckets[key] = [self.burst - 1.0, now]
                return 0.0
            tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0 if spend else tokens
                return 0.0
            bucket[0] = tokens
            return (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled (forgetting them changes nothing), or all."""
        full = [
            k for k, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate >= self.burst
        ]  # fmt: skip
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= _MAX_KEYS:
            self._buckets.clear()


def retry_after(wait: float) -> int:
    """Whole seconds for a `Retry-After` header (at least 1)."""
    return max(1, math.ceil(wait))


class RateLimiters:
    """The server's buckets, built from `rate_limits` settings."""

    def __init__(self, settings: RateLimitSettings) -> None:
        self.settings = settings
        self.ingest = TokenBucket(settings.ingest_per_s, settings.ingest_burst)
        self.api = TokenBucket(settings.api_per_s, settings.api_burst)
        self.login = TokenBucket(settings.login_per_min / 60.0, settings.login_burst)

    def check_token(self, token_id: str) -> None:
        """Raise Overloaded (429) when an API token is over its rate."""
        wait = self.api.take(token_id)
        if wait:
            raise Overloaded(
                f"this API token is over its rate limit of {self.settings.api_per_s:g} requests "
                f"a second (burst {self.settings.api_burst:g}): retry after {retry_after(wait)} s",
                retry_after=retry_after(wait),
            )


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _basic_user(header: bytes) -> str | None:
    scheme, _, value = header.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        return base64.b64decode(value.strip(), validate=True).decode().partition(":")[0] or None
    except (binascii.Error, UnicodeDecodeError):
        return None


def _failed_sign_in(start: Message) -> bool:
    """The sign-in form answers a failure by sending the browser back to /login."""
    if start["status"] != 303:
        return True
    location = dict(start.get("headers", [])).get(b"location", b"")
    return bool(location.startswith(b"/login"))


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list[Any]) -> None:
    data = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class IngestionAndSignInLimits:
    """Rate limits in front of everything else (so the ingestion fast path is covered):

    - `/v1/...` with HTTP Basic auth: per write key (that is, per source);
      without it (a browser putting `writeKey` in the body; the key is public there): per
      client address, so one abusive page cannot block a whole site's source;
    - `POST /login`: per client address (password guessing).
    """

    def __init__(self, app: ASGIApp, limiters: RateLimiters) -> None:
        self.app = app
        self.limiters = limiters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/v1/") and self.limiters.ingest.enabled:
            auth = _header(scope, b"authorization")
            key = _basic_user(auth) if auth else None
            bucket = f"key:{key}" if key else f"ip:{client_address(scope)}"
            wait = self.limiters.ingest.take(bucket)
            if wait:
                s = self.limiters.settings
                await self._refuse(
                    scope, receive, send, wait,
                    f"ingestion is over its rate limit of {s.ingest_per_s:g} requests a second "
                    f"per write key (burst {s.ingest_burst:g})",
                )  # fmt: skip
                return
        elif path == "/login" and scope["method"] == "POST" and self.limiters.login.enabled:
            await self._sign_in(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _sign_in(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Only failed sign-ins spend the address's allowance: guessing is what is limited."""
        address = client_address(scope)
        wait = self.limiters.login.take(address, spend=False)
        if wait:
            s = self.limiters.settings
            await self._refuse(
                scope, receive, send, wait,
                f"too many failed sign-ins from this address (more than {s.login_per_min:g} "
                "a minute)",
            )  # fmt: skip
            return

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start" and _failed_sign_in(message):
                self.limiters.login.take(address)
            await send(message)

        await self.app(scope, receive, counting)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, wait: float, why: str
    ) -> None:
        seconds = retry_after(wait)
        message = f"{why}: retry after {seconds} s"
        headers = [(b"retry-after", str(seconds).encode())]
        if scope["path"].startswith("/v1/"):
            body = {"error": {"type": "Overloaded", "message": message}}
            await _send_json(send, 429, body, headers)
            return
        response = web.error_page(Request(scope, receive), Overloaded(message, retry_after=seconds))
        response.headers.update(SecurityHeaders.headers_for(scope))
        response.headers["retry-after"] = str(seconds)
        await response(scope, receive, send)


class BodySizeLimit:
    """Refuse (413) a request body over `limit` bytes on the read API and web forms.

    Ingestion (`/v1/...`, except the SDK-metrics sink) is left to its own limits. The body
    is read here, up to the limit, and handed on, so chunked bodies are counted too.
    """

    EXEMPT = "/v1/"
    COUNTED = frozenset({"/v1/m"})

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self.limit <= 0
            or scope["method"] in ("GET", "HEAD", "OPTIONS")
            or (scope["path"].startswith(self.EXEMPT) and scope["path"] not in self.COUNTED)
        ):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send, f"request body is {int(declared)} bytes")
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: nobody to answer
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await self._refuse(scope, receive, send, "request body is over the limit")
                return
        await self.app(scope, replaying(bytes(body), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, what: str) -> None:
        message = f"{what}; the limit is {self.limit} bytes (setting rate_limits.max_body_bytes)"
        if scope["path"].startswith(("/api/", "/v1/")):
            body = {"error": {"type": "PayloadTooLarge", "message": message}}
            await _send_json(send, 413, body, [(b"connection", b"close")])
            return
        response = web.error_page(Request(scope, receive), PayloadTooLarge(message))
        response.headers.update(SecurityHeaders.headers_for(scope))
        response.headers["connection"] = "close"
        await response(scope, receive, send)


def replaying(body: bytes, receive: Receive, *, more: bool = False) -> Receive:
    """A `receive` that first gives back the body already read, then what the client sends."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay
