"""Ingestion payloads fuzzed over HTTP: never a 5xx, every refusal explained and kept,
every valid event around it stored exactly once."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opencx.access import add_source
from opencx.api import create_app
from opencx.config import load_settings
from opencx.store import Store
from tests.conftest import basic_auth

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_batches = itertools.count(1)


@dataclass
class Server:
    client: TestClient
    store: Store
    auth: dict[str, str]
    sent_before: list[dict[str, Any]] = field(default_factory=list)
    """Valid messages accepted by earlier examples, to re-send as cross-batch duplicates."""

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        return self.store.con.execute(sql, params or []).fetchall()[0][0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    app_settings = load_settings(
        db=tmp_path_factory.mktemp("fuzz") / "opencx.duckdb", profiles_refresh_s=0,
        orchestrate_every_s=0, segments_every_s=0, voc_every_s=0,
    )  # fmt: skip
    with Store() as store:
        _, key = add_source(store.con, "web", "web")
        with TestClient(create_app(app_settings, store), raise_server_exceptions=False) as c:
            yield Server(c, store, basic_auth(key))


# -- what is sent ------------------------------------------------------------------------
json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30)
json_leaf |= st.floats(allow_nan=False, allow_infinity=False)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
names = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"]),
    min_size=1,
    max_size=40,
)
# "name" in a page's properties is its name, with rules of its own.
keys = st.text(max_size=12).filter(lambda k: k != "name")
valid_timestamps = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2098, 12, 31),
    timezones=st.sampled_from([timezone(timedelta(hours=h)) for h in (-12, -5, 0, 3, 14)]),
).map(lambda d: d.isoformat())


@st.composite
def valid_messages(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["track", "identify", "page", "screen", "group"]))
    message: dict[str, Any] = {"type": kind, "anonymousId": draw(names)}
    if draw(st.booleans()):
        message["userId"] = draw(names)
    if kind == "track":
        message["event"] = draw(names)
    if kind in ("page", "screen") and draw(st.booleans()):
        message["name"] = draw(names)
    if kind == "group":
        message["groupId"] = draw(names)
    if draw(st.booleans()):
        message["properties"] = draw(st.dictionaries(keys, json_value, max_size=5))
    if draw(st.booleans()):
        message["traits"] = draw(st.dictionaries(keys, json_value, max_size=3))
    if draw(st.booleans()):  # identifying traits of any shape: never a reason to refuse
        message.setdefault("traits", {})["email"] = draw(
            json_leaf | names.map(lambda n: n + "@x.io")
        )
    if draw(st.booleans()):
        message["timestamp"] = draw(valid_timestamps)
    if draw(st.booleans()):  # unknown fields are kept, not refused
        message[draw(st.sampled_from(["fooBar", "extra", "écrit"]))] = draw(json_leaf)
    return message


NAN, INF = float("nan"), float("inf")
# (field, bad value): each makes an otherwise valid track call invalid, on that field.
BAD_FIELDS: list[tuple[str, Any]] = [
    ("type", 5), ("type", []), ("type", {}), ("type", "bogus"), ("type", None),
    ("messageId", []), ("messageId", {"a": 1}), ("messageId", True), ("messageId", ""),
    ("messageId", "   "), ("messageId", "m" * 101),
    ("userId", {}), ("userId", [1]), ("userId", True), ("userId", "u" * 256),
    ("userId", "a\x00b"), ("userId", NAN), ("userId", INF),
    ("anonymousId", {"x": []}), ("anonymousId", NAN),
    ("event", None), ("event", 5), ("event", ""), ("event", "e" * 201), ("event", ["x"]),
    ("properties", []), ("properties", "text"), ("properties", 5), ("properties", True),
    ("traits", [1, 2]), ("context", "ctx"), ("context", {"channel": "fax"}),
    ("context", {"channel": 7}), ("context", {"traits": []}),
    ("timestamp", "0000-01-01T00:00:00Z"), ("timestamp", "9999-12-31T23:59:59Z"),
    ("timestamp", "2026-01-01T00:00:00+99:00"), ("timestamp", "2026-11-24T10:00:00+24:00"),
    ("timestamp", "0001-01-01T00:00:00+14:00"), ("timestamp", "9999-12-31T23:59:59-23:59"),
    ("timestamp", "2026-13-45"), ("timestamp", "yesterday"), ("timestamp", NAN),
    ("timestamp", INF), ("timestamp", -INF), ("timestamp", 1e300), ("timestamp", -1e300),
    ("timestamp", True), ("timestamp", []), ("timestamp", 10**30), ("sentAt", "9999-01-01"),
    ("sentAt", {"when": "now"}),
    ("properties", {"blob": "x" * 40_000}), ("userId", "\ud800"), ("event", "ok\udfff"),
    ("anonymousId", "\udc00x"), ("properties", {"k": "\ud800"}), ("traits", {"\udbff": 1}),
    ("properties", {"survey_type": "nps", "score": NAN}),
]  # fmt: skip


def _one_invalid(
    name: str, bad: Any, event: str = "Fuzzed", user: str = "u"
) -> tuple[dict[str, Any], str]:
    """A track call with `name` set to `bad` (None: left out), and the field to be named."""
    message: dict[str, Any] = {"type": "track", "event": event, "userId": user}
    if name == "properties" and isinstance(bad, dict) and "survey_type" in bad:
        message["event"] = "Survey Responded"
    if bad is None:
        message.pop(name, None)
    else:
        message[name] = bad
    expected = name
    if name == "properties" and isinstance(bad, dict):
        expected = "message" if "blob" in bad else "properties.score"
        expected = "properties" if "k" in bad else expected
    elif name == "context" and isinstance(bad, dict):
        expected = "context.traits" if "traits" in bad else "context.channel"
    return message, expected


@st.composite
def invalid_messages(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A track call with one field made invalid, and the field the refusal must name."""
    name, bad = draw(st.sampled_from(BAD_FIELDS))
    return _one_invalid(name, bad, draw(names), draw(names))


@dataclass
class Planned:
    message: dict[str, Any]
    outcome: str
    """stored | duplicate | refused."""
    field: str | None = None


Draft = tuple[str, Any, str | None]
"""(valid | invalid | repeat, the message or which earlier one to repeat, the bad field)."""

drafts = st.one_of(
    valid_messages().map(lambda m: ("valid", m, None)),
    invalid_messages().map(lambda m: ("invalid", m[0], m[1])),
    st.integers(0, 19).map(lambda k: ("repeat", k, None)),
)


def plan_batch(drawn: list[Draft], sent_before: list[dict[str, Any]]) -> list[Planned]:
    """The drafts with ids of their own, and each repeat resolved (outside the strategy,
    which must not depend on what earlier examples stored)."""
    prefix = f"fz{next(_batches)}"
    plan: list[Planned] = []
    for i, (kind, value, bad_field) in enumerate(drawn):
        pool = [p.message for p in plan if p.outcome == "stored"] + sent_before[-20:]
        if kind == "repeat" and pool:
            plan.append(Planned(dict(pool[value % len(pool)]), "duplicate"))
        elif kind == "invalid":
            message = dict(value)
            if bad_field != "messageId":
                message["messageId"] = f"{prefix}-{i}"
            plan.append(Planned(message, "refused", bad_field))
        else:
            message = value if kind == "valid" else {"type": "identify", "userId": "u"}
            plan.append(Planned({**message, "messageId": f"{prefix}-{i}"}, "stored"))
    return plan


def _encode(value: Any) -> str:
    """JSON as a client might send it: NaN and Infinity as the literals JavaScript writes."""
    return json.dumps(value, allow_nan=True)


def _error_body_ok(body: Any) -> bool:
    return isinstance(body, dict) and bool(body.get("error", {}).get("message", "").strip())


# -- the properties ------------------------------------------------------------------------
def _check_outcomes(server: Server, plan: list[Planned], response: Any, failed_before: int) -> None:
    assert response.status_code == 200, response.text[:500]
    result = response.json()
    refused = [i for i, p in enumerate(plan) if p.outcome == "refused"]
    stored = [p.message["messageId"] for p in plan if p.outcome == "stored"]
    duplicates = sum(p.outcome == "duplicate" for p in plan)
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (
        len(stored), duplicates, len(refused)
    ), (result, plan)  # fmt: skip
    reasons = {e["index"]: e["errors"] for e in result.get("errors", [])}
    assert sorted(reasons) == refused
    for index in refused:
        fields = [r["field"] for r in reasons[index]]
        assert plan[index].field in fields, (plan[index], reasons[index])
        assert all(r["message"].startswith(r["field"]) for r in reasons[index])
    for message_id in stored:
        assert server.scalar("SELECT count(*) FROM events WHERE message_id = ?", [message_id]) == 1
    assert server.scalar("SELECT count(*) FROM failed_events") - failed_before == len(refused)
    kept = server.store.con.execute(
        "SELECT payload, errors FROM failed_events ORDER BY id DESC LIMIT ?", [len(refused) or 1]
    ).fetchall()[: len(refused)]
    sent = sorted(_encode(plan[i].message) for i in refused)
    kept_payloads = sorted(_encode(_nan_to_null(json.loads(payload))) for payload, _ in kept)
    # orjson writes NaN/Infinity as null: compare what survives a JSON round trip.
    assert kept_payloads == sorted(_encode(_nan_to_null(json.loads(s))) for s in sent)
    assert all(json.loads(errors) for _, errors in kept)
    server.sent_before.extend(
        plan[i].message for i in range(len(plan)) if plan[i].outcome == "stored"
    )


def _nan_to_null(value: Any) -> Any:
    if (isinstance(value, float) and value != value) or value in (INF, -INF):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**64:
        return float(value)  # beyond 64 bits a number is kept as a float
    if isinstance(value, dict):
        return {k: _nan_to_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_null(v) for v in value]
    return value


@FUZZ
@given(data=st.data())
def test_a_fuzzed_batch_keeps_every_valid_event_once_and_explains_every_refusal(
    server: Server, data: st.DataObject
) -> None:
    plan = plan_batch(data.draw(st.lists(drafts, min_size=1, max_size=8)), server.sent_before)
    failed_before = server.scalar("SELECT count(*) FROM failed_events")
    body = '{"batch": [' + ", ".join(_encode(p.message) for p in plan) + "]}"
    response = server.client.post("/v1/batch", content=body.encode(), headers=server.auth)
    _check_outcomes(server, plan, response, failed_before)


@FUZZ
@given(data=st.data())
def test_a_fuzzed_single_track_call_is_stored_once_or_refused_with_its_reason(
    server: Server, data: st.DataObject
) -> None:
    [planned] = plan_batch([data.draw(drafts)], server.sent_before)
    failed_before = server.scalar("SELECT count(*) FROM failed_events")
    body = _encode(planned.message).encode()
    response = server.client.post("/v1/track", content=body, headers=server.auth)
    if planned.field == "type" and planned.message.get("type") is None:
        planned.outcome, planned.field = "stored", None  # /v1/track supplies the type
    _check_outcomes(server, [planned], response, failed_before)


# -- bodies refused as a whole: a 4xx with a reason, the raw body kept ------------------
def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


WHOLE_BODY_REFUSALS = [
    b'{"batch": [{"type": "track", "event": "\xff\xfe", "userId": "u"}]}',
    b'{"batch": [{"type": "track", "event": "ok", "userId": "\xc3\x28"}]}',
    b"\xef\xbb\xbf\x00\x00{{{",
    b'{"batch": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
    ('{"batch": [{"type": "track", "event": "x", "userId": "u", "properties": '
     + _nested(50_000) + "}]}").encode(),
    # Deeper than any JSON parser here reads (1024 levels): the body as a whole is refused.
    ('{"batch": [{"type": "track", "event": "x", "userId": "u", "properties": '
     + _nested(1_500) + "}]}").encode(),
    b'{"batch": {"type": "track"}}',
    b"[1, 2, 3]",
    b'"just a string"',
    b"",
]  # fmt: skip


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/track"])
@pytest.mark.parametrize("body", WHOLE_BODY_REFUSALS, ids=range(len(WHOLE_BODY_REFUSALS)))
def test_an_unreadable_body_is_refused_with_a_reason_and_kept(
    server: Server, path: str, body: bytes
) -> None:
    failed_before = server.scalar("SELECT count(*) FROM failed_events")
    events_before = server.scalar("SELECT count(*) FROM events")
    response = server.client.post(path, content=body, headers=server.auth)
    assert 400 <= response.status_code < 500 or response.json()["rejected"] == 1, response.text
    if response.status_code >= 400:
        assert _error_body_ok(response.json()), response.text
    assert server.scalar("SELECT count(*) FROM failed_events") == failed_before + 1
    assert server.scalar("SELECT count(*) FROM events") == events_before


@pytest.mark.parametrize("depth", [10, 200, 300, 900])
def test_deep_nesting_in_one_event_spares_the_events_around_it(server: Server, depth: int) -> None:
    prefix = f"deep{depth}"
    deep = ('{"type": "track", "event": "Deep", "userId": "u", "messageId": "' + prefix
            + '-deep", "properties": ' + _nested(depth) + "}")  # fmt: skip
    around = [
        _encode({"type": "track", "event": "Around", "userId": "u", "messageId": f"{prefix}-{i}"})
        for i in (0, 1)
    ]
    body = '{"batch": [' + ", ".join([around[0], deep, around[1]]) + "]}"
    response = server.client.post("/v1/batch", content=body.encode(), headers=server.auth)
    assert response.status_code == 200, response.text[:300]
    result = response.json()
    for i in (0, 1):
        assert (
            server.scalar("SELECT count(*) FROM events WHERE message_id = ?", [f"{prefix}-{i}"])
            == 1
        )
    deep_stored = server.scalar(
        "SELECT count(*) FROM events WHERE message_id = ?", [f"{prefix}-deep"]
    )
    deep_refused = server.scalar(
        "SELECT count(*) FROM failed_events WHERE message_id = ?", [f"{prefix}-deep"]
    )
    assert (deep_stored, deep_refused) in ((1, 0), (0, 1))  # kept one way, never lost
    assert result["accepted"] + result["rejected"] == 3
    if deep_refused:
        assert result["errors"][0]["errors"][0]["field"] == "properties"


@pytest.mark.parametrize(
    ("name", "bad"), BAD_FIELDS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD_FIELDS)]
)
def test_every_kind_of_bad_field_is_refused_alone_between_two_valid_events(
    server: Server, name: str, bad: Any
) -> None:
    """Each bad value once, deterministically: the random runs may not draw them all."""
    message, expected = _one_invalid(name, bad)
    prefix = f"bad-{name}-{BAD_FIELDS.index((name, bad))}"
    if expected != "messageId":
        message["messageId"] = f"{prefix}-bad"
    plan = [
        Planned({"type": "page", "anonymousId": "a", "messageId": f"{prefix}-0"}, "stored"),
        Planned(message, "refused", expected),
        Planned({"type": "identify", "userId": "u", "messageId": f"{prefix}-1"}, "stored"),
    ]
    failed_before = server.scalar("SELECT count(*) FROM failed_events")
    body = '{"batch": [' + ", ".join(_encode(p.message) for p in plan) + "]}"
    response = server.client.post("/v1/batch", content=body.encode(), headers=server.auth)
    _check_outcomes(server, plan, response, failed_before)
