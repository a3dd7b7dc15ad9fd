"""The C fast lane accepts and rejects exactly what the tolerant validator does."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from opencx.config import load_settings
from opencx.identity import IdentifierExtractor
from opencx.ingest import FastValidator, MessageValidator, SourceContext, ValidatedBatch

SOURCE = SourceContext("web", "web")
RECEIVED = 1_790_000_000_000_000
KINDS = ["track", "identify", "page", "screen", "group", "alias", "TRACK", "nope", None]
IDS = ["m-1", "ajs-next-1700000000000-2f0c", "", " ", "z" * 120]
COLUMNS = (
    "message_id", "type", "event", "channel", "source", "anonymous_id", "user_id", "group_id",
    "previous_id", "identifiers", "timestamp", "original_timestamp", "sent_at", "received_at",
)  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", " ", "u-1", " padded ", "null", "a" * 300, "x@y.io", "2026-11-20"]),
)  # fmt: skip
timestamps = st.one_of(
    st.none(), st.integers(0, 4_000_000_000_000),
    st.sampled_from([
        "2026-11-20T10:15:00.123Z", "2026-11-20T10:15:00Z", "2026-11-20 10:15:00",
        "2026-11-20T10:15:00+0200", "2026-11-20T10:15:00.1234567Z", "0001-01-01T00:00:00Z",
        "yesterday", "", "2026-11-20",
    ]),
)  # fmt: skip
objects = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["email", "phone", "plan", "name", "account_number"]), scalars),
    st.lists(scalars, max_size=2),
    scalars,
)


contexts = st.fixed_dictionaries(
    {},
    optional={
        "channel": st.sampled_from(["app", "PHONE", "server", "mars", 3]),
        "traits": objects,
        "externalIds": st.just([{"id": "ACC-1", "type": "account_number"}]),
    },
)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = {}
    for name, values in (
        ("type", st.sampled_from(KINDS)),
        ("messageId", st.one_of(st.none(), st.sampled_from(IDS), st.integers(0, 9))),
        ("userId", scalars),
        ("anonymousId", scalars),
        ("event", scalars),
        ("name", scalars),
        ("groupId", scalars),
        ("previousId", scalars),
        ("timestamp", timestamps),
        ("sentAt", timestamps),
        ("properties", objects),
        ("traits", objects),
        ("context", st.one_of(objects, contexts)),
    ):  # fmt: skip
        value = draw(values)
        if value is not None or draw(st.booleans()):
            message[name] = value
    return message


def _columns(batch: ValidatedBatch) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(batch, name) for name in COLUMNS}
    for name in ("properties", "traits", "context"):
        out[name] = [orjson.loads(v) if v is not None else None for v in getattr(batch, name)]
    out["failures"] = [(f.index, f.message_id, f.errors) for f in batch.failures]
    return out


@settings(max_examples=400, deadline=None)
@given(st.lists(messages(), min_size=1, max_size=5), timestamps)
def test_fast_lane_matches_the_tolerant_validator(batch: list[dict[str, Any]], sent: Any) -> None:
    extractor = IdentifierExtractor(load_settings().identity)
    slow_validator = MessageValidator(extractor)
    fast_validator = FastValidator(MessageValidator(extractor))
    slow, fast = ValidatedBatch(), ValidatedBatch()
    for i, message in enumerate(batch):
        slow_validator.validate_into(
            slow, message, index=i, source=SOURCE, received_us=RECEIVED, batch_sent_at=sent
        )
        fast_validator.validate_raw(
            fast, orjson.dumps(message), index=i, source=SOURCE, received_us=RECEIVED,
            batch_sent_at=sent,
        )  # fmt: skip
    assert _columns(fast) == _columns(slow)


def test_plain_messages_take_the_fast_lane_and_keep_properties_as_sent() -> None:
    validator = FastValidator(MessageValidator(IdentifierExtractor(load_settings().identity)))
    raw = b'{"type":"track","event":"Bill Paid","messageId":"m1","userId":"u1",' \
          b'"properties":{"amount": 42.5},"context":{"channel":"app"}}'  # fmt: skip
    batch = ValidatedBatch()
    assert validator._accept(batch, raw, SOURCE, RECEIVED, None, None)
    assert batch.properties == [b'{"amount": 42.5}']
    assert batch.channel == ["app"]
    assert batch.identifiers == [["user_id:u1"]]
