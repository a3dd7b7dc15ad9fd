"""The warehouse: the same analytics give the same answers on DuckDB and on Spark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opencx.errors import InvalidInput
from opencx.journeys import FunnelQuery, run_funnel
from opencx.store import Store
from opencx.warehouse import embedded, export_parquet, spark
from tests.journeys.conftest import write_events, write_profiles
from tests.journeys.test_funnel import random_rows

pytestmark = [
    pytest.mark.xdist_group("spark"),
    # py4j leaves its gateway sockets to the JVM to close; only Spark tests hide that.
    pytest.mark.filterwarnings("ignore:Exception ignored in. <socket.socket"),
]


@pytest.fixture(scope="module")
def engines(spark_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The same random log on both engines."""
    store = Store()
    rows = random_rows(7, people=400)
    channels = ["web", "app", "phone", "chat"]
    rows = [
        (p, h, e, channels[i % 4], {"plan": "pro" if i % 3 else "basic"})
        for i, (p, h, e, _) in enumerate(rows)
    ]
    write_events(store, rows)
    write_profiles(store, {f"p{i}": {"tier": "gold" if i % 2 else "silver"} for i in range(400)})
    folder = tmp_path_factory.mktemp("parquet")
    counts = export_parquet(store.con, folder)
    assert counts["analytics_events"] == len(rows)
    yield embedded(store.con), spark(spark_session, folder)
    store.close()


# Each Spark run plans dozens of stages: three combinations cover both rules and breakdowns.
@pytest.mark.parametrize(
    ("start", "by"), [("first", "channel"), ("any", "trait:tier"), ("any", "property:plan")]
)
def test_funnels_are_identical_on_duckdb_and_spark(
    engines: Any, start: str, by: str | None
) -> None:
    duck, sparky = engines
    query = FunnelQuery(
        steps=[{"event": "A"}, {"event": "B", "channel": "web"}, {"event": "C"}],
        window="48h",
        start=start,
        by=by,
        exclude={"event": "X", "channel": "chat"},
    )
    on_duck, on_spark = run_funnel(query, duck), run_funnel(query, sparky)
    assert on_duck.rows == on_spark.rows
    assert on_duck.overall()[-1].entered > 0


def test_export_is_idempotent(tmp_path: Path) -> None:
    with Store() as store:
        write_events(store, [("p1", 0, "A", "web"), ("p1", 1, "B", "web")])
        export_parquet(store.con, tmp_path)
        first = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.parquet"))
        export_parquet(store.con, tmp_path)
        assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.parquet")) == first


def test_spark_needs_an_export(spark_session: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="opencx export parquet"):
        spark(spark_session, tmp_path)


def _model() -> Any:
    from opencx.journeys import model_from_counts

    return model_from_counts(
        ("track", e, c) for e in "ABCDX" for c in ("web", "app", "phone", "chat")
    )


@pytest.mark.parametrize("collapse", [True, False])
def test_transitions_and_paths_are_identical_on_duckdb_and_spark(
    engines: Any, collapse: bool
) -> None:
    from opencx.journeys.paths import PathQuery, channel_hops, top_paths, transitions

    duck, sparky = engines
    query = PathQuery(collapse_repeats=collapse)
    on_duck = transitions(query, duck, _model())
    assert on_duck == transitions(query, sparky, _model())
    assert len(on_duck) > 20
    anchored = PathQuery(touchpoint="a@web", depth=3, collapse_repeats=collapse)
    assert top_paths(anchored, duck, _model()) == top_paths(anchored, sparky, _model())
    assert channel_hops(duck, _model()) == channel_hops(sparky, _model())


def test_cohorts_are_identical_on_duckdb_and_spark(engines: Any) -> None:
    from opencx.journeys.cohorts import retention_cohorts

    duck, sparky = engines
    for grain in ("week", "month"):
        assert retention_cohorts(duck, grain) == retention_cohorts(sparky, grain)  # type: ignore[arg-type]


def test_the_default_warehouse_is_the_embedded_duckdb(tmp_path: Path) -> None:
    from opencx.config import load_settings
    from opencx.warehouse import open_warehouse

    with Store() as store:
        found = open_warehouse(load_settings(db=tmp_path / "x.duckdb"), store.con)
        assert found.engine == "duckdb"
    assert not list(tmp_path.iterdir())  # nothing exported


@pytest.mark.parametrize("url", ["spark://host:7077", "pyspark://", "sc://", "duckdb://x"])
def test_warehouse_urls_are_checked(url: str) -> None:
    from pydantic import ValidationError

    from opencx.config import load_settings

    with pytest.raises(ValidationError, match="pyspark://MASTER"):
        load_settings(warehouse=url)


def test_spark_connect_without_its_extras_is_one_clear_error() -> None:
    pytest.importorskip("pyspark")
    try:
        import grpc  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("grpcio is installed: Spark Connect would try to reach the server")
    from opencx.warehouse import spark_session

    with pytest.raises(InvalidInput, match=r"pyspark\[connect\]"):
        spark_session("sc://127.0.0.1:15002")


def test_a_spark_warehouse_refreshes_its_export_first(spark_session: Any, tmp_path: Path) -> None:
    from opencx.config import load_settings
    from opencx.warehouse import open_warehouse

    settings = load_settings(
        db=tmp_path / "opencx.duckdb", warehouse="pyspark://local[2]",
        warehouse_dir=tmp_path / "export",
    )  # fmt: skip
    with Store() as store:
        write_events(store, [("p1", 0, "A", "web"), ("p1", 1, "B", "web")])
        found = open_warehouse(settings, store.con)
        assert found.engine == "pyspark"
        assert found.events().count().to_pyarrow().as_py() == 2
        write_events(store, [("p2", 30, "A", "web")], seq_start=3)
        # Within max_age_s the same (stale) warehouse comes back; past it, a fresh one.
        assert open_warehouse(settings, store.con, max_age_s=3600) is found
        again = open_warehouse(settings, store.con)
        assert again.events().count().to_pyarrow().as_py() == 3
        assert (tmp_path / "export" / "manifest.json").exists()
