"""Metrics on Spark: KPIs by channel and segment, consistency and effort equal DuckDB's."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from opencx.journeys import Touchpoint, TouchpointModel
from opencx.metrics import channel_consistency, effort_signals, kpi
from opencx.store import Store
from opencx.warehouse import Warehouse, embedded, export_parquet, spark
from tests.journeys.conftest import Row, write_events, write_profiles

pytestmark = [
    pytest.mark.xdist_group("spark"),
    # py4j leaves its gateway sockets to the JVM to close; only Spark tests hide that.
    pytest.mark.filterwarnings("ignore:Exception ignored in. <socket.socket"),
]

MODEL = TouchpointModel(
    touchpoints=(
        Touchpoint(id="reset@app", name="Reset", event="Password Reset Failed", channel="app",
                   stage="service"),
        Touchpoint(id="bill@web", name="Bill", event="Bill Viewed", channel="web", stage="usage"),
        Touchpoint(id="call@phone", name="Call", event="Call Started", channel="phone",
                   stage="service"),
        Touchpoint(id="chat@chat", name="Chat", event="Chat Started", channel="chat",
                   stage="service"),
        Touchpoint(id="ended@phone", name="Call ended", event="Call Ended", channel="phone"),
        Touchpoint(id="ended@chat", name="Chat ended", event="Chat Ended", channel="chat"),
        Touchpoint(id="order", name="Order", event="Order Completed", stage="purchase"),
    )
)  # fmt: skip


def random_log(seed: int, people: int = 80) -> list[Row]:
    """A few hundred events: digital attempts, calls and chats, answers about them."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for i in range(people):
        p, t = f"p{i}", rng.uniform(0, 200)
        for _ in range(rng.randint(1, 3)):
            t += rng.uniform(0.2, 60)
            first = rng.choice(["Password Reset Failed", "Bill Viewed", "Order Completed"])
            rows.append((p, t, first, "web" if first == "Bill Viewed" else "app",
                         {"revenue": rng.randint(5, 50)}))  # fmt: skip
            if rng.random() < 0.6:
                t += rng.choice([0.3, 5.0, 70.0])
                start, end = rng.choice([("Call Started", "phone"), ("Chat Started", "chat")])
                topic = rng.choice(["billing", "password", None])
                rows.append((p, t, start, end, {"topic": topic} if topic else {}))
                rows.append((p, t + 0.1, start.replace("Started", "Ended"), end,
                             {"resolved": rng.random() < 0.6}))  # fmt: skip
        for kind, top, tp in (
            ("nps", 10, "call@phone"),
            ("csat", 5, "order"),
            ("ces", 7, rng.choice(["reset@app", "chat@chat", "call@phone"])),
        ):
            if rng.random() < 0.8:
                t += rng.uniform(1, 10)
                channel = rng.choice(["email", "app", "web"])
                rows.append(
                    (
                        p,
                        t,
                        "Survey Responded",
                        channel,
                        {
                            "survey_type": kind,
                            "score": rng.randint(0 if kind == "nps" else 1, top),
                            "touchpoint": tp,
                        },
                    )
                )
    return sorted(rows, key=lambda r: r[1])  # fmt: skip


@pytest.fixture(scope="module")
def engines(spark_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    store = Store()
    rows = random_log(11)
    assert 300 <= len(rows) <= 900
    write_events(store, rows)
    write_profiles(store, {f"p{i}": {"tier": "gold" if i % 3 else "silver"} for i in range(80)})
    folder = tmp_path_factory.mktemp("metrics-parquet")
    export_parquet(store.con, folder)
    yield embedded(store.con), spark(spark_session, folder)
    store.close()


def _kpi_rows(warehouse: Warehouse, kind: str, by: str, segments: Any = None) -> Any:
    result = kpi(warehouse, kind, start_at=None, end_at=None, by=by, segments=segments)
    return result.overall, result.groups


def test_kpis_by_channel_and_segment_are_identical(engines: Any) -> None:
    duck, sparky = engines
    for kind in ("nps", "csat", "ces"):
        by_channel = _kpi_rows(duck, kind, "channel")
        assert by_channel == _kpi_rows(sparky, kind, "channel")
        assert len(by_channel[1]) == 3 and by_channel[0].n > 50
    segments = {"even": [f"p{i}" for i in range(0, 80, 2)], "low": [f"p{i}" for i in range(20)]}
    on_duck = _kpi_rows(duck, "nps", "segment", segments)
    assert on_duck == _kpi_rows(sparky, "nps", "segment", segments)
    assert [g.group for g in on_duck[1]] == ["even", "low"]
    assert _kpi_rows(duck, "csat", "trait:tier") == _kpi_rows(sparky, "csat", "trait:tier")


def test_consistency_is_identical(engines: Any) -> None:
    duck, sparky = engines
    on_duck = channel_consistency(duck, MODEL, min_n=10)
    assert on_duck.stages == channel_consistency(sparky, MODEL, min_n=10).stages
    service = [s for s in on_duck.stages if s.stage == "service" and s.kind == "ces"]
    assert service and len(service[0].channels) == 3 and service[0].gaps


def test_effort_signals_are_identical(engines: Any) -> None:
    duck, sparky = engines

    def rows(warehouse: Warehouse) -> list[dict[str, Any]]:
        table = effort_signals(warehouse, MODEL).to_pyarrow().to_pylist()
        return sorted(table, key=lambda r: r["person_id"])

    on_duck = rows(duck)
    assert on_duck == rows(sparky)
    assert sum(r["channel_hops"] for r in on_duck) > 5
    assert sum(r["repeat_contacts"] for r in on_duck) > 0
    assert sum(r["slow_resolutions"] for r in on_duck) > 0
