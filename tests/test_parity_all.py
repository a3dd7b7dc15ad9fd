"""Every public analytics function gives the same answer on DuckDB and on Spark local mode.

One log (orders with revenue, digital attempts, calls and chats, survey answers with
comments, profiles with traits, computed traits) is loaded into a store, exported with
the incremental `sync_parquet`, and read by Spark. Each test runs one function (or a
family) on both engines and compares the results; floats are compared to 9 significant
digits, as the engines add in different orders. `test_every_analytics_function_has_a_parity_test`
fails when a public function taking a `Warehouse` is added without one.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

from opencx import journeys, metrics, segments
from opencx.journeys import FunnelQuery, Touchpoint, TouchpointModel
from opencx.store import Store
from opencx.warehouse import Warehouse, embedded, spark, sync_parquet
from tests.journeys.conftest import T0, Row, write_events, write_profiles

pytestmark = [
    pytest.mark.xdist_group("spark"),
    # py4j leaves its gateway sockets to the JVM to close; only Spark tests hide that.
    pytest.mark.filterwarnings("ignore:Exception ignored in. <socket.socket"),
]

ROOT = Path(__file__).resolve().parent
PEOPLE = 90
NOW = T0 + timedelta(days=40)
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
        Touchpoint(id="survey", name="Survey", event="Survey Responded"),
    )
)  # fmt: skip
SEGMENTS = {"even": [f"p{i}" for i in range(0, PEOPLE, 2)], "low": [f"p{i}" for i in range(30)]}
COMMENTS = ["slow refund", "great agent", "the app crashed", "billing was wrong", None]


def random_log(seed: int) -> list[Row]:
    """About a thousand events over five weeks, shaped like a service brand's log."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for i in range(PEOPLE):
        p, t = f"p{i}", rng.uniform(0, 300)
        for _ in range(rng.randint(1, 6)):
            t += rng.uniform(0.2, 90)
            first = rng.choice(
                ["Password Reset Failed", "Bill Viewed", "Order Completed", "Order Completed"]
            )
            props: dict[str, Any] = {"revenue": rng.randint(5, 50), "plan": rng.choice("ab")}
            rows.append((p, t, first, "web" if first == "Bill Viewed" else "app", props))
            if rng.random() < 0.6:
                t += rng.choice([0.3, 5.0, 70.0])
                start, channel = rng.choice([("Call Started", "phone"), ("Chat Started", "chat")])
                topic = rng.choice(["billing", "password", None])
                rows.append((p, t, start, channel, {"topic": topic} if topic else {}))
                rows.append((p, t + 0.1, start.replace("Started", "Ended"), channel,
                             {"resolved": rng.random() < 0.6}))  # fmt: skip
        for kind, top, tp in (
            ("nps", 10, "call@phone"),
            ("csat", 5, "order"),
            ("ces", 7, rng.choice(["reset@app", "chat@chat", "call@phone"])),
        ):
            if rng.random() < 0.8:
                t += rng.uniform(1, 10)
                answer = {
                    "survey_type": kind,
                    "survey_id": f"{kind}-survey",
                    "score": rng.randint(0 if kind == "nps" else 1, top),
                    "touchpoint": tp,
                }
                if comment := rng.choice(COMMENTS):
                    answer["comment"] = comment
                rows.append((p, t, "Survey Responded", rng.choice(["email", "app", "web"]), answer))
    return sorted(rows, key=lambda r: r[1])


@pytest.fixture(scope="module")
def engines(
    spark_session: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Warehouse, Warehouse, Store]]:
    store = Store()
    rows = random_log(23)
    assert 600 <= len(rows) <= 1500
    write_events(store, rows)
    write_profiles(store, {f"p{i}": {"tier": "gold" if i % 3 else "silver"} for i in range(PEOPLE)})
    store.con.execute(
        "INSERT INTO computed_traits SELECT 'p' || i, 'effort_channel_hops_90d', "
        f"(i % 3)::VARCHAR::JSON, TIMESTAMPTZ '{NOW.isoformat()}' FROM range(50) t(i)"
    )
    folder = tmp_path_factory.mktemp("parity-parquet")
    sync_parquet(store.con, folder)
    yield embedded(store.con), spark(spark_session, folder), store
    spark_session.catalog.dropTempView("computed_traits")
    store.close()


def canon(value: Any) -> Any:
    """A result as plain data: dataclasses and models as dicts, floats to 9 digits."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canon(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, BaseModel):
        return canon(value.model_dump())
    if isinstance(value, np.ndarray):
        return canon(value.tolist())
    if isinstance(value, dict):
        return {canon(k): canon(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canon(v) for v in value]
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)  # Spark's are naive, in UTC
    if isinstance(value, float):
        return "nan" if math.isnan(value) else float(f"{value:.9g}")
    return value


def rows_of(table: Any) -> list[Any]:
    """An Ibis table's rows, in a fixed order (the engines order ties differently)."""
    return sorted((canon(r) for r in table.to_pyarrow().to_pylist()), key=repr)


def same(duck: Any, sparky: Any) -> Any:
    on_duck = canon(duck)
    assert on_duck == canon(sparky)
    return on_duck


# --- journeys -------------------------------------------------------------------------


def test_funnels_compared_and_as_expressions(engines: Any) -> None:
    duck, sparky, _ = engines
    query = FunnelQuery(
        steps=[{"event": "Bill Viewed"}, {"event": "Call Started"}, {"event": "Survey Responded"}],
        window="7d",
        by="channel",
    )
    periods = [(None, T0 + timedelta(days=10)), (T0 + timedelta(days=10), None)]
    compared = same(
        journeys.compare_funnels(query, duck, periods),
        journeys.compare_funnels(query, sparky, periods),
    )
    assert compared
    expression = rows_of(journeys.funnel_expression(query, duck, grouped=True))
    assert expression == rows_of(journeys.funnel_expression(query, sparky, grouped=True))
    assert len(expression) == 3  # three steps of the one group that enters
    result = same(journeys.run_funnel(query, duck), journeys.run_funnel(query, sparky))
    assert result["rows"]


def test_next_touchpoints_and_sankey(engines: Any) -> None:
    from opencx.journeys.paths import PathQuery

    duck, sparky, _ = engines
    query = PathQuery(touchpoint="bill@web", depth=2)
    found = same(
        journeys.next_touchpoints(query, duck, MODEL),
        journeys.next_touchpoints(query, sparky, MODEL),
    )
    assert found
    flows = journeys.transitions(PathQuery(), duck, MODEL)
    assert flows == journeys.transitions(PathQuery(), sparky, MODEL)
    assert journeys.sankey(flows) == journeys.sankey(
        journeys.transitions(PathQuery(), sparky, MODEL)
    )


def test_diagnostics_design_and_inferred_touchpoints(engines: Any) -> None:
    duck, sparky, store = engines
    findings = same(
        journeys.diagnose(duck, MODEL, min_people=5), journeys.diagnose(sparky, MODEL, min_people=5)
    )
    assert findings
    design = journeys.parse_design(
        "name: Service\nhorizon: 3d\nstages:\n"
        "  - name: Reset\n    touchpoints: [reset@app]\n    targets: {conversion: 0.5}\n"
        "  - name: Contact\n    touchpoints: [call@phone, chat@chat]\n"
    )
    stages = same(
        journeys.compare_design(design, duck, MODEL), journeys.compare_design(design, sparky, MODEL)
    )
    assert stages[0]["entered"] > 0
    inferred = same(journeys.infer_touchpoints(duck), journeys.infer_touchpoints(sparky))
    assert len(inferred["touchpoints"]) >= 8
    assert same(
        journeys.touchpoint_model(store.con, duck), journeys.touchpoint_model(store.con, sparky)
    )


# --- metrics --------------------------------------------------------------------------


@pytest.mark.parametrize("by", [None, "touchpoint", "survey_id"])
def test_kpis_by_every_other_grouping(engines: Any, by: str | None) -> None:
    from opencx.metrics.kpis import KpiQuery

    duck, sparky, _ = engines
    for kind in ("nps", "csat", "ces"):
        result = same(
            metrics.kpi(duck, kind, start_at=None, end_at=None, by=by),
            metrics.kpi(sparky, kind, start_at=None, end_at=None, by=by),
        )
        assert result["overall"]["n"] > 30
    query = KpiQuery(kind="nps", by=by)
    assert rows_of(metrics.kpi_expression(query, duck)) == rows_of(
        metrics.kpi_expression(query, sparky)
    )
    same(metrics.run_kpi(query, duck), metrics.run_kpi(query, sparky))


def test_compare_periods_and_alerts(engines: Any) -> None:
    duck, sparky, _ = engines
    before = (T0, T0 + timedelta(days=12))
    after = (T0 + timedelta(days=12), NOW)
    for by in (None, "channel", "segment"):
        kwargs: dict[str, Any] = {"before": before, "after": after, "by": by}
        if by == "segment":
            kwargs["segments"] = SEGMENTS
        changes = same(
            metrics.compare_periods(duck, "csat", **kwargs),
            metrics.compare_periods(sparky, "csat", **kwargs),
        )
        assert changes
    now = T0 + timedelta(days=20)
    found = same(
        metrics.alerts(duck, now=now, current="7d", baseline="2w", min_n=5, alpha=0.5),
        metrics.alerts(sparky, now=now, current="7d", baseline="2w", min_n=5, alpha=0.5),
    )
    assert isinstance(found, list)


def test_consistency_as_expression(engines: Any) -> None:
    from opencx.metrics.consistency import ConsistencyQuery

    duck, sparky, _ = engines
    query = ConsistencyQuery(min_n=5)
    assert rows_of(metrics.consistency_expression(query, duck, MODEL)) == rows_of(
        metrics.consistency_expression(query, sparky, MODEL)
    )
    result = same(
        metrics.run_consistency(query, duck, MODEL), metrics.run_consistency(query, sparky, MODEL)
    )
    assert result["stages"]


def test_effort_by_touchpoint_segment_summary_and_contacts(engines: Any) -> None:
    duck, sparky, _ = engines
    for fn in (metrics.effort_by_touchpoint, metrics.assisted_contacts):
        on_duck = rows_of(fn(duck, MODEL))
        assert on_duck == rows_of(fn(sparky, MODEL)) and on_duck, fn.__name__
    by_segment = rows_of(metrics.effort_by_segment(duck, MODEL, SEGMENTS))
    assert by_segment == rows_of(metrics.effort_by_segment(sparky, MODEL, SEGMENTS))
    assert len(by_segment) == 2
    summary = same(metrics.effort_summary(duck, MODEL), metrics.effort_summary(sparky, MODEL))
    assert summary
    traits = rows_of(metrics.effort_traits_expression(duck, MODEL, NOW))
    assert traits == rows_of(metrics.effort_traits_expression(sparky, MODEL, NOW)) and traits


def test_effort_traits_written_from_either_engine_are_equal(engines: Any) -> None:
    duck, sparky, _ = engines
    written = []
    for warehouse in (duck, sparky):
        store = Store()  # writes go elsewhere: the log's store must stay what Spark read
        count = metrics.write_effort_traits(store.con, warehouse, NOW, model=MODEL)
        table = store.con.execute(
            "SELECT person_id, name, CAST(value AS VARCHAR) FROM computed_traits "
            "WHERE name <> 'effort_channel_hops_90d' ORDER BY ALL"
        ).fetchall()
        written.append((count, table))
        store.close()
    assert written[0] == written[1] and written[0][0] > 0


def test_drivers_and_their_inputs(engines: Any) -> None:
    duck, sparky, _ = engines
    for outcome in ("nps", "csat", "low_nps"):
        inputs = rows_of(metrics.outcome_rows(duck, outcome))
        assert inputs == rows_of(metrics.outcome_rows(sparky, outcome)) and inputs, outcome
    result = same(
        metrics.key_drivers(duck, MODEL, outcome="nps", min_people=10, traits=["tier"]),
        metrics.key_drivers(sparky, MODEL, outcome="nps", min_people=10, traits=["tier"]),
    )
    assert result["n"] > 30


def test_profitability_value_and_segment_summaries(engines: Any) -> None:
    duck, sparky, _ = engines
    store = Store()
    costs = {"phone": 6.0, "chat": 2.5}
    profits = same(
        metrics.profitability(duck, SEGMENTS, start_at=None, end_at=None, contact_costs=costs),
        metrics.profitability(sparky, SEGMENTS, start_at=None, end_at=None, contact_costs=costs),
    )
    assert len(profits) == 2
    values = same(metrics.clv_by_person(duck, now=NOW), metrics.clv_by_person(sparky, now=NOW))
    assert len(values) > 30
    segments.save_segment(store.con, {"name": "gold", "rule": 'trait.tier = "gold"'})
    same(
        metrics.segment_summaries(store.con, duck, now=NOW, contact_costs=costs),
        metrics.segment_summaries(store.con, sparky, now=NOW, contact_costs=costs),
    )
    store.close()


# --- segments -------------------------------------------------------------------------


RULES = {
    "buyers": "purchases_90d >= 2",
    "unhappy": "last_nps <= 6",
    "gold": 'trait.tier = "gold"',
    "hoppers": "effort_channel_hops_90d >= 1",
}


def test_segment_expressions_and_memberships(engines: Any) -> None:
    from opencx.segments import features_expression, parse_rule

    duck, sparky, _ = engines
    members = rows_of(segments.membership_expression(duck, RULES, NOW))
    assert members == rows_of(segments.membership_expression(sparky, RULES, NOW)) and members
    one = rows_of(segments.segment_expression(duck, RULES["buyers"], NOW))
    assert one == rows_of(segments.segment_expression(sparky, RULES["buyers"], NOW)) and one

    def by_rule(warehouse: Warehouse) -> list[Any]:
        features = features_expression(warehouse, NOW)
        flag = segments.rule_expression(parse_rule(RULES["unhappy"]), features, warehouse)
        return rows_of(features.select("person_id", flag=flag))

    assert by_rule(duck) == by_rule(sparky)
    traits = segments.computed_traits_table(duck)
    assert traits is not None and rows_of(traits) == rows_of(segments.computed_traits_table(sparky))


def test_orders_and_their_revenue(engines: Any) -> None:
    duck, sparky, _ = engines
    assert rows_of(segments.orders(duck)) == rows_of(segments.orders(sparky))

    def revenue(warehouse: Warehouse) -> list[Any]:
        events = warehouse.events()
        return rows_of(
            events.select("seq", revenue=segments.order_revenue(warehouse, events.properties))
        )

    assert revenue(duck) == revenue(sparky)


def test_calibration(engines: Any) -> None:
    duck, sparky, _ = engines
    end_at = T0 + timedelta(days=25)
    table = rows_of(segments.calibration_expression(duck, end_at=end_at))
    assert table == rows_of(segments.calibration_expression(sparky, end_at=end_at)) and table
    same(
        segments.calibration_summary(duck, end_at=end_at),
        segments.calibration_summary(sparky, end_at=end_at),
    )


def test_saved_segments_refreshed_from_either_engine(engines: Any) -> None:
    duck, sparky, _ = engines
    store = Store()
    for name, rule in RULES.items():
        saved = segments.save_segment(store.con, {"name": name, "rule": rule}, warehouse=duck)
        assert saved == segments.save_segment(
            store.con, {"name": name, "rule": rule}, warehouse=sparky
        )
    refreshed = []
    for warehouse in (duck, sparky):
        result = segments.refresh_segments(store.con, warehouse, NOW)
        members = store.con.execute("SELECT segment, person_id FROM segment_members ORDER BY ALL")
        refreshed.append((canon(result.sizes), members.fetchall()))
    assert refreshed[0] == refreshed[1] and refreshed[0][1]
    assert segments.record_segment_sizes(store.con, duck, NOW) == segments.record_segment_sizes(
        store.con, sparky, NOW
    )
    assert rows_of(segments.saved_memberships(store.con, duck)) == rows_of(
        segments.saved_memberships(store.con, sparky)
    )
    store.close()


# --- voice of the customer ------------------------------------------------------------


def test_voc_reports(engines: Any) -> None:
    from opencx.voc import reports

    duck, sparky, _ = engines
    assert rows_of(reports.answers(duck)) == rows_of(reports.answers(sparky))
    for by in ("channel", "touchpoint", "survey_id"):
        assert same(reports.score_by(duck, "csat", by), reports.score_by(sparky, "csat", by))  # type: ignore[arg-type]
    for grain in ("week", "month"):
        trend = same(
            reports.score_trend(duck, "nps", grain), reports.score_trend(sparky, "nps", grain)
        )  # type: ignore[arg-type]
        assert trend
    same(reports.response_rates(duck), reports.response_rates(sparky))
    said = same(reports.all_verbatims(duck), reports.all_verbatims(sparky))
    assert len(said) > 30
    found = same(
        reports.verbatims(duck, search="refund", max_score=8),
        reports.verbatims(sparky, search="refund", max_score=8),
    )
    assert found
    same(reports.answers_of(duck, "p3"), reports.answers_of(sparky, "p3"))


# --- coverage -------------------------------------------------------------------------

PARITY_FILES = (
    ROOT / "test_parity_all.py",
    ROOT / "test_warehouse.py",
    ROOT / "metrics" / "test_parity.py",
    ROOT / "segments" / "test_parity.py",
)
PACKAGES = (
    "opencx.journeys",
    "opencx.metrics",
    "opencx.segments",
    "opencx.voc",
    "opencx.voc.reports",
)


def analytics_functions() -> set[str]:
    """Public functions of the analytics packages with a `Warehouse` parameter."""
    found = set()
    for name in PACKAGES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")]):
            fn = getattr(module, attr)
            if not inspect.isfunction(fn) or not fn.__module__.startswith(name.rsplit(".", 1)[0]):
                continue
            params = inspect.signature(fn).parameters.values()
            if any("Warehouse" in str(p.annotation) for p in params):
                found.add(attr)
    return found


def test_every_analytics_function_has_a_parity_test() -> None:
    functions = analytics_functions()
    assert len(functions) > 40
    text = "\n".join(
        line for path in PARITY_FILES for line in path.read_text().splitlines()
        if not line.lstrip().startswith(("def ", "#"))
    )  # fmt: skip
    missing = sorted(
        f
        for f in functions
        if f"{f}(" not in text and f".{f}," not in text and f".{f})" not in text
    )
    assert not missing, f"no parity test calls {', '.join(missing)}"
