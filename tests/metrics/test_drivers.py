"""Key drivers: a planted driver is found with its sign, noise is not, on the sample brand too."""

from __future__ import annotations

import doctest
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import ibis
import pytest

from opencx.config import load_settings
from opencx.demo.brand import SOURCES, generate_brand
from opencx.errors import InvalidInput, NotFound
from opencx.ingest import Ingestor, SourceContext, ValidatedBatch, now_us
from opencx.journeys import TouchpointModel, infer_touchpoints, model_from_counts
from opencx.metrics import drivers, key_drivers
from opencx.profiles import refresh_profiles
from opencx.store import Store
from opencx.warehouse import Warehouse, embedded
from tests.journeys.conftest import T0, Row
from tests.metrics.conftest import Log

ANSWER_AT = 1000.0  # hours after T0 that everyone answers the NPS survey
PLANTED = {
    "touchpoint:password_reset_started@app",
    "touchpoint:password_reset_failed@app",
    "effort:channel_hop_after:password_reset_started@app",
}


def survey(rng: random.Random, person: str, detractor_p: float) -> Row:
    score = rng.randint(0, 6) if rng.random() < detractor_p else rng.randint(7, 10)
    props = {"survey_type": "nps", "score": score, "touchpoint": "relationship"}
    return (person, ANSWER_AT, "Survey Responded", "email", props)


def planted_rows(people: int = 400, seed: int = 1) -> tuple[list[Row], dict[str, list[str]]]:
    """A failed app reset (30% of people) makes detractors likely; the rest is noise."""
    rng = random.Random(seed)
    rows: list[Row] = []
    themes: dict[str, list[str]] = {}
    for n in range(people):
        person = f"p{n}"
        failed = rng.random() < 0.3
        rows.append((person, 10, "Email Opened", "email"))  # everyone: no driver
        if failed:
            rows.append((person, ANSWER_AT - 200, "Password Reset Failed", "app"))
        if rng.random() < 0.5:
            rows.append((person, ANSWER_AT - 100, "Product Viewed", "web"))
        if rng.random() < 0.4:  # the same call, logged twice: one driver
            rows.append((person, ANSWER_AT - 50, "Call Started", "phone"))
            rows.append((person, ANSWER_AT - 49.9, "Call Ended", "phone"))
        if rng.random() < 0.3:  # long before the lookback: never a driver
            rows.append((person, ANSWER_AT - 24 * 120, "Bill Viewed", "web"))
        if rng.random() < 0.4:
            themes[person] = ["price"]
        rows.append(survey(rng, person, 0.75 if failed else 0.2))
    return rows, themes


def model_of(rows: list[Row]) -> TouchpointModel:
    return model_from_counts(sorted({("track", r[2], r[3]) for r in rows}))


def test_a_planted_driver_is_significant_with_its_sign_and_noise_is_not(log: Log) -> None:
    rows, themes = planted_rows()
    result = key_drivers(log(rows), model_of(rows), outcome="low_nps", themes=themes)
    top = result.drivers[0]
    assert top.name == "touchpoint:password_reset_failed@app"
    assert top.significant and top.importance > 0.3 and top.p_value < 1e-6
    assert 0.45 < top.coefficient < 0.65 and 0.25 < top.performance < 0.35
    assert top.mean_with is not None and top.mean_without is not None
    assert top.mean_with > 0.6 > 0.3 > top.mean_without
    names = {d.name for d in result.drivers}
    [call] = [d for d in result.drivers if d.name.startswith("touchpoint:call_")]
    assert {call.name, *call.aliases} == {
        "touchpoint:call_started@phone",
        "touchpoint:call_ended@phone",
    }
    for noise in ("touchpoint:product_viewed@web", call.name, "theme:price"):
        assert not result.driver(noise).significant, noise
    assert "touchpoint:bill_viewed@web" not in names  # 120 days before: out of the lookback
    assert "touchpoint:email_opened@email" not in names  # nobody lacks it
    assert result.n == 400 and 0.15 < result.r2 < 0.4 and result.candidates == len(names)
    assert "were detractors, against" in top.effect_in_words
    assert "Not significant" in result.driver("theme:price").effect_in_words
    with pytest.raises(NotFound, match="no driver"):
        result.driver("touchpoint:nothing@web")


def test_the_nps_score_moves_the_other_way(log: Log) -> None:
    rows, _ = planted_rows()
    result = key_drivers(log(rows), model_of(rows), outcome="nps")
    failed = result.driver("touchpoint:password_reset_failed@app")
    assert failed.significant and failed.importance < -0.3 and failed.coefficient < -2
    assert result.drivers[-1] is failed  # most negative last
    assert "they scored" in failed.effect_in_words


def test_traits_enter_as_numbers_flags_or_values(log: Log) -> None:
    rng = random.Random(5)
    rows: list[Row] = []
    traits: dict[str, dict[str, object]] = {}
    for n in range(300):
        person, loyal = f"p{n}", rng.random() < 0.5
        traits[person] = {"loyal": loyal, "tenure": rng.uniform(0, 10), "plan": rng.choice("ab")}
        rows.append(survey(rng, person, 0.1 if loyal else 0.6))
    wh = log(rows, traits)
    result = key_drivers(wh, model_of(rows), outcome="low_nps", traits=["loyal", "tenure", "plan"])
    loyal = result.driver("trait:loyal")
    assert loyal.kind == "trait" and loyal.significant and loyal.importance < 0
    assert loyal.label == "trait loyal = true"
    tenure = result.driver("trait:tenure")
    assert not tenure.significant and "One standard deviation more" in tenure.effect_in_words
    assert {"trait:plan=a", "trait:plan=b"} & {d.name for d in result.drivers}


def test_a_business_outcome_table(log: Log) -> None:
    rows, _ = planted_rows(people=200, seed=2)
    rng = random.Random(3)
    failed = {r[0] for r in rows if r[2] == "Password Reset Failed"}
    people = sorted({r[0] for r in rows})
    left = ibis.memtable(
        {
            "person_id": people,
            "at": [T0 + timedelta(hours=ANSWER_AT)] * len(people),
            "value": [float(rng.random() < (0.6 if p in failed else 0.1)) for p in people],
        }
    )
    result = key_drivers(log(rows), model_of(rows), outcome=left, min_people=20)
    assert result.outcome == "outcome" and result.n == 200
    top = result.drivers[0]
    assert top.name == "touchpoint:password_reset_failed@app" and top.significant
    assert "the outcome averaged" in top.effect_in_words


def test_too_few_answers_or_an_unknown_outcome_are_refused(log: Log) -> None:
    rows, _ = planted_rows(people=40)
    wh, model = log(rows), model_of(rows)
    with pytest.raises(InvalidInput, match="at least 60 people"):
        key_drivers(wh, model, outcome="low_nps")
    with pytest.raises(InvalidInput, match="outcome must be one of"):
        key_drivers(wh, model, outcome="churn")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="lookback"):
        key_drivers(wh, model, lookback="soon", min_people=5)


def test_the_docstring_examples_run() -> None:
    assert doctest.testmod(drivers).failed == 0


@pytest.fixture(scope="module")
def sample_brand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """The sample brand (1,500 customers, seed 7, the default end) through the ingestor."""
    db = Path(tmp_path_factory.mktemp("brand")) / "brand.duckdb"
    settings = load_settings(db=db, profiles_refresh_s=0)
    with Store() as store:
        ingestor = Ingestor(store, settings)
        sources = {s.name: SourceContext(s.name, s.channel, origin="demo") for s in SOURCES}
        batch, received = ValidatedBatch(), now_us()
        for index, (source, message) in enumerate(generate_brand(1500, seed=7)):
            ingestor.validator.validate_into(
                batch, message, index=index, source=sources[source], received_us=received
            )
        assert ingestor.writer.write(batch).rejected == 0
        refresh_profiles(store.con)
        yield embedded(store.con)


def test_the_broken_app_reset_drives_detractors_on_the_sample_brand(
    sample_brand: Warehouse,
) -> None:
    model = infer_touchpoints(sample_brand)
    result = key_drivers(sample_brand, model, outcome="low_nps")
    top_two = [d.name for d in result.drivers[:2]]
    assert PLANTED & set(top_two), top_two
    assert result.n > 300 and result.candidates >= 20
