"""The Contact policy page: rules in words, the editor with its errors, the dry run."""

from __future__ import annotations

import html

import httpx

from tests.web.conftest import BrandServer
from tests.web.test_journeys import _sign_in


def _csrf(client: httpx.Client) -> str:
    return client.get("/policy").text.split('name="csrf" value="')[1].split('"')[0]


def test_the_page_explains_the_policy_and_dry_runs_a_change(brand_server: BrandServer) -> None:
    with httpx.Client(base_url=brand_server.server.url, timeout=120) as client:
        _sign_in(client, "analyst@example.com")
        page = client.get("/policy")
        assert page.status_code == 200
        assert "One budget per person" in page.text and "at most 3 contacts per 7 days" in page.text
        assert "Quiet hours" in page.text and "Decisions" in page.text
        assert "Save policy" not in page.text  # analysts may try a policy, not save it
        dry = client.post(
            "/policy/simulate",
            data={"days": "30", "text": "budget: {max: 1, per: 7d}", "csrf": _csrf(client)},
        )
        assert dry.status_code == 200, dry.text[:500]
        assert "Dry run:" in dry.text and "By the rule that held or dropped it" in dry.text
        assert "budget: {max: 1, per: 7d}" in dry.text  # the tried policy stays in the editor
        bad = client.post(
            "/policy/simulate", data={"text": "budget: {max: x}", "csrf": _csrf(client)}
        )
        assert bad.status_code == 400 and "budget.max" in bad.text
        refused = client.post("/policy", data={"text": "budget: {max: 1}", "csrf": _csrf(client)})
        assert refused.status_code == 403


def test_an_admin_saves_a_policy_and_errors_keep_the_text(brand_server: BrandServer) -> None:
    with httpx.Client(base_url=brand_server.server.url, timeout=60) as client:
        _sign_in(client, "admin@example.com")
        original = client.get("/policy").text.split('aria-label="policy YAML">')[1]
        original = original.split("</textarea>")[0]
        bad = client.post(
            "/policy", data={"text": "quiet_hours: {start: 25:99}", "csrf": _csrf(client)}
        )
        assert bad.status_code == 400 and "quiet_hours" in bad.text
        assert "quiet_hours: {start: 25:99}" in bad.text
        saved = client.post("/policy", data={"text": "budget: {max: 5, per: 14d}",
                                              "csrf": _csrf(client)})  # fmt: skip
        assert saved.status_code == 303
        assert "at most 5 contacts per 14 days" in client.get("/policy").text
        restore = {"text": html.unescape(original), "csrf": _csrf(client)}
        assert client.post("/policy", data=restore).status_code == 303


def test_the_customer_page_shows_next_best_action(brand_server: BrandServer) -> None:
    with httpx.Client(base_url=brand_server.server.url, timeout=60) as client:
        _sign_in(client, "agent@example.com")
        found = client.get("/customers", params={"q": brand_server.email}, follow_redirects=True)
        assert found.status_code == 200
        assert "Next best action" in found.text
        assert "Contacts: sent, held, dropped" in found.text
        panel = client.get(f"{found.url.path}/next-best-action")
        assert panel.status_code == 200 and 'class="nba-body"' in panel.text
        assert "Nothing to suggest right now." in panel.text or "<ol>" in panel.text


def test_an_admin_adds_and_deletes_a_trigger(brand_server: BrandServer) -> None:
    with httpx.Client(base_url=brand_server.server.url, timeout=60) as client:
        _sign_in(client, "admin@example.com")
        bad = client.post(
            "/policy/triggers",
            data={"trigger": "id: x\nwhen: {event: A}\naction: {type: message}",
                  "csrf": _csrf(client)},
        )  # fmt: skip
        assert bad.status_code == 400 and "needs text" in bad.text
        good = (
            "id: web-thanks\nwhen: {event: Order Completed, channel: web}\n"
            "action: {type: task, title: Say thanks}\n"
        )
        saved = client.post("/policy/triggers", data={"trigger": good, "csrf": _csrf(client)})
        assert saved.status_code == 303
        assert "web-thanks" in client.get("/policy").text
        gone = client.post("/policy/triggers/web-thanks/delete", data={"csrf": _csrf(client)})
        assert gone.status_code == 303
        assert "web-thanks" not in client.get("/policy").text
