"""Designed journeys against what customers did: stages, targets and flags."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from opencx.errors import InvalidInput
from opencx.journeys import compare_design, parse_design
from opencx.warehouse import Warehouse
from tests.journeys.test_diagnostics import brand, model_of

Log = Callable[..., Warehouse]

DESIGN = """
name: Reset and come back
horizon: 7d
stages:
  - name: Reset
    touchpoints: [password_reset_started@app, password_reset_started@web]
    targets: {conversion: 0.9, time_to_next: 1h, effort: 0.02}
  - name: Browse again
    touchpoints: [product_viewed@app, product_viewed@web]
"""


def test_stages_are_measured_and_departures_flagged(log: Log) -> None:
    rows = brand(broken_app=True)
    wh, model = log(rows), model_of(rows)
    reset, browse = compare_design(parse_design(DESIGN), wh, model)  # type: ignore[arg-type]
    assert reset.entered > 300 and reset.converted is not None
    assert reset.conversion == pytest.approx(reset.converted / reset.entered)
    assert reset.median_to_next_s == pytest.approx(60 * 3600, rel=0.05)
    flags = " | ".join(reset.flags)
    assert (
        "longer than designed" in flags
        and "60.0x longer than designed: median 2.5 days against 1.0 hours" in flags
    )
    assert "contact us within 48 h" in flags
    assert "use phone, which the design never planned for" in flags
    assert reset.channels["phone"] > 0.05
    assert browse.converted is None
    assert [f for f in browse.flags if "never planned" not in f] == []  # no targets there


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nstages: []", "stages"),
        ("name: x\nstages: [{name: a, touchpoints: [t], channels: [fax]}]", "unknown channel"),
        ("name: x\nstages: [{name: a, touchpoints: [t], targets: {conversion: 2}}]", "conversion"),
        ("name: x\nhorizon: soon\nstages: [{name: a, touchpoints: [t]}]", "horizon"),
        ("- a list", "mapping"),
    ],
)
def test_bad_designs_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_design(text)


def test_unknown_touchpoints_are_named(log: Log) -> None:
    rows = brand(broken_app=False, people=40)
    design = parse_design("name: x\nstages: [{name: a, touchpoints: [nope@web]}]")
    with pytest.raises(InvalidInput, match="nope@web"):
        compare_design(design, log(rows), model_of(rows))  # type: ignore[arg-type]


def test_a_design_survives_a_yaml_round_trip() -> None:
    design = parse_design(DESIGN)
    assert parse_design(design.to_yaml()) == design
