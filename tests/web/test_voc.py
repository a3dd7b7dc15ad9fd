"""Hosted survey page in Chromium, the closed loop to the Cases queue, and the VoC page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.web.conftest import ARTIFACTS, BrandServer
from tests.web.test_browser import browser, sign_in
from tests.web.test_journeys import _sign_in

pytestmark = pytest.mark.slow
__all__ = ["browser"]

SURVEY = """
id: ces-after-call
name: How was your call?
touchpoint: call_ended@phone
questions:
  - {id: ease, type: ces}
  - {id: why, type: text, text: "What could we have done better?", required: false}
trigger: {after: call_ended@phone, delay: 1h, channel: sms}
recontact: {show: up_to, max_times: 50, wait: "0"}
brand: {name: Northwind Mobile, colour: "#7c3aed"}
"""


def api(brand: BrandServer) -> httpx.Client:
    return httpx.Client(
        base_url=brand.server.url,
        headers={"Authorization": f"Bearer {brand.server.admin_token}"},
        timeout=30,
    )


# These tests are about surveys, not the contact policy (tests/orchestrate): at any hour CI
# runs them, the brand's customers may be in quiet hours or at their SMS cap, so the module
# runs under a policy that lets invitations through, and puts the brand's policy back.
OPEN_POLICY = (
    "budget: {max: 1000}\nchannel_caps: {}\nquiet_hours: null\nsurvey_fatigue: {min_gap: 1s}\n"
)


@pytest.fixture(autouse=True, scope="module")
def open_policy(brand_server: BrandServer) -> Iterator[None]:
    with api(brand_server) as client:
        before = client.get("/api/v1/policy").text
        assert client.put("/api/v1/policy", content=OPEN_POLICY).is_success
        yield
        assert client.put("/api/v1/policy", content=before).is_success


def invite(brand: BrandServer, identifier: str) -> dict[str, Any]:
    with api(brand) as client:
        assert client.put("/api/v1/surveys", content=SURVEY).is_success
        response = client.post(
            "/api/v1/surveys/ces-after-call/invitations",
            json={"identifier": identifier, "channel": "sms"},
        )
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]


def test_a_survey_after_a_call_is_answered_and_a_detractor_gets_a_case(
    browser: Browser, brand_server: BrandServer
) -> None:
    issued = invite(brand_server, f"email:{brand_server.email}")
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.goto(issued["url"])
    expect(page.locator("h1")).to_have_text("How was your call?")
    expect(page.locator(".brandbar")).to_contain_text("Northwind Mobile")
    page.locator("fieldset.q-ces label.point", has_text="2").click()
    page.fill("textarea[name=why]", "The code never arrived and I waited 40 minutes on hold.")
    page.screenshot(path=str(ARTIFACTS / "survey.png"), full_page=True)
    page.click("button:has-text('Send')")
    expect(page.locator("h1")).to_have_text("Thank you")
    page.goto(issued["url"])
    expect(page.locator(".closed")).to_contain_text("already answered")

    agent = sign_in(browser, brand_server, "agent@example.com")
    agent.goto(f"{brand_server.server.url}/customers/{issued['person_id']}")
    expect(agent.locator("#timeline")).to_contain_text("Survey Responded")
    expect(agent.locator("section", has_text="Cases and answers")).to_contain_text("open case")
    agent.goto(f"{brand_server.server.url}/cases")
    row = agent.locator("table.cases tr", has_text=issued["person_id"]).filter(has_text="CES 2")
    expect(row).to_have_count(1)
    expect(row.locator("td.due")).not_to_be_empty()
    agent.screenshot(path=str(ARTIFACTS / "cases.png"), full_page=True)
    row.locator("a").first.click()
    expect(agent.locator("h1")).to_contain_text("case-")
    agent.select_option("select[name=status]", "resolved")
    agent.select_option("select[name=root_cause]", "app-defect")
    agent.fill("textarea[name=note]", "Sent a new reset link by SMS.")
    agent.click("button:has-text('Save')")
    expect(agent.locator("h1")).to_contain_text("resolved")
    expect(agent.locator("dl")).to_contain_text("follow-up")


def test_a_second_invitation_within_the_waiting_time_is_refused(
    brand_server: BrandServer,
) -> None:
    with api(brand_server) as client:
        client.put("/api/v1/surveys", content=SURVEY)
        other = SURVEY.replace("ces-after-call", "ces-second").replace(', wait: "0"', "")
        assert client.put("/api/v1/surveys", content=other).is_success
        row = client.get(
            "/api/v1/profiles", params={"identifier": f"phone:{brand_server.phone}"}
        ).json()
        who = f"phone:{brand_server.phone}"
        first = client.post("/api/v1/surveys/ces-after-call/invitations", json={"identifier": who})
        assert first.status_code in (201, 409)  # the first test may have asked them already
        second = client.post("/api/v1/surveys/ces-second/invitations", json={"identifier": who})
        assert second.status_code == 409
        assert "last survey invitation" in second.json()["error"]["message"]
        assert "waiting time is 7 days" in second.json()["error"]["message"]
        assert row["profiles"]


def test_the_answer_api_answers_once_and_says_why_not_twice(brand_server: BrandServer) -> None:
    issued = invite(brand_server, f"email:{brand_server.others[0]}")
    with httpx.Client(base_url=brand_server.server.url) as public:
        url = f"/api/v1/survey-invitations/{issued['token']}"
        shown = public.get(url).json()
        assert shown["survey"]["questions"][0]["type"] == "ces"
        bad = public.post(url, json={"answers": {"ease": 8}})
        assert bad.status_code == 400 and "ease: 8 is out of range" in bad.text
        ok = public.post(url, json={"answers": {"ease": 7}})
        assert ok.json() == {"recorded": True, "score": 7, "case_opened": False}
        again = public.post(url, json={"answers": {"ease": 7}})
        assert again.status_code == 409 and "already answered" in again.text
        assert public.get("/api/v1/survey-invitations/not-a-token").status_code == 404


def test_the_voc_page_shows_scores_themes_and_verbatims(brand_server: BrandServer) -> None:
    with httpx.Client(base_url=brand_server.server.url) as client:
        _sign_in(client, "analyst@example.com")
        page = client.get("/voc")
        assert page.status_code == 200
        assert "Response rates" in page.text and "Verbatims" in page.text
        assert "<title>Voice of the customer · OpenCX</title>" in page.text
        assert page.text.count('id="surveys"') == 1
        agent = httpx.Client(base_url=brand_server.server.url)
        _sign_in(agent, "agent@example.com")
        assert agent.get("/voc").status_code == 403
        assert agent.get("/cases").status_code == 200
        agent.close()


def _csrf(client: httpx.Client) -> str:
    return client.get("/voc").text.split('name="csrf" value="')[1].split('"')[0]


def test_surveys_and_themes_are_edited_on_the_page(brand_server: BrandServer) -> None:
    with httpx.Client(base_url=brand_server.server.url, timeout=30) as client:
        _sign_in(client, "analyst@example.com")
        feedback = (
            "id: open-feedback\nname: Tell us anything\nkind: feedback\n"
            "questions: [{id: csat, type: csat}, {id: text, type: text, text: Anything else, "
            "required: false}]"
        )
        saved = client.post("/voc/surveys", data={"body": feedback, "csrf": _csrf(client)})
        assert saved.status_code == 303
        assert 'href="/f/open-feedback"' in client.get("/voc").text
        bad = client.post("/voc/surveys", data={"body": "id: x", "csrf": _csrf(client)})
        assert bad.status_code == 400 and "questions" in bad.text
        themes = "themes:\n  - {name: Resets, phrases: [password reset, code]}\n"
        assert client.post("/voc/themes", data={"body": themes, "csrf": _csrf(client)}).is_redirect
        assert "<td>Resets</td>" in client.get("/voc").text
        forged = client.post("/voc/themes", data={"body": themes, "csrf": "nope"})
        assert forged.status_code == 400


def test_the_open_feedback_link_never_needs_an_invitation(brand_server: BrandServer) -> None:
    with httpx.Client(base_url=brand_server.server.url, timeout=30) as client:
        _sign_in(client, "analyst@example.com")
        feedback = (
            "id: open-feedback-2\nname: Tell us anything\nkind: feedback\n"
            "questions: [{id: csat, type: csat}, {id: text, type: text, text: Anything else, "
            "required: false}]"
        )
        assert client.post("/voc/surveys", data={"body": feedback, "csrf": _csrf(client)})
    with httpx.Client(base_url=brand_server.server.url, timeout=30) as public:
        form = public.get("/f/open-feedback-2")
        assert form.status_code == 200 and 'name="email"' in form.text
        sent = public.post(
            "/f/open-feedback-2",
            data={"csat": "1", "text": "Awful, nothing works", "email": brand_server.others[1]},
        )
        assert sent.status_code == 200 and "Thank you" in sent.text
        again = public.post("/f/open-feedback-2", data={"csat": "5"})
        assert again.status_code == 200  # open forms take any number of answers
        wrong = public.post("/f/open-feedback-2", data={"csat": "9"})
        assert wrong.status_code == 400 and "out of range" in wrong.text
        assert public.get("/f/ces-after-call").status_code == 404  # not an open form
    with api(brand_server) as client:
        cases = client.get("/api/v1/cases", params={"status": "open"}).json()
        assert any(c["survey_id"] == "open-feedback-2" and c["score"] == 1 for c in cases)
