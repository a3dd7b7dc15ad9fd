"""Validation and normalisation of Segment-spec messages: the ingestion hot path.

Hand-written on purpose: it runs for every event (tens of thousands per second on one
core), where a generic model costs several times more. Every error names the field,
the value's problem and what would be accepted.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from opencx.identity import IdentifierExtractor
from opencx.types import CHANNELS, EVENT_TYPES

MAX_ID_CHARS = 100
MAX_USER_ID_CHARS = 255
MAX_NAME_CHARS = 200
MIN_TIMESTAMP_US = 0  # 1970-01-01
MAX_TIMESTAMP_US = calendar.timegm((2100, 1, 1, 0, 0, 0)) * 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_CHANNELS = frozenset(CHANNELS)
# Fields the size estimate measures as stored; any other field counts at its sent size.
_MEASURED_FIELDS = frozenset({"properties", "traits", "context"})
_TYPES = frozenset(EVENT_TYPES)
# A lone surrogate (`"\ud800"`) is JSON Python's parser accepts but no UTF-8 column can hold.
_SURROGATE = re.compile("[\ud800-\udfff]")
_KNOWN_FIELDS = frozenset(
    {
        "type", "messageId", "userId", "anonymousId", "event", "name", "category", "groupId",
        "previousId", "properties", "traits", "context", "timestamp", "originalTimestamp",
        "sentAt", "receivedAt", "integrations", "channel", "version", "writeKey", "_metadata",
        "request_id",
    }
)  # fmt: skip


def derived_message_id(source: str, message: Mapping[str, Any]) -> str:
    """A deterministic id for a message sent without one: the same message gets the same id."""
    body = orjson.dumps(message, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return "opencx-" + hashlib.blake2b(source.encode() + b"\0" + body, digest_size=16).hexdigest()


def parse_timestamp(value: Any) -> int:
    """Epoch microseconds (UTC) from an ISO 8601 string or epoch seconds/milliseconds.

    Tolerant: with or without fractional seconds, `Z`, an offset or a zone at all
    (no zone means UTC), a space instead of `T`, or a plain date. Raises ValueError.
    """
    if isinstance(value, bool):
        raise ValueError("expected an ISO 8601 string, got a boolean")
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("expected an ISO 8601 string, got a non-finite number")
        seconds = value / 1000 if abs(value) >= 100_000_000_000 else value
        micros = round(seconds * 1_000_000)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("expected an ISO 8601 string, got an empty string")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = _parse_loose(text)
        if not isinstance(parsed, datetime):
            parsed = datetime(parsed.year, parsed.month, parsed.day)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        micros = (parsed - _EPOCH) // _MICROSECOND
    else:
        raise ValueError(f"expected an ISO 8601 string, got {type(value).__name__}")
    if not MIN_TIMESTAMP_US <= micros < MAX_TIMESTAMP_US:
        raise ValueError("is outside the accepted range 1970-01-01 .. 2099-12-31")
    return micros


def _parse_loose(text: str) -> datetime | date:
    """Forms `fromisoformat` refuses but real clients send (`+0000`, >6 fraction digits)."""
    fixed = text.replace("z", "Z")
    if fixed.endswith(" UTC"):
        fixed = fixed[:-4] + "+00:00"
    head, dot, frac = fixed.partition(".")
    if dot:
        digits = len(frac) - len(frac.lstrip("0123456789"))
        fixed = f"{head}.{frac[:digits][:6].ljust(6, '0')}{frac[digits:]}"
    try:
        return datetime.fromisoformat(fixed)
    except ValueError:
        raise ValueError(
            f"{text[:40]!r} is not an ISO 8601 timestamp (e.g. 2026-11-24T10:15:00.000Z)"
        ) from None


@dataclass(slots=True)
class SourceContext:
    """Who sent a batch: the source's name and default channel, when and from where."""

    name: str
    channel: str
    origin: str = "api"


@dataclass(slots=True)
class ValidatedBatch:
    """Columns of the valid events of one request, and the failures, in arrival order."""

    message_id: list[str] = field(default_factory=list)
    type: list[str] = field(default_factory=list)
    event: list[str | None] = field(default_factory=list)
    channel: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    anonymous_id: list[str | None] = field(default_factory=list)
    user_id: list[str | None] = field(default_factory=list)
    group_id: list[str | None] = field(default_factory=list)
    previous_id: list[str | None] = field(default_factory=list)
    identifiers: list[list[str]] = field(default_factory=list)
    timestamp: list[int] = field(default_factory=list)
    original_timestamp: list[int | None] = field(default_factory=list)
    sent_at: list[int | None] = field(default_factory=list)
    received_at: list[int] = field(default_factory=list)
    # JSON as UTF-8 bytes: Arrow takes them as strings without a decode per event.
    properties: list[bytes | None] = field(default_factory=list)
    traits: list[bytes | None] = field(default_factory=list)
    context: list[bytes | None] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.message_id)

    def add(
        self,
        message_id: str,
        type: str,
        event: str | None,
        channel: str,
        source: str,
        anonymous_id: str | None,
        user_id: str | None,
        group_id: str | None,
        previous_id: str | None,
        identifiers: list[str],
        timestamp: int,
        original_timestamp: int | None,
        sent_at: int | None,
        received_at: int,
        properties: bytes | None,
        traits: bytes | None,
        context: bytes | None,
    ) -> None:
        """Append one valid event (both validation lanes end here)."""
        self.message_id.append(message_id)
        self.type.append(type)
        self.event.append(event)
        self.channel.append(channel)
        self.source.append(source)
        self.anonymous_id.append(anonymous_id)
        self.user_id.append(user_id)
        self.group_id.append(group_id)
        self.previous_id.append(previous_id)
        self.identifiers.append(identifiers)
        self.timestamp.append(timestamp)
        self.original_timestamp.append(original_timestamp)
        self.sent_at.append(sent_at)
        self.received_at.append(received_at)
        self.properties.append(properties)
        self.traits.append(traits)
        self.context.append(context)


@dataclass(frozen=True, slots=True)
class Failure:
    """One rejected message, its raw payload and every reason, for `failed_events`."""

    index: int
    message_id: str | None
    payload: str
    errors: list[dict[str, str]]
    source: str | None
    origin: str
    received_at: int
    row_number: int | None = None

    def summary(self) -> dict[str, Any]:
        return {"index": self.index, "messageId": self.message_id, "errors": self.errors}


class MessageValidator:
    """Validates and normalises Segment messages into `ValidatedBatch` columns."""

    def __init__(self, extractor: IdentifierExtractor, max_event_bytes: int = 32 * 1024) -> None:
        self.extractor = extractor
        self.max_event_bytes = max_event_bytes
        self._batch_sent: tuple[Any, int | None, str | None] = (None, None, None)

    def validate_into(
        self,
        batch: ValidatedBatch,
        message: Any,
        *,
        index: int,
        source: SourceContext,
        received_us: int,
        batch_sent_at: Any = None,
        default_type: str | None = None,
        row_number: int | None = None,
    ) -> bool:
        """Append `message` to `batch` if valid, else record a Failure. True if accepted."""
        errors: list[dict[str, str]] = []

        def err(name: str, problem: str) -> None:
            errors.append({"field": name, "message": f"{name} {problem}"})

        if not isinstance(message, dict):
            err("message", f"must be a JSON object, got {_kind(message)}")
            return _reject(batch, index, None, message, errors, source, received_us, row_number)
        get = message.get

        kind = get("type", default_type)
        if isinstance(kind, str):
            kind = kind.lower()
        if not isinstance(kind, str) or kind not in _TYPES:  # an object or array is unhashable
            err("type", f"must be one of {', '.join(EVENT_TYPES)}, got {_short(kind)}")

        message_id = get("messageId")
        if message_id is None:
            message_id = derived_message_id(source.name, message)
        elif isinstance(message_id, (int, float)) and not isinstance(message_id, bool):
            message_id = str(message_id)
        if not isinstance(message_id, str) or not message_id.strip():
            err("messageId", f"must be a non-empty string, got {_short(message_id)}")
            message_id = None
        elif len(message_id) > MAX_ID_CHARS:
            err("messageId", f"must be at most {MAX_ID_CHARS} characters, got {len(message_id)}")
        elif _unencodable(message_id):
            err("messageId", "must be valid Unicode text (it holds a lone UTF-16 surrogate)")
            message_id = None

        user_id = _id_field(get("userId"), "userId", err)
        anonymous_id = _id_field(get("anonymousId"), "anonymousId", err)

        properties = _object_field(get("properties"), "properties", err)
        traits = _object_field(get("traits"), "traits", err)
        context = _object_field(get("context"), "context", err)
        context_traits = None
        channel = source.channel
        external_ids = None
        if context:
            context_traits = _object_field(context.get("traits"), "context.traits", err)
            ch = context.get("channel")
            if ch is not None:
                if isinstance(ch, str) and ch.lower() in _CHANNELS:
                    channel = ch.lower()
                elif ch != "server" and ch != "client" and ch != "browser" and ch != "mobile":
                    err(
                        "context.channel", f"must be one of {', '.join(CHANNELS)}, got {_short(ch)}"
                    )
            external_ids = context.get("externalIds")

        event_name = None
        group_id = previous_id = None
        if kind == "track":
            event_name = get("event")
            if not isinstance(event_name, str) or not event_name.strip():
                err(
                    "event",
                    f"is required for a track call (the action's name), got {_short(event_name)}",
                )
            elif len(event_name) > MAX_NAME_CHARS:
                err("event", f"must be at most {MAX_NAME_CHARS} characters, got {len(event_name)}")
            elif _unencodable(event_name):
                err("event", "must be valid Unicode text (it holds a lone UTF-16 surrogate)")
            elif event_name in CHECKED_EVENTS:
                check_survey_answer(properties, err)
        elif kind in ("page", "screen"):
            event_name = get("name")
            if event_name is None and properties:
                event_name = properties.get("name")
            if event_name is not None and not isinstance(event_name, str):
                err("name", f"must be a string, got {_kind(event_name)}")
            elif event_name is not None and len(event_name) > MAX_NAME_CHARS:
                err("name", f"must be at most {MAX_NAME_CHARS} characters, got {len(event_name)}")
            elif event_name is not None and _unencodable(event_name):
                err("name", "must be valid Unicode text (it holds a lone UTF-16 surrogate)")
        elif kind == "group":
            group_id = _id_field(get("groupId"), "groupId", err)
            if group_id is None:
                err("groupId", "is required for a group call")
        elif kind == "alias":
            previous_id = _id_field(get("previousId"), "previousId", err)
            if previous_id is None:
                err("previousId", "is required for an alias call")
            if user_id is None:
                err("userId", "is required for an alias call")

        received = received_us
        ts_raw = get("timestamp")
        if ts_raw is None:
            ts_raw = get("originalTimestamp")
        original = _time_field(ts_raw, "timestamp", err)
        sent_raw = get("sentAt")
        if sent_raw is not None or batch_sent_at is None:
            sent_at = _time_field(sent_raw, "sentAt", err)
        else:  # the batch's sentAt, parsed once per batch
            if batch_sent_at is not self._batch_sent[0]:
                self._batch_sent = (batch_sent_at, *_parse_or_error(batch_sent_at))
            sent_at, sent_error = self._batch_sent[1], self._batch_sent[2]
            if sent_error is not None:
                err("sentAt", sent_error)
        if original is not None and sent_at is not None:
            timestamp = received - (sent_at - original)  # device clock skew corrected
            if not MIN_TIMESTAMP_US <= timestamp < MAX_TIMESTAMP_US:
                timestamp = original
        elif original is not None:
            timestamp = original
        else:
            timestamp = received

        if errors:
            return _reject(
                batch, index, message_id, message, errors, source, received_us, row_number
            )

        traits_bags = (traits, context_traits)
        if kind == "alias":
            keys = self.extractor.keys(user_id, previous_id, (), None)
        else:
            keys = self.extractor.keys(user_id, anonymous_id, traits_bags, external_ids)
        if user_id is None and anonymous_id is None and not keys:
            err(
                "userId",
                "or anonymousId (or an identifying trait: email, phone, "
                f"{', '.join(self.extractor.external) or 'an external id'}) is required",
            )
        merged_traits = traits
        if context_traits:
            merged_traits = {**context_traits, **traits} if traits else context_traits
        props_json = _dumps(properties, "properties", err)
        traits_json = _dumps(merged_traits, "traits", err)
        context_json = _dumps(context, "context", err)
        size = (
            len(props_json or b"") + len(traits_json or b"") + len(context_json or b"")
            + len(event_name or "") + len(message_id) + 200
        )  # fmt: skip
        for name in message.keys() - _MEASURED_FIELDS:  # e.g. a bloated `integrations`
            value = message[name]
            if value and not isinstance(value, (int, float)):
                size += len(value) if type(value) is str else len(_dump_raw(value))
        if size > self.max_event_bytes:
            size = len(orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS))
            if size > self.max_event_bytes:
                err("message", f"is {size} bytes; an event may be at most {self.max_event_bytes}")
        if errors:
            return _reject(
                batch, index, message_id, message, errors, source, received_us, row_number
            )

        batch.add(
            message_id, kind, event_name, channel, source.name, anonymous_id, user_id,  # type: ignore[arg-type]
            group_id, previous_id, keys, timestamp, original, sent_at, received, props_json,
            traits_json, context_json,
        )  # fmt: skip
        return True


# Survey answers feed every KPI: a score out of its scale is refused, not stored.
SCORE_RANGES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
CHECKED_EVENTS = frozenset({"Survey Responded"})


def check_survey_answer(properties: Mapping[str, Any] | None, err: Any) -> None:
    """`Survey Responded` needs a known `survey_type` and a whole `score` on its scale."""
    props = properties or {}
    kind = props.get("survey_type")
    if not isinstance(kind, str) or kind.lower() not in SCORE_RANGES:
        err(
            "properties.survey_type",
            f"must be one of {', '.join(SCORE_RANGES)}, got {_short(kind)}",
        )
        return
    low, high = SCORE_RANGES[kind.lower()]
    score = props.get("score")
    if isinstance(score, str) and score.strip().lstrip("-").isdigit():
        score = int(score)
    if isinstance(score, float) and score.is_integer():
        score = int(score)
    if isinstance(score, bool) or not isinstance(score, int):
        err("properties.score", f"must be a whole number from {low} to {high}, got {_short(score)}")
    elif not low <= score <= high:
        err("properties.score", f"{score} is out of range for {kind.lower()} ({low}-{high})")


def _reject(
    batch: ValidatedBatch,
    index: int,
    message_id: str | None,
    message: Any,
    errors: list[dict[str, str]],
    source: SourceContext,
    received_us: int,
    row_number: int | None,
) -> bool:
    """Keep a rejected message, its raw payload and every reason; always False."""
    batch.failures.append(
        Failure(index, message_id, _dump_raw(message), errors, source.name, source.origin,
                received_us, row_number)
    )  # fmt: skip
    return False


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _short(value: Any) -> str:
    if isinstance(value, str):
        return repr(value[:40] + ("…" if len(value) > 40 else ""))
    return _kind(value)


def _id_field(value: Any, name: str, err: Any) -> str | None:
    if value is None:
        return None
    if (
        type(value) is str
        and 0 < len(value) <= MAX_USER_ID_CHARS
        and not value[0].isspace()
        and not value[-1].isspace()
        and "\x00" not in value
        and not _unencodable(value)
    ):
        return value  # the common case, checked cheaply
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value or value in (float("inf"), float("-inf")):
            err(name, "must be a string, got a non-finite number")
            return None
        value = str(int(value)) if float(value).is_integer() else str(value)
    if not isinstance(value, str):
        err(name, f"must be a string, got {_kind(value)}")
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_USER_ID_CHARS:
        err(name, f"must be at most {MAX_USER_ID_CHARS} characters, got {len(value)}")
        return None
    if "\x00" in value:
        err(name, "must not contain NUL characters")
        return None
    if _unencodable(value):
        err(name, "must be valid Unicode text (it holds a lone UTF-16 surrogate)")
        return None
    return value


def _unencodable(text: str) -> bool:
    """True if `text` cannot be stored as UTF-8 (cheap for ASCII, the usual case)."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def _object_field(value: Any, name: str, err: Any) -> dict[str, Any] | None:
    if value is None or type(value) is dict:
        return value
    if not isinstance(value, dict):
        err(name, f"must be a JSON object, got {_kind(value)}")
        return None
    return value


def _parse_or_error(value: Any) -> tuple[int | None, str | None]:
    try:
        return parse_timestamp(value), None
    except ValueError as exc:
        return None, str(exc)
    except OverflowError:
        return None, "is outside the accepted range 1970-01-01 .. 2099-12-31"


def _time_field(value: Any, name: str, err: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        err(name, str(exc))
        return None
    except OverflowError:
        err(name, "is outside the accepted range 1970-01-01 .. 2099-12-31")
        return None


def _dumps(value: dict[str, Any] | None, name: str, err: Any) -> bytes | None:
    if not value:
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        err(name, f"cannot be stored: {exc}")
        return None


def _dump_raw(message: Any) -> str:
    try:
        return orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        # Still JSON, as replay reads it: lone surrogates escaped, big integers whole.
        return json.dumps(message, default=repr)
