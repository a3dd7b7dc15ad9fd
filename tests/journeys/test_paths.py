"""Transitions, paths, hops and Sankey data on small logs with known answers."""

from __future__ import annotations

from collections.abc import Callable

from opencx.journeys import TouchpointModel, model_from_counts
from opencx.journeys.paths import (
    END,
    START,
    PathQuery,
    channel_hops,
    next_touchpoints,
    sankey,
    top_paths,
    transitions,
)
from opencx.warehouse import Warehouse
from tests.journeys.conftest import Row

Log = Callable[..., Warehouse]

ROWS: list[Row] = [
    ("p1", 0, "Home", "web"),
    ("p1", 1, "Home", "web"),  # a repeat: one step when collapsed
    ("p1", 2, "Reset", "app"),
    ("p1", 3, "Call", "phone"),
    ("p2", 0, "Home", "web"),
    ("p2", 1, "Reset", "app"),
    ("p2", 80, "Call", "phone"),  # more than 48 h later: no hop
    ("p3", 0, "Reset", "app"),
    ("p3", 5, "Chat", "chat"),
]


def model() -> TouchpointModel:
    triples = {(r[2], r[3]) for r in ROWS}
    return model_from_counts(("track", e, c) for e, c in sorted(triples))


def test_transitions_count_entries_steps_and_exits(log: Log) -> None:
    flows = {(t.source, t.target): t for t in transitions(PathQuery(), log(ROWS), model())}
    assert flows[(START, "home@web")].people == 2
    assert flows[("home@web", "reset@app")].transitions == 2
    assert ("home@web", "home@web") not in flows
    assert flows[("reset@app", "call@phone")].people == 2
    assert flows[("call@phone", END)].people == 2
    raw = {
        (t.source, t.target)
        for t in transitions(PathQuery(collapse_repeats=False), log(ROWS), model())
    }
    assert ("home@web", "home@web") in raw


def test_next_and_previous_touchpoints(log: Log) -> None:
    wh = log(ROWS)
    after = next_touchpoints(PathQuery(touchpoint="reset@app"), wh, model())
    assert {(t.target, t.people) for t in after} == {("call@phone", 2), ("chat@chat", 1)}
    before = next_touchpoints(PathQuery(touchpoint="reset@app", direction="before"), wh, model())
    assert {(t.source, t.people) for t in before} == {("home@web", 2), (START, 1)}


def test_top_paths_from_and_to_a_touchpoint(log: Log) -> None:
    wh = log(ROWS)
    paths = top_paths(PathQuery(touchpoint="home@web", depth=3), wh, model())
    assert paths[0].steps == ("home@web", "reset@app", "call@phone", END)
    assert paths[0].people == 2
    to_call = top_paths(
        PathQuery(touchpoint="call@phone", direction="before", depth=2), wh, model()
    )
    assert to_call[0].steps == ("home@web", "reset@app", "call@phone") and to_call[0].people == 2


def test_channel_hops_within_48_hours(log: Log) -> None:
    hops = {(h.from_channel, h.to_channel): h for h in channel_hops(log(ROWS), model())}
    assert hops[("app", "phone")].people == 1  # p2 called 79 h later
    assert hops[("web", "phone")].people == 1
    assert hops[("app", "chat")].people == 1
    assert ("web", "chat") not in hops


def test_sankey_keeps_the_heaviest_links_without_cycles(log: Log) -> None:
    graph = sankey(transitions(PathQuery(), log(ROWS), model()))
    assert set(graph.nodes) >= {START, "home@web", "reset@app", END}
    for source, target, weight in graph.links:
        assert source != target and weight > 0
