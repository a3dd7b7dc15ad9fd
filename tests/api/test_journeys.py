"""Journey API: funnels, paths, transitions, cohorts, diagnostics, touchpoints and designs."""

from __future__ import annotations

import pytest

from tests.conftest import ApiClient
from tests.journeys.conftest import write_events
from tests.journeys.test_diagnostics import brand


@pytest.fixture
def loaded(api: ApiClient) -> ApiClient:
    write_events(api.store, brand(broken_app=True, people=300))
    return api


def test_a_funnel_with_a_breakdown_and_a_comparison(loaded: ApiClient) -> None:
    body = {
        "steps": [{"event": "Password Reset Started"}, {"event": "Password Reset Completed"}],
        "window": "1d",
        "by": "channel",
        "from": "2026-03-01T00:00:00Z",
        "to": "2026-03-20T00:00:00Z",
        "compare_to": {"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
    }
    response = loaded.client.post(
        "/api/v1/journeys/funnel", json=body, headers=loaded.bearer("analyst")
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    rows = answer["result"]["rows"]
    overall = [r for r in rows if r["group"] is None]
    assert overall[0]["entered"] > 100 and 0 < overall[1]["conversion_from_start"] < 1
    assert {r["group"] for r in rows if r["group"]} == {"app", "web"}
    assert answer["comparison"]["before"]["rows"][0]["entered"] == 0


def test_a_bad_funnel_is_a_400_or_422_naming_the_problem(loaded: ApiClient) -> None:
    headers = loaded.bearer("analyst")
    one_step = {"steps": [{"event": "A"}]}
    response = loaded.client.post("/api/v1/journeys/funnel", json=one_step, headers=headers)
    assert response.status_code == 400 and "2 to 12 steps" in response.text
    bad_window = {"steps": [{"event": "A"}, {"event": "B"}], "window": "soon"}
    response = loaded.client.post("/api/v1/journeys/funnel", json=bad_window, headers=headers)
    assert response.status_code in (400, 422) and "window" in response.text


def test_journey_analytics_need_the_analyst_role(loaded: ApiClient) -> None:
    for path in ("/api/v1/journeys/diagnostics", "/api/v1/journeys/cohorts"):
        assert loaded.client.get(path, headers=loaded.bearer("agent")).status_code == 403
        assert loaded.client.get(path).status_code == 401


def test_paths_transitions_cohorts_and_diagnostics(loaded: ApiClient) -> None:
    headers = loaded.bearer("analyst")
    get = loaded.client.get
    paths = get(
        "/api/v1/journeys/paths",
        params={"touchpoint": "password_reset_started@app", "depth": 2},
        headers=headers,
    ).json()
    assert paths[0]["steps"][0] == "password_reset_started@app" and paths[0]["people"] > 0
    flows = get("/api/v1/journeys/transitions", headers=headers).json()
    assert flows["transitions"] and flows["sankey"]["nodes"] and flows["hops"]
    cohorts = get("/api/v1/journeys/cohorts", params={"grain": "week"}, headers=headers).json()
    assert cohorts[0]["size"] > 0 and cohorts[0]["retention"][0] == 1.0
    findings = get("/api/v1/journeys/diagnostics", headers=headers).json()
    assert findings[0]["touchpoint"] == "password_reset_started@app"
    assert findings[0]["confidence_label"] == "high" and "x the rate" in findings[0]["evidence"]
    assert findings[0]["examples"]


def test_touchpoints_and_designs_round_trip(loaded: ApiClient) -> None:
    analyst, admin = loaded.bearer("analyst"), loaded.bearer("admin")
    text = loaded.client.get("/api/v1/journeys/touchpoints", headers=analyst).text
    assert "password_reset_started@app" in text
    edited = text.replace("stage: service", "stage: usage")
    refused = loaded.client.put("/api/v1/journeys/touchpoints", content=edited, headers=analyst)
    assert refused.status_code == 403
    saved = loaded.client.put("/api/v1/journeys/touchpoints", content=edited, headers=admin)
    assert saved.status_code == 200 and "stage: service" not in saved.text
    broken = loaded.client.put(
        "/api/v1/journeys/touchpoints", content="touchpoints: [{id: x}]", headers=admin
    )
    assert broken.status_code == 400 and "touchpoints.0" in broken.json()["error"]["message"]
    design = (
        "name: Reset\nstages:\n  - name: Reset\n    touchpoints: [password_reset_started@app]\n"
        "    targets: {effort: 0.01}\n  - name: Back\n    touchpoints: [product_viewed@app]\n"
    )
    assert loaded.client.put("/api/v1/journeys/designs", content=design, headers=analyst).is_success
    [saved_design] = loaded.client.get("/api/v1/journeys/designs", headers=analyst).json()
    assert saved_design["name"] == "Reset"
    actual = loaded.client.get("/api/v1/journeys/designs/Reset/actual", headers=analyst).json()
    assert actual[0]["entered"] > 0 and any("contact us" in f for f in actual[0]["flags"])
    missing = loaded.client.get("/api/v1/journeys/designs/Nope/actual", headers=analyst)
    assert missing.status_code == 404 and "Reset" in missing.json()["error"]["message"]
