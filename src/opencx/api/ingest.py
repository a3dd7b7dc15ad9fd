"""Segment-compatible ingestion endpoints: /v1/batch, /v1/track, ... and the browser short forms."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import zlib
from typing import Any

import duckdb
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from opencx.api._limits import replaying
from opencx.api._state import ServerState
from opencx.errors import (
    InvalidInput,
    OpenCXError,
    Overloaded,
    PayloadTooLarge,
    StoreUnavailable,
    Unauthorized,
)
from opencx.ingest import (
    Failure,
    PreparedBatch,
    SourceContext,
    ValidatedBatch,
    WriteResult,
    decode_envelope,
    now_us,
)

router = APIRouter(tags=["ingestion"])
log = logging.getLogger("opencx.api")

_SINGLE = {
    "track": "track", "t": "track", "identify": "identify", "i": "identify",
    "page": "page", "p": "page", "screen": "screen", "s": "screen",
    "group": "group", "g": "group", "alias": "alias", "a": "alias",
}  # fmt: skip
_MAX_ERRORS_SHOWN = 100


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.opencx
    return state


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # a body that never arrived whole is not kept
        raise InvalidInput("the client disconnected before the whole body arrived") from None
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "deflate"):
        body = _inflate(body, encoding, limit)
    elif encoding not in ("", "identity"):
        raise InvalidInput(f"Content-Encoding {encoding!r} is not supported: use gzip or none")
    return body


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"body is not valid {encoding} data: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed body is over the limit of {limit} bytes")
    if not inflater.eof:  # cut short: what was inflated was never checked against the CRC
        raise InvalidInput(f"body is not valid {encoding} data: the stream ends early (truncated)")
    return out


def _parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:  # numbers beyond 64 bits and NaN are valid to Python's parser
            return json.loads(body)
        except (ValueError, RecursionError):
            raise InvalidInput(f"body is not valid JSON: {exc}") from None


def _write_key(request: Request, payload: Any) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("Authorization header is not valid Basic credentials") from None
        user, _, _password = decoded.partition(":")
        if user:
            return user
    if isinstance(payload, dict) and isinstance(payload.get("writeKey"), str):
        return payload["writeKey"]
    return None


def _authenticate(state: ServerState, key: str | None) -> SourceContext:
    if not key:
        raise Unauthorized(
            "a write key is required: HTTP Basic auth with the write key as user name, "
            "or writeKey in the body"
        )
    try:
        source = state.source(key)
    except duckdb.Error as exc:  # e.g. invalidated by a failed checkpoint on a full disk
        raise StoreUnavailable(
            f"write keys cannot be checked: the database failed: {exc}"
        ) from None
    if source is None:
        raise Unauthorized("the write key is not valid (unknown, rotated or revoked)")
    return SourceContext(source.name, source.channel, origin="api")


def _response(result: WriteResult) -> JSONResponse:
    return JSONResponse(_summary(result))


def _summary(result: WriteResult) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": True,
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
    }
    if result.dropped:  # erased people's events: accepted, never stored (privacy)
        body["dropped"] = result.dropped
    if result.failures:
        body["errors"] = [f.summary() for f in result.failures[:_MAX_ERRORS_SHOWN]]
    return body


async def _commit(state: ServerState, batch: ValidatedBatch | PreparedBatch) -> WriteResult:
    return await asyncio.wrap_future(state.ingestor.writer.submit(batch))


async def _keep_malformed(
    state: ServerState, source: SourceContext | None, body: bytes, error: str
) -> None:
    """A body refused as a whole is still kept, so nothing sent is lost without a trace."""
    batch = ValidatedBatch()
    batch.failures.append(
        Failure(
            index=0,
            message_id=None,
            payload=body[: state.settings.max_batch_bytes].decode("utf-8", "replace"),
            errors=[{"field": "body", "message": error}],
            source=source.name if source else None,
            origin="api",
            received_at=now_us(),
        )
    )
    await _commit(state, batch)


async def _ingest(request: Request, kind: str | None) -> Response:
    state = _state(request)
    settings = state.settings
    if state.ingestor.writer.backlog > settings.max_queued_events:
        raise Overloaded("ingestion is busy: retry shortly", retry_after=1)
    body = await _read_body(request, settings.max_batch_bytes)
    try:
        fast = _fast_lane(state, request, body, kind)
    except RecursionError:  # nesting too deep for the C decoder: the tolerant path explains
        fast = None
    if fast is not None:
        return _response(await _commit(state, fast))
    try:
        payload = _parse_json(body)
    except InvalidInput as exc:
        source = _authenticate(state, _write_key(request, None))
        await _keep_malformed(state, source, body, exc.message)
        raise
    source = _authenticate(state, _write_key(request, payload))
    if kind is None:
        if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
            error = "body must be an object with a 'batch' array of messages"
            await _keep_malformed(state, source, body, error)
            raise InvalidInput(error)
        messages = payload["batch"]
        if len(messages) > settings.max_batch_events:
            raise PayloadTooLarge(
                f"batch has {len(messages)} events; the limit is {settings.max_batch_events}"
            )
        sent_at = payload.get("sentAt")
    else:
        messages = [payload]
        sent_at = None
        if isinstance(payload, dict) and len(body) > settings.max_event_bytes:
            raise PayloadTooLarge(
                f"event is {len(body)} bytes; the limit is {settings.max_event_bytes}"
            )
    batch = state.ingestor.validate(messages, source, batch_sent_at=sent_at, default_type=kind)
    result = await _commit(state, batch)
    return _response(result)


def _fast_lane(
    state: ServerState, request: Request, body: bytes, kind: str | None
) -> ValidatedBatch | None:
    """Validate a well-formed body in the C fast lane; None sends it down the tolerant path."""
    settings = state.settings
    if kind is None:
        envelope = decode_envelope(body)
        if envelope is None or len(envelope.batch) > settings.max_batch_events:
            return None
        key = _write_key(request, {"writeKey": envelope.writeKey})
        source = _authenticate(state, key)
        return state.ingestor.validate_raw(envelope.batch, source, batch_sent_at=envelope.sentAt)
    header_key = _write_key(request, None)
    if header_key is None or len(body) > settings.max_event_bytes:
        return None
    source = _authenticate(state, header_key)
    batch = state.ingestor.validate_raw([body], source, default_type=kind)
    # A refused message takes the tolerant path, which refuses a malformed body as a whole.
    return None if batch.failures else batch


@router.post("/v1/batch", summary="Send a batch of Segment messages")
@router.post("/v1/b", include_in_schema=False)
async def batch(request: Request) -> Response:
    return await _ingest(request, None)


@router.post("/v1/m", include_in_schema=False)
async def sdk_metrics(request: Request) -> Response:
    """analytics-next reports its own delivery metrics here: not customer events."""
    await request.body()
    return JSONResponse({"success": True})


def _single_endpoint(kind: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return await _ingest(request, kind)

    endpoint.__name__ = f"ingest_{kind}"
    return endpoint


for _path, _kind in _SINGLE.items():
    router.add_api_route(
        f"/v1/{_path}",
        _single_endpoint(_kind),
        methods=["POST"],
        summary=f"Send one {_kind} message",
        include_in_schema=len(_path) > 1,
    )


class IngestFastPath:
    """`POST /v1/batch` from a server-side SDK, answered without the framework's layers.

    The most frequent request there is: authenticated by header, plain JSON, no browser
    origin. Anything else — or anything unusual about the body — is handed, body and
    all, to the regular route, which owns every error message.
    """

    PATHS = frozenset({"/v1/batch", "/v1/b"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization")
        if auth is None or b"origin" in headers or b"content-encoding" in headers:
            await self.app(scope, receive, send)
            return
        state: ServerState = scope["app"].state.opencx
        settings = state.settings
        body = bytearray()
        more = True
        while more and len(body) <= settings.max_batch_bytes:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left mid-body: no one to answer, nothing whole to keep
            body += message.get("body", b"")
            more = message.get("more_body", False)
        batch: PreparedBatch | None = None
        try:
            source = self._source(state, auth.decode("latin-1"), more, len(body))
            if source is not None:
                batch = await state.ingestor.prepare_body(bytes(body), source, now_us())
        except Exception:  # never fail here: the regular route answers properly
            log.exception("ingestion fast path failed; using the regular route")
            batch = None
        if batch is None:
            await self.app(scope, replaying(bytes(body), receive, more=more), send)
            return
        try:
            result = await _commit(state, batch)
        except OpenCXError as exc:
            status, payload = exc.status_code, {"error": {"type": type(exc).__name__,
                                                          "message": exc.message}}  # fmt: skip
        else:
            status, payload = 200, _summary(result)
        data = orjson.dumps(payload)
        length = str(len(data)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", length)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    @staticmethod
    def _source(state: ServerState, auth: str, more: bool, size: int) -> SourceContext | None:
        """The sending source, if this request may take the fast path at all."""
        settings = state.settings
        if more or size > settings.max_batch_bytes:
            return None
        if state.ingestor.writer.backlog > settings.max_queued_events:
            return None
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            key = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
        source = state.source(key) if key else None
        if source is None:
            return None
        return SourceContext(source.name, source.channel, origin="api")
