"""Diagnostics find a planted broken touchpoint, explain it, and stay quiet on noise."""

from __future__ import annotations

import random
from collections.abc import Callable

from opencx.journeys import model_from_counts
from opencx.journeys.diagnostics import completion_pairs, diagnose, flows
from opencx.warehouse import Warehouse
from tests.journeys.conftest import Row

Log = Callable[..., Warehouse]


def brand(broken_app: bool, seed: int = 3, people: int = 600) -> list[Row]:
    """People browse, reset passwords on web or app, sometimes call; the app may be broken."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for p in range(people):
        person, t = f"p{p}", rng.uniform(0, 200)
        channel = "app" if p % 2 else "web"
        rows.append((person, t, "Product Viewed", channel))
        if rng.random() < 0.05:
            rows.append((person, t + 5, "Call Started", "phone"))
        if rng.random() < 0.6:
            t += 24
            rows.append((person, t, "Password Reset Started", channel))
            fails = rng.random() < (0.5 if broken_app and channel == "app" else 0.05)
            if fails:
                rows.append((person, t + 0.1, "Password Reset Failed", channel))
                if rng.random() < 0.6:
                    rows.append((person, t + rng.uniform(1, 40), "Call Started", "phone"))
            else:
                rows.append((person, t + 0.1, "Password Reset Completed", channel))
            rows.append((person, t + 60, "Product Viewed", channel))
    return rows


def model_of(rows: list[Row]) -> object:
    return model_from_counts(sorted({("track", r[2], r[3]) for r in rows}))


def test_the_broken_touchpoint_is_ranked_first_with_its_evidence(log: Log) -> None:
    rows = brand(broken_app=True)
    findings = diagnose(log(rows), model_of(rows))  # type: ignore[arg-type]
    top = findings[0]
    assert top.touchpoint == "password_reset_started@app"
    assert top.confidence_label == "high"
    kinds = {s.kind for s in top.signals}
    assert kinds == {"drop_off", "effort"}
    drop = next(s for s in top.signals if s.kind == "drop_off")
    assert 0.4 < drop.rate < 0.6 and drop.expected < 0.1
    effort = next(s for s in top.signals if s.kind == "effort")
    assert effort.lift is not None and effort.lift > 3
    assert "of customers who start password reset in the app contact us by phone" in top.evidence
    assert f"{effort.lift:.1f}x" in top.evidence
    assert top.customers_affected >= effort.affected
    assert len(top.examples) == 5 and all(e.startswith("p") for e in top.examples)


def test_no_high_confidence_finding_when_nothing_is_broken(log: Log) -> None:
    rows = brand(broken_app=False)
    findings = diagnose(log(rows), model_of(rows))  # type: ignore[arg-type]
    assert all(f.confidence_label != "high" for f in findings)


def test_flows_and_completion_pairs_group_a_touchpoints_steps() -> None:
    model = model_of(brand(broken_app=True, people=50))
    lead = flows(model)  # type: ignore[arg-type]
    assert lead["password_reset_failed@app"] == "password_reset_started@app"
    assert lead["product_viewed@web"] == "product_viewed@web"
    pairs = {(a.id, b.id) for a, b in completion_pairs(model)}  # type: ignore[arg-type]
    assert ("password_reset_started@web", "password_reset_completed@web") in pairs


def test_negative_feedback_tied_to_a_touchpoint_counts(log: Log) -> None:
    rows: list[Row] = []
    for p in range(200):
        tp = "password_reset_started@app" if p % 2 else "product_viewed@web"
        score = 2 if (p % 2 and p % 5) else 9
        rows.append((f"p{p}", 1, "Survey Responded", "email",
                     {"survey_type": "nps", "score": score, "touchpoint": tp}))  # fmt: skip
        rows.append((f"p{p}", 0, "Password Reset Started" if p % 2 else "Product Viewed",
                     "app" if p % 2 else "web"))  # fmt: skip
    findings = diagnose(log(rows), model_of(rows))  # type: ignore[arg-type]
    top = findings[0]
    assert top.touchpoint == "password_reset_started@app"
    [signal] = [s for s in top.signals if s.kind == "feedback"]
    assert signal.rate == 0.8 and signal.expected == 0.0
    assert "80% of survey answers about" in signal.evidence
