"""The Journeys page: funnel builder, diagnostics to a customer, designs, editing, doors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.web.conftest import ARTIFACTS, PASSWORD, BrandServer
from tests.web.test_browser import browser, sign_in

pytestmark = pytest.mark.slow
__all__ = ["browser"]  # the module-scoped fixture, shared


def test_analyst_builds_a_funnel_and_follows_a_diagnosis_to_a_customer(
    browser: Browser, brand_server: BrandServer
) -> None:
    page = sign_in(browser, brand_server, "admin@example.com")
    page.goto(f"{brand_server.server.url}/journeys")
    expect(page.locator("h1")).to_have_text("Journeys")
    page.fill("input[aria-label='Step 1']", "Product Viewed")
    page.fill("input[aria-label='Step 2']", "Product Added")
    page.fill("input[aria-label='Step 3']", "Order Completed")
    page.select_option("select[name=by]", "channel")
    page.click("button:has-text('Show funnel')")
    chart = page.locator("#funnel-chart svg.chart")
    expect(chart).to_be_visible()
    expect(chart.locator("rect")).to_have_count(3)
    expect(page.locator("table.funnel-table")).to_contain_text("1. Product Viewed")
    expect(page.locator("table.funnel-table")).to_contain_text("web")

    finding = page.locator("li.finding").first
    expect(finding).to_be_visible(timeout=20_000)
    expect(finding.locator(".evidence").first).to_contain_text("%")
    expect(page.locator("svg.sankey")).to_be_visible(timeout=20_000)
    expect(page.locator("table.design")).to_contain_text("Sign in", timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "journeys.png"), full_page=True)

    finding.locator("a.example").first.click()
    expect(page.locator("h2", has_text="Right now")).to_be_visible()
    assert "/customers/p_" in page.url


def test_a_bad_funnel_is_explained_on_the_page(brand_server: BrandServer) -> None:
    with httpx.Client(base_url=brand_server.server.url) as client:
        _sign_in(client, "admin@example.com")
        page = client.get("/journeys", params={"step": ["Product Viewed", "tp:nope"]})
        assert page.status_code == 200
        assert "unknown touchpoint" in page.text and "nope" in page.text


def _sign_in(client: httpx.Client, email: str) -> None:
    form = client.get("/login").text
    csrf = form.split('name="csrf" value="')[1].split('"')[0]
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf": csrf})
    assert response.status_code == 303


@pytest.fixture
def analyst(brand_server: BrandServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=brand_server.server.url) as client:
        _sign_in(client, "analyst@example.com")
        yield client


def _csrf(client: httpx.Client) -> str:
    return client.get("/journeys").text.split('name="csrf" value="')[1].split('"')[0]


def test_designs_are_saved_from_the_page_and_compared(analyst: httpx.Client) -> None:
    design = (
        "name: Web purchase\nstages:\n  - name: Look\n    touchpoints: [product_viewed@web]\n"
        "    targets: {conversion: 0.99}\n  - name: Buy\n    touchpoints: [order_completed@web]\n"
    )
    saved = analyst.post("/journeys/designs", data={"body": design, "csrf": _csrf(analyst)})
    assert saved.status_code == 303
    fragment = analyst.get("/journeys/designs").text
    assert "Web purchase" in fragment and "against a target of 99%" in fragment
    broken = analyst.post("/journeys/designs", data={"body": "name: x", "csrf": _csrf(analyst)})
    assert broken.status_code == 400 and "stages" in broken.text
    forged = analyst.post("/journeys/designs", data={"body": design, "csrf": "forged"})
    assert forged.status_code == 400


def test_only_admins_edit_the_touchpoint_model(
    analyst: httpx.Client, brand_server: BrandServer
) -> None:
    page = analyst.get("/journeys").text
    assert 'action="/journeys/touchpoints"' not in page
    refused = analyst.post("/journeys/touchpoints", data={"body": "touchpoints: []", "csrf": "x"})
    assert refused.status_code == 403
    with httpx.Client(base_url=brand_server.server.url) as agent:
        _sign_in(agent, "agent@example.com")
        assert agent.get("/journeys").status_code == 403
        assert agent.get("/journeys/diagnostics").status_code == 403
