"""Metrics API: NPS/CSAT/CES with intervals by group, and alerts; analysts only."""

from __future__ import annotations

from tests.conftest import ApiClient
from tests.journeys.conftest import write_events


def test_nps_by_channel_equals_a_hand_count(api: ApiClient) -> None:
    scores = {"app": [10, 9, 3, 7, 0], "web": [10, 10, 9, 8]}
    rows = [
        (f"p-{ch}-{i}", i, "Survey Responded", ch, {"survey_type": "nps", "score": s})
        for ch, values in scores.items()
        for i, s in enumerate(values)
    ]
    write_events(api.store, rows)
    response = api.client.get(
        "/api/v1/metrics/nps", params={"by": "channel"}, headers=api.bearer("analyst")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    groups = {g["group"]: g for g in body["groups"]}
    assert groups["app"]["value"] == (2 - 2) / 5 * 100
    assert groups["web"]["value"] == 75.0 and groups["web"]["responses"] == 4
    assert body["overall"]["responses"] == 9
    assert body["overall"]["low"] < body["overall"]["value"] < body["overall"]["high"]
    refused = api.client.get("/api/v1/metrics/nps", headers=api.bearer("agent"))
    assert refused.status_code == 403
    unknown = api.client.get("/api/v1/metrics/smiles", headers=api.bearer("analyst"))
    assert unknown.status_code == 422
    alerts = api.client.get("/api/v1/metrics/alerts", headers=api.bearer("analyst"))
    assert alerts.status_code == 200 and alerts.json() == []


def test_nps_by_saved_segment(api: ApiClient) -> None:
    from opencx.segments import save_segment

    rows = [
        (f"p{i}", i, "Survey Responded", "email", {"survey_type": "nps", "score": s})
        for i, s in enumerate([10, 9, 2, 1])
    ]
    write_events(api.store, rows)
    headers = api.bearer("analyst")
    missing = api.client.get("/api/v1/metrics/nps", params={"by": "segment"}, headers=headers)
    assert missing.status_code == 400 and "no saved segment" in missing.text
    save_segment(api.store.con, "name: unhappy\nrule: last_nps <= 6")
    body = api.client.get("/api/v1/metrics/nps", params={"by": "segment"}, headers=headers).json()
    [group] = body["groups"]
    assert group["group"] == "unhappy" and group["value"] == -100.0 and group["responses"] == 2
