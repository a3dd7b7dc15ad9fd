"""bench/scale.py at toy sizes: every generator and measurement runs, and the fit is right."""

from __future__ import annotations

import argparse
import math

import pytest
from bench import scale

from opencx.store import Store, fetch_one


def test_fit_exponent_recovers_known_power_laws() -> None:
    sizes = [1e6, 1e7, 5e7]
    assert scale.fit_exponent(sizes, [2e-7 * n for n in sizes]) == pytest.approx(1.0)
    assert scale.fit_exponent(sizes, [3 * n**0.5 for n in sizes]) == pytest.approx(0.5)
    quadratic = [n**2 * (1.1 if i == 1 else 1.0) for i, n in enumerate(sizes)]
    assert 1.9 < scale.fit_exponent(sizes, quadratic) < 2.1


def test_fit_exponent_needs_two_points() -> None:
    with pytest.raises(ValueError, match="two"):
        scale.fit_exponent([1e6], [1.0])


@pytest.mark.parametrize(
    ("text", "count"), [("50M", 50_000_000), ("20k", 20_000), ("1_000_000", 1_000_000)]
)
def test_parse_count(text: str, count: int) -> None:
    assert scale.parse_count(text) == count


def test_parse_count_rejects_nonsense() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a count"):
        scale.parse_count("lots")


def test_command_line_sets_the_largest_sizes() -> None:
    maxima, runs = scale.parse_args(["--max-events", "20k", "--max-profile-events", "1M"])
    assert maxima == {**scale.DEFAULT_MAX, "events": 20_000, "profile_events": 1_000_000}
    assert runs == scale.RUNS


def test_funnel_and_transitions_at_20k_events() -> None:
    with Store() as store:
        data = scale.generate_journeys(store, 20_000)
        assert data == {"rows": 20_000, "people": 1_000}
        funnel = scale.measure_funnel(store.con, runs=1)
        paths = scale.measure_transitions(store.con, runs=1)
    # measure_funnel stops if OpenCX and the hand-written SQL disagree.
    entered = funnel["entered"]
    assert len(entered) == 4 and entered[0] > 0
    assert entered == sorted(entered, reverse=True)
    assert funnel["seconds"] > 0 and funnel["sql_s"] > 0
    assert paths["pairs"] > paths["touchpoints"] > 0


def test_kpis_at_20k_answers() -> None:
    with Store() as store:
        data = scale.generate_answers(store, 20_000)
        kpis = scale.measure_kpis(store.con, runs=1)
        (nps_answers,) = fetch_one(
            store.con.execute(
                "SELECT count(*) FROM analytics_events WHERE properties LIKE '%\"nps\"%'"
            )
        ) or (0,)
    assert data["people"] == 6_000
    assert kpis["nps_answers"] == nps_answers > 0
    assert kpis["channels"] == 6 and kpis["segments"] == 5


def test_segment_refresh_at_20k_events() -> None:
    with Store() as store:
        data = scale.generate_profiles(store, 20_000)
        refresh = scale.measure_refresh(store.con, runs=1)
    assert data == {"rows": 20_000, "people": 5_000}
    assert 0 < refresh["members"] < 5_000


def test_identity_rebuild_at_8500_identifiers() -> None:
    with Store() as store:
        data = scale.generate_identity(store, 8_500)
        rebuilt = scale.measure_identity(store.con)
    assert data["people"] == 2_000
    # Each chain links all of a person's identifiers into one profile.
    assert rebuilt["profiles"] == 2_000
    assert rebuilt["identifiers"] == 8_500


def test_ratios_and_exponents_from_curves() -> None:
    points = [
        {"size": 1_000_000, "seconds": 1.0, "sql_s": 0.5},
        {"size": 10_000_000, "seconds": 10.0, "sql_s": 5.0},
    ]
    scale._add_ratios(points, None)
    assert [p["ratio"] for p in points] == pytest.approx([1.0, 1.0])
    scale._add_ratios(points, "sql_s")
    assert [p["ratio"] for p in points] == pytest.approx([2.0, 2.0])
    fits = scale.exponents({"funnel": points, "refresh": points[:1]})
    assert set(fits) == {"funnel"}
    assert fits["funnel"]["exponent"] == pytest.approx(1.0)
    assert fits["funnel"]["sql_exponent"] == pytest.approx(1.0)


@pytest.mark.slow
def test_run_in_child_processes_reports_curve_and_memory() -> None:
    result = scale.run(sizes=(5_000, 20_000), runs=1, families=("journeys",))
    funnel = result["curves"]["funnel"]
    assert [p["size"] for p in funnel] == [5_000, 20_000]
    assert all(p["peak_rss_mb"] > 10 for p in funnel)
    assert math.isfinite(result["exponents"]["funnel"]["exponent"])
    labels = [row[0] for row in scale.rows(result)]
    assert labels[0] == "scale: machine"
    assert "funnel, 4 steps, 7 days, start=first: growth exponent" in labels
