"""Consistency across touchpoints: each stage's KPI per channel, and the channel that lags."""

from __future__ import annotations

import doctest
from collections.abc import Iterator

import pytest

from opencx.errors import InvalidInput
from opencx.journeys import Touchpoint, TouchpointModel
from opencx.metrics import (
    AnswerStats,
    ConsistencyQuery,
    channel_consistency,
    consistency_expression,
    csat_difference,
    csat_estimate,
)
from opencx.metrics import consistency as consistency_module
from opencx.metrics.drivers import holm
from opencx.warehouse import Warehouse
from tests.metrics.conftest import answers
from tests.segments.conftest import warehouse_over

MODEL = TouchpointModel(
    touchpoints=(
        Touchpoint(id="billing@phone", name="Billing call", event="Call Ended", channel="phone",
                   stage="service"),
        Touchpoint(id="billing@chat", name="Billing chat", event="Chat Ended", channel="chat",
                   stage="service"),
        Touchpoint(id="billing@store", name="Billing desk", event="Store Visit", channel="store",
                   stage="service"),
        # No channel in the model: the answer's own channel says where it happened.
        Touchpoint(id="order", name="Order", event="Order Completed", stage="purchase"),
    )
)  # fmt: skip
CHAT = [5] * 61 + [2] * 39  # 61 of 100 satisfied
PHONE = [5] * 160 + [1] * 40  # 160 of 200
STORE = [4] * 8 + [1] * 2  # 8 of 10: below min_n, compared with nothing, pooled in the rest


def _csat(scores: list[int], touchpoint: str, channel: str, tag: str) -> list:  # type: ignore[type-arg]
    people = [f"{tag}{i}" for i in range(len(scores))]
    return answers("csat", scores, channel=channel, touchpoint=touchpoint, people=people)


@pytest.fixture(scope="module")
def warehouse() -> Iterator[Warehouse]:
    yield from warehouse_over(
        # Survey answers come by email or sms; the touchpoint's channel is what counts.
        _csat(CHAT, "billing@chat", "email", "c")
        + _csat(PHONE, "billing@phone", "sms", "p")
        + _csat(STORE, "billing@store", "email", "s")
        + _csat([5] * 40, "order", "web", "w")
        + _csat([5] * 20 + [1] * 20, "order", "app", "a")
        # Not a touchpoint of the model (a relationship survey): left out.
        + _csat([1] * 50, "relationship", "email", "r")
        + answers("nps", [10] * 40 + [0] * 10, touchpoint="billing@phone",
                  people=[f"n{i}" for i in range(50)])
    )  # fmt: skip


def test_each_channel_of_a_stage_equals_a_hand_count(warehouse: Warehouse) -> None:
    result = channel_consistency(warehouse, MODEL, kinds=["csat"])
    [purchase, service] = sorted(result.stages, key=lambda s: s.stage)
    assert (service.kind, service.stage, purchase.stage) == ("csat", "service", "purchase")
    channels = {c.channel: c for c in service.channels}
    assert list(channels) == ["phone", "chat", "store"]  # most answers first
    for name, scores in (("chat", CHAT), ("phone", PHONE), ("store", STORE)):
        hand = csat_estimate(AnswerStats.of(scores))
        assert (channels[name].value, channels[name].n) == (hand.value, len(scores))
        assert (channels[name].low, channels[name].high) == (hand.low, hand.high)
    # The spread counts only channels with at least min_n answers: 80 − 61, not store's.
    assert service.spread == pytest.approx(80.0 - 61.0)
    assert {c.channel: c.value for c in purchase.channels} == {"web": 100.0, "app": 50.0}


def test_a_lagging_channel_is_flagged_against_the_pooled_rest(warehouse: Warehouse) -> None:
    result = channel_consistency(warehouse, MODEL, kinds=["csat"])
    service = next(s for s in result.stages if s.stage == "service")
    gaps = {g.channel: g for g in service.gaps}
    assert set(gaps) == {"chat", "phone"}  # store has too few answers to be tested
    chat = gaps["chat"]
    rest = AnswerStats.of(PHONE + STORE)
    hand = csat_difference(rest, AnswerStats.of(CHAT))
    assert chat.difference.difference == pytest.approx(hand.difference)
    assert chat.difference.p_value == pytest.approx(hand.p_value)
    assert chat.lags and not gaps["phone"].lags  # phone is better than the rest: no flag
    assert chat.message == (
        "CSAT for service in chat is 61% vs 80% on the other channels (p < 0.001, 100 answers)"
    )
    # Holm over every channel tested for the KPI, across stages.
    tested = [g for s in result.stages for g in s.gaps]
    assert [g.p_adjusted for g in tested] == pytest.approx(
        holm([g.difference.p_value for g in tested])
    )
    # Most certain first: app's 50% against web's 100% (40 answers each) beats chat's gap.
    assert [(g.stage, g.channel) for g in result.flags] == [
        ("purchase", "app"),
        ("service", "chat"),
    ]


def test_min_n_and_alpha_decide_what_is_tested_and_flagged(warehouse: Warehouse) -> None:
    strict = channel_consistency(warehouse, MODEL, kinds=["csat"], min_n=201)
    assert all(not s.gaps for s in strict.stages)  # even phone's 200 answers are too few
    assert strict.flags == ()
    lenient = channel_consistency(warehouse, MODEL, kinds=["csat"], min_n=5)
    service = next(s for s in lenient.stages if s.stage == "service")
    assert {g.channel for g in service.gaps} == {"chat", "phone", "store"}
    tiny = channel_consistency(warehouse, MODEL, kinds=["csat"], alpha=1e-12)
    assert [g.channel for g in tiny.flags] == []


def test_kinds_are_apart_and_answers_outside_the_model_are_left_out(
    warehouse: Warehouse,
) -> None:
    result = channel_consistency(warehouse, MODEL)
    assert [(s.kind, s.stage) for s in result.stages] == [
        ("nps", "service"),
        ("csat", "purchase"),
        ("csat", "service"),
    ]
    [nps] = [s for s in result.stages if s.kind == "nps"]
    [(channel, value, n)] = [(c.channel, c.value, c.n) for c in nps.channels]
    assert (channel, n) == ("phone", 50) and value == pytest.approx(60.0)
    assert nps.spread is None and nps.gaps == ()  # one channel: nothing to compare
    rows = consistency_expression(ConsistencyQuery(kinds=("csat",)), warehouse, MODEL)
    counted = sum(r["n"] for r in rows.to_pyarrow().to_pylist())
    assert counted == len(CHAT) + len(PHONE) + len(STORE) + 80  # not the 50 relationship ones


def test_an_empty_model_or_a_bad_query_is_refused_or_empty(warehouse: Warehouse) -> None:
    assert channel_consistency(warehouse, TouchpointModel()).stages == ()
    with pytest.raises(InvalidInput, match="kinds"):
        channel_consistency(warehouse, MODEL, kinds=[])
    with pytest.raises(InvalidInput, match="min_n"):
        channel_consistency(warehouse, MODEL, min_n=1)


def test_docstring_examples() -> None:
    assert doctest.testmod(consistency_module).failed == 0
