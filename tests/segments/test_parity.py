"""Segments on Spark: the feature table, rules and sizes equal DuckDB's, computed traits too."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opencx.segments import evaluate_segment, features_expression, segment_sizes_now
from opencx.store import Store
from opencx.warehouse import Warehouse, embedded, export_parquet, spark
from tests.journeys.conftest import Row, write_events, write_profiles
from tests.segments.conftest import NOW, hours_before_now

pytestmark = [
    pytest.mark.xdist_group("spark"),
    # py4j leaves its gateway sockets to the JVM to close; only Spark tests hide that.
    pytest.mark.filterwarnings("ignore:Exception ignored in. <socket.socket"),
]

RULES = {
    "regulars": "purchases_90d >= 2 and revenue_90d > 40",
    "unhappy": 'last_nps <= 6 or nps_group = "detractor"',
    "best": "rfm_recency >= 4 and rfm_monetary >= 4",
    "at-risk": 'lifecycle in ("at-risk", "lapsed") and not responded',
    "app-gold": 'channel = "app" and trait.tier = "gold"',
    "hoppers": "effort_channel_hops_90d >= 1",
}


def random_log(seed: int, people: int = 60) -> list[Row]:
    rng = random.Random(seed)
    rows: list[Row] = []
    for i in range(people):
        p = f"p{i}"
        for _ in range(rng.randint(1, 5)):
            days = rng.uniform(0, 150)
            event = rng.choice(
                ["Order Completed", "Order Completed", "Screen Viewed", "Page Viewed"]
            )
            channel = rng.choice(["web", "app", "store"])
            rows.append((p, hours_before_now(days), event, channel,
                         {"revenue": rng.randint(5, 60)}))  # fmt: skip
        if rng.random() < 0.6:
            kind = rng.choice(["nps", "csat", "ces"])
            score = rng.randint(0 if kind == "nps" else 1, {"nps": 10, "csat": 5, "ces": 7}[kind])
            rows.append((p, hours_before_now(rng.uniform(0, 60)), "Survey Responded", "email",
                         {"survey_type": kind, "score": score}))  # fmt: skip
    return sorted(rows, key=lambda r: r[1])


@pytest.fixture(scope="module")
def engines(spark_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    store = Store()
    rows = random_log(5)
    assert 150 <= len(rows) <= 500
    write_events(store, rows)
    write_profiles(store, {f"p{i}": {"tier": "gold" if i % 3 else "silver"} for i in range(60)})
    store.con.execute(
        "INSERT INTO computed_traits SELECT 'p' || i, 'effort_channel_hops_90d', "
        "(i % 3)::VARCHAR::JSON, now() FROM range(40) t(i)"
    )
    folder = tmp_path_factory.mktemp("segments-parquet")
    export_parquet(store.con, folder)
    # The analytics export carries no computed traits: ship them beside it, as a view.
    traits = Path(folder) / "computed_traits.parquet"
    store.con.execute(
        f"COPY (SELECT person_id, name, CAST(value AS VARCHAR) AS value, computed_at "
        f"FROM computed_traits) TO '{traits}' (FORMAT parquet)"
    )
    spark_session.read.parquet(str(traits)).createOrReplaceTempView("computed_traits")
    yield embedded(store.con), spark(spark_session, folder)
    spark_session.catalog.dropTempView("computed_traits")
    store.close()


def _features(warehouse: Warehouse) -> list[dict[str, Any]]:
    rows = features_expression(warehouse, NOW).to_pyarrow().to_pylist()
    return sorted(rows, key=lambda r: r["person_id"])


def test_the_feature_table_is_identical(engines: Any) -> None:
    duck, sparky = engines
    on_duck = _features(duck)
    assert on_duck == _features(sparky)
    assert len(on_duck) == 60
    assert {r["effort_channel_hops_90d"] for r in on_duck} == {0.0, 1.0, 2.0, None}
    assert {r["lifecycle"] for r in on_duck} >= {"active", "at-risk"}


def test_segments_and_their_sizes_are_identical(engines: Any) -> None:
    duck, sparky = engines
    sizes = segment_sizes_now(duck, RULES, NOW)
    assert sizes == segment_sizes_now(sparky, RULES, NOW)
    assert all(0 < n < 60 for n in sizes.values()), sizes
    for name in ("best", "hoppers"):
        members = evaluate_segment(duck, RULES[name], NOW)
        assert members == evaluate_segment(sparky, RULES[name], NOW)
        assert len(members) == sizes[name]
