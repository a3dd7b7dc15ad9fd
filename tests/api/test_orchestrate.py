"""Acting API: triggers, policy and its dry run, decisions, outbox, tasks, next best action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opencx.ingest import Ingestor, SourceContext
from opencx.orchestrate.policy import default_policy
from opencx.orchestrate.triggers import run_triggers
from opencx.profiles import refresh_profiles
from tests.conftest import ApiClient
from tests.voc.conftest import person

TASK = """
id: call-back
when: {event: Call Started, channel: phone}
action: {type: task, title: "Call $first_name back"}
"""
SMS = """
id: thanks-sms
when: {event: Order Completed}
action: {type: message, channel: sms, purpose: service, text: "Thanks $first_name"}
"""


def test_triggers_need_an_admin_to_change_and_errors_name_the_field(api: ApiClient) -> None:
    admin, analyst = api.bearer("admin"), api.bearer("analyst")
    assert api.client.put("/api/v1/triggers", content=TASK, headers=analyst).status_code == 403
    saved = api.client.put("/api/v1/triggers", content=TASK, headers=admin)
    assert saved.status_code == 200, saved.text
    assert saved.json()["action"]["type"] == "task"
    listed = api.client.get("/api/v1/triggers", headers=analyst).json()
    assert [t["id"] for t in listed] == ["call-back"]
    bad = api.client.put(
        "/api/v1/triggers", content="id: x\nwhen: {event: A}\naction: {type: sms}", headers=admin
    )
    assert bad.status_code == 400 and "action.type" in bad.json()["error"]["message"]
    assert api.client.get("/api/v1/triggers/nope", headers=analyst).status_code == 404
    assert api.client.delete("/api/v1/triggers/call-back", headers=admin).status_code == 204
    assert api.client.get("/api/v1/triggers", headers=analyst).json() == []


def test_policy_round_trip_and_dry_run(api: ApiClient) -> None:
    admin, analyst = api.bearer("admin"), api.bearer("analyst")
    shown = api.client.get("/api/v1/policy", headers=analyst)
    assert shown.status_code == 200 and "budget:" in shown.text
    saved = api.client.put("/api/v1/policy", content="budget: {max: 2, per: 5d}", headers=admin)
    assert saved.status_code == 200 and "max: 2" in saved.text
    assert "per: 5d" in api.client.get("/api/v1/policy", headers=analyst).text
    bad = api.client.put("/api/v1/policy", content="budget: {max: -1}", headers=admin)
    assert bad.status_code == 400 and "budget.max" in bad.json()["error"]["message"]
    dry = api.client.post("/api/v1/policy/simulate?days=7", content="", headers=analyst)
    assert dry.status_code == 200, dry.text
    assert dry.json()["proposals"] == 0
    assert api.client.post("/api/v1/policy/simulate?days=0", headers=analyst).status_code == 422


def test_decisions_outbox_tasks_and_next_best_action(api: ApiClient, settings: object) -> None:
    ingestor = Ingestor(api.store, settings)  # type: ignore[arg-type]
    jane = person(ingestor, "jane", first_name="Jane", phone="+1 415 555 0100")
    refresh_profiles(api.store.cursor())
    admin, agent, analyst = api.bearer("admin"), api.bearer("agent"), api.bearer("analyst")
    for text in (TASK, SMS):
        assert api.client.put("/api/v1/triggers", content=text, headers=admin).status_code == 200
    now = datetime.now(UTC).replace(hour=15, minute=0)
    for event, channel in (("Order Completed", "web"), ("Call Started", "phone")):
        ingestor.ingest(
            [{"type": "track", "userId": "jane", "event": event, "timestamp": now.isoformat(),
              "context": {"timezone": "America/New_York"}}],
            SourceContext(channel, channel),
        )  # fmt: skip
    run_triggers(ingestor, default_policy(), now=now + timedelta(minutes=1))

    decided = api.client.get("/api/v1/decisions", params={"person": jane}, headers=analyst)
    assert decided.status_code == 200
    [decision] = decided.json()
    assert decision["outcome"] == "send" and decision["channel"] == "sms"
    assert decision["reasons"]
    box = api.client.get("/api/v1/outbox", headers=analyst).json()
    assert box["counts"]["pending"] == 1
    assert box["items"][0]["payload"]["text"] == "Thanks Jane"

    [task] = api.client.get("/api/v1/tasks", headers=agent).json()
    assert task["title"] == "Call Jane back"
    done = api.client.post(f"/api/v1/tasks/{task['id']}/done", headers=agent)
    assert done.status_code == 200 and done.json()["status"] == "done"
    assert api.client.get("/api/v1/tasks", headers=agent).json() == []
    assert api.client.post("/api/v1/tasks/nope/done", headers=agent).status_code == 404

    nba = api.client.get(f"/api/v1/profiles/{jane}/next-best-action", headers=agent)
    assert nba.status_code == 200, nba.text
    body = nba.json()
    assert body["person_id"] == jane
    assert [d["id"] for d in body["decisions"]] == [decision["id"]]
    assert isinstance(body["actions"], list)
    wrong = api.client.get(
        f"/api/v1/profiles/{jane}/next-best-action", params={"channel": "fax"}, headers=agent
    )
    assert wrong.status_code == 400 and "channel" in wrong.json()["error"]["message"]
    missing = api.client.get("/api/v1/profiles/p_nobody/next-best-action", headers=agent)
    assert missing.status_code == 404
