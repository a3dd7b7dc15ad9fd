"""Metrics API: NPS/CSAT/CES with intervals by group, and alerts; analysts only."""

from __future__ import annotations

import time
from pathlib import Path

from opencx.config import load_settings
from opencx.store import Store
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


def test_consistency_flags_the_lagging_channel_of_a_stage(api: ApiClient) -> None:
    from opencx.journeys import save_touchpoint_model

    save_touchpoint_model(
        api.store.con,
        "touchpoints:\n"
        "- {id: billing@chat, name: Chat, event: Chat Ended, channel: chat, stage: service}\n"
        "- {id: billing@phone, name: Call, event: Call Ended, channel: phone, stage: service}\n",
    )
    scores = {"billing@chat": [5] * 61 + [2] * 39, "billing@phone": [5] * 160 + [1] * 40}
    rows = [
        (f"p-{tp}-{i}", i / 10, "Survey Responded", "email",
         {"survey_type": "csat", "score": s, "touchpoint": tp})
        for tp, values in scores.items()
        for i, s in enumerate(values)
    ]  # fmt: skip
    write_events(api.store, rows)
    headers = api.bearer("analyst")
    response = api.client.get("/api/v1/metrics/consistency", params={"kind": "csat"},
                              headers=headers)  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    [stage] = body["stages"]
    assert (stage["kpi"], stage["stage"], stage["spread"]) == ("csat", "service", 80.0 - 61.0)
    assert {c["channel"]: c["responses"] for c in stage["channels"]} == {"phone": 200, "chat": 100}
    [flag] = body["flags"]
    assert (flag["channel"], flag["value"], flag["others"]) == ("chat", 61.0, 80.0)
    assert flag["message"] == (
        "CSAT for service in chat is 61% vs 80% on the other channels (p < 0.001, 100 answers)"
    )
    assert stage["lagging"] == [flag]
    strict = api.client.get("/api/v1/metrics/consistency", params={"min_n": 150},
                            headers=headers).json()  # fmt: skip
    assert strict["flags"] == []  # chat's 100 answers are too few to be compared
    after = {"from": "2030-01-01T00:00:00Z"}
    later = api.client.get("/api/v1/metrics/consistency", params=after, headers=headers).json()
    assert later == {"stages": [], "flags": []}
    assert api.client.get("/api/v1/metrics/consistency", params={"kind": "smiles"},
                          headers=headers).status_code == 422  # fmt: skip
    assert api.client.get("/api/v1/metrics/consistency",
                          headers=api.bearer("agent")).status_code == 403  # fmt: skip


def test_the_server_refreshes_segments_and_effort_traits_on_schedule(tmp_path: Path) -> None:
    from opencx.api._state import ServerState
    from opencx.segments import save_segment

    settings = load_settings(db=tmp_path / "s.duckdb", profiles_refresh_s=0, voc_every_s=0,
                             segments_every_s=0.2)  # fmt: skip
    with Store() as store:
        write_events(store, [
            ("p1", 0, "Password Reset Failed", "app"),
            ("p1", 0.5, "Call Started", "phone", {"topic": "password"}),
            ("p2", 0, "Order Completed", "web", {"revenue": 5}),
        ])  # fmt: skip
        save_segment(store.con, {"name": "buyers", "rule": "orders > 0"})
        store.con.execute(
            "INSERT INTO computed_traits VALUES ('p9', 'effort_score_90d', '5', now())"
        )
        state = ServerState.open(settings, store)
        state.start()
        try:
            deadline = time.monotonic() + 20
            members: list[tuple[str, str]] = []
            stale: list[tuple[str]] = [("p9",)]
            while time.monotonic() < deadline and (not members or stale):
                time.sleep(0.1)
                cursor = store.cursor()
                members = cursor.execute(
                    "SELECT segment, person_id FROM segment_members"
                ).fetchall()
                stale = cursor.execute("SELECT person_id FROM computed_traits").fetchall()
        finally:
            state.stop()
        assert members == [("buyers", "p2")]
        # The effort traits were rewritten: the log's events are months old, so nobody was
        # active in the last 90 days and the stale value is gone.
        assert stale == []
