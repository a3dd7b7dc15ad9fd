"""The fast lane of validation: well-formed messages decoded by msgspec in C.

A batch body is split into raw messages without building Python objects for them;
each message is decoded into a typed struct whose `properties` and `context` stay raw
JSON bytes (stored as they came, never parsed and re-serialised). A message that is
anything but plainly valid — a wrong type, a missing field, an unusual timestamp —
leaves the fast lane and goes through `MessageValidator.validate_into`, which owns
every error message, so both lanes accept and reject exactly the same messages.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgspec
import orjson

from opencx.ingest._validate import (
    _CHANNELS,
    CHECKED_EVENTS,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_TIMESTAMP_US,
    MAX_USER_ID_CHARS,
    MIN_TIMESTAMP_US,
    MessageValidator,
    SourceContext,
    ValidatedBatch,
    parse_timestamp,
)

_NULL = msgspec.Raw(b"null")
_EMPTY = (b"null", b"{}")


class Envelope(msgspec.Struct):  # field names are Segment's wire names
    """A `/v1/batch` body: the messages stay raw until each is decoded on its own."""

    batch: list[msgspec.Raw]
    sentAt: Any = None
    writeKey: Any = None


# Typed in C: a value of another type fails the decode and takes the tolerant path.
class _Context(msgspec.Struct):
    channel: str | None = None
    traits: dict[str, Any] | None = None
    externalIds: list[Any] | None = None


class _Message(msgspec.Struct):
    type: str | None = None
    messageId: str | None = None
    userId: str | None = None
    anonymousId: str | None = None
    event: str | None = None
    name: str | None = None
    groupId: str | None = None
    previousId: str | None = None
    timestamp: str | None = None
    originalTimestamp: str | None = None
    sentAt: str | None = None
    properties: msgspec.Raw = _NULL
    traits: dict[str, Any] | None = None
    context: msgspec.Raw = _NULL


_envelope = msgspec.json.Decoder(Envelope)
_message = msgspec.json.Decoder(_Message)
_context = msgspec.json.Decoder(_Context)


def decode_envelope(body: bytes) -> Envelope | None:
    """The batch envelope, or None when the body needs the tolerant path to explain it."""
    try:
        return _envelope.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None


def _plain_id(value: Any) -> bool:
    return (
        type(value) is str
        and 0 < len(value) <= MAX_USER_ID_CHARS
        and not value[0].isspace()
        and not value[-1].isspace()
        and "\x00" not in value
    )


class FastValidator:
    """Validates raw messages, taking the C fast lane whenever a message is plainly valid."""

    def __init__(self, validator: MessageValidator) -> None:
        self.validator = validator
        self._sent: tuple[Any, int | None] = (None, None)
        self._ts_cache: dict[str, int] = {}

    def _time(self, value: Any) -> int | None:
        """Epoch µs of an ISO string, or None if it needs the tolerant path."""
        if type(value) is not str:
            return None
        cache = self._ts_cache
        hit = cache.get(value)
        if hit is not None:
            return hit
        try:
            micros = parse_timestamp(value)
        except (ValueError, OverflowError):
            return None
        if len(cache) > 10_000:
            cache.clear()
        cache[value] = micros
        return micros

    def validate_all(
        self,
        raws: Sequence[bytes],
        source: SourceContext,
        received_us: int,
        batch_sent_at: Any = None,
        default_type: str | None = None,
    ) -> ValidatedBatch:
        """Raw JSON messages, as cut from a request body, validated into one batch."""
        batch = ValidatedBatch()
        for index, raw in enumerate(raws):
            self.validate_raw(
                batch, raw, index=index, source=source, received_us=received_us,
                batch_sent_at=batch_sent_at, default_type=default_type,
            )  # fmt: skip
        return batch

    def validate_raw(
        self,
        batch: ValidatedBatch,
        raw: bytes,
        *,
        index: int,
        source: SourceContext,
        received_us: int,
        batch_sent_at: Any = None,
        default_type: str | None = None,
    ) -> bool:
        """Append one raw message to `batch` (fast lane) or hand it to the tolerant path."""
        data = bytes(raw)
        if self._accept(batch, data, source, received_us, batch_sent_at, default_type):
            return True
        try:
            message: Any = orjson.loads(data)
        except orjson.JSONDecodeError:
            try:  # numbers beyond 64 bits are valid JSON that orjson refuses
                message = json.loads(data)
            except (ValueError, RecursionError):
                message = data.decode("utf-8", "replace")
        return self.validator.validate_into(
            batch,
            message,
            index=index,
            source=source,
            received_us=received_us,
            batch_sent_at=batch_sent_at,
            default_type=default_type,
        )

    def _accept(
        self,
        batch: ValidatedBatch,
        raw: bytes,
        source: SourceContext,
        received: int,
        batch_sent_at: Any,
        default_type: str | None,
    ) -> bool:
        if len(raw) > self.validator.max_event_bytes:
            return False
        try:
            m = _message.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            return False
        kind = m.type if m.type is not None else default_type
        message_id = m.messageId
        if kind is None or message_id is None:
            return False
        if not message_id.strip() or len(message_id) > MAX_ID_CHARS:
            return False
        kind = kind.lower()
        user_id, anonymous_id = m.userId, m.anonymousId
        if user_id is not None and not _plain_id(user_id):
            return False
        if anonymous_id is not None and not _plain_id(anonymous_id):
            return False
        event_name = None
        group_id = previous_id = None
        if kind == "track":
            event_name = m.event
            if event_name is None or not event_name.strip():
                return False
            if len(event_name) > MAX_NAME_CHARS:
                return False
            if event_name in CHECKED_EVENTS:
                return False  # properties have rules: the tolerant path checks them
        elif kind == "page" or kind == "screen":
            event_name = m.name
            if event_name is None:
                if bytes(m.properties) not in _EMPTY:
                    return False  # the name may be in properties: tolerant path
            elif len(event_name) > MAX_NAME_CHARS:
                return False
        elif kind == "identify":
            pass
        elif kind == "group":
            group_id = m.groupId
            if not _plain_id(group_id):
                return False
        elif kind == "alias":
            previous_id = m.previousId
            if not _plain_id(previous_id) or user_id is None:
                return False
        else:
            return False
        traits = m.traits
        channel = source.channel
        context_traits = external_ids = None
        context_raw = bytes(m.context)
        if context_raw not in _EMPTY:
            try:
                ctx = _context.decode(context_raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return False
            if ctx.channel is not None:
                if ctx.channel.lower() not in _CHANNELS:
                    return False
                channel = ctx.channel.lower()
            context_traits = ctx.traits
            external_ids = ctx.externalIds
        ts_raw = m.timestamp if m.timestamp is not None else m.originalTimestamp
        original = None
        if ts_raw is not None:
            original = self._time(ts_raw)
            if original is None:
                return False
        if m.sentAt is not None:
            sent_at = self._time(m.sentAt)
            if sent_at is None:
                return False
        elif batch_sent_at is not None:
            if batch_sent_at is not self._sent[0]:
                self._sent = (batch_sent_at, self._time(batch_sent_at))
            sent_at = self._sent[1]
            if sent_at is None:
                return False
        else:
            sent_at = None
        if original is not None and sent_at is not None:
            timestamp = received - (sent_at - original)
            if not MIN_TIMESTAMP_US <= timestamp < MAX_TIMESTAMP_US:
                timestamp = original
        else:
            timestamp = original if original is not None else received
        extractor = self.validator.extractor
        if kind == "alias":
            keys = extractor.keys(user_id, previous_id, (), None)
        else:
            keys = extractor.keys(user_id, anonymous_id, (traits, context_traits), external_ids)
        if not keys and user_id is None and anonymous_id is None:
            return False
        merged = traits
        if context_traits:
            merged = {**context_traits, **traits} if traits else context_traits
        try:
            traits_json = orjson.dumps(merged, option=orjson.OPT_NON_STR_KEYS) if merged else None
        except orjson.JSONEncodeError:
            return False
        properties_raw = bytes(m.properties)
        if properties_raw not in _EMPTY and not properties_raw.lstrip().startswith(b"{"):
            return False
        batch.add(
            message_id, kind, event_name, channel, source.name, anonymous_id, user_id,
            group_id, previous_id, keys, timestamp, original, sent_at, received,
            None if properties_raw in _EMPTY else properties_raw, traits_json,
            None if context_raw in _EMPTY else context_raw,
        )  # fmt: skip
        return True
