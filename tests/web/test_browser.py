"""The web app in real headless Chromium: sign in, find a customer, read their timeline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.web.conftest import ARTIFACTS, CHROMIUM_ARGS, PASSWORD, BrandServer, chromium_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def sign_in(browser: Browser, brand: BrandServer, email: str) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{brand.server.url}/customers")
    expect(page).to_have_url(f"{brand.server.url}/login?next=/customers")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    return page


def test_agent_finds_a_customer_and_reads_the_cross_channel_timeline(
    browser: Browser, brand_server: BrandServer
) -> None:
    page = sign_in(browser, brand_server, "agent@example.com")
    expect(page.locator("h1")).to_have_text("Customers")
    page.screenshot(path=str(ARTIFACTS / "customers.png"), full_page=True)

    page.fill("input[name=q]", brand_server.email.upper())
    page.click("button:has-text('Search')")
    expect(page.locator("h2", has_text="Right now")).to_be_visible()
    rows = page.locator("#timeline tr.ev")
    expect(rows.first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "customer-360.png"), full_page=False)

    # Infinite scroll: older interactions load as the end of the table comes into view,
    # until the whole history, from every channel, is on the one timeline.
    for _ in range(30):  # bounded
        if not page.locator("tr.more").count():
            break
        before = rows.count()
        page.locator("tr.more").scroll_into_view_if_needed()
        expect(rows).not_to_have_count(before)
    cells = page.locator("#timeline tr.ev td:nth-child(2)").all_inner_texts()
    channels = {cell.split()[0] for cell in cells}
    assert len(channels) >= 3, channels
    assert rows.count() == int(page.locator(".ids dd").last.inner_text().replace(",", ""))

    # Filter the timeline to one channel.
    page.select_option("select[name=channel]", "phone")
    expect(page.locator("#timeline tr.ev").first).to_contain_text("phone")
    cells = page.locator("#timeline tr.ev td:nth-child(2)").all_inner_texts()
    assert cells and all(cell.startswith("phone") for cell in cells), cells


def test_phone_written_another_way_finds_the_customer(
    browser: Browser, brand_server: BrandServer
) -> None:
    page = sign_in(browser, brand_server, "agent@example.com")
    digits = brand_server.phone[-10:]
    page.fill("input[name=q]", f"({digits[:3]}) {digits[3:6]}-{digits[6:]}")
    page.click("button:has-text('Search')")
    expect(page.locator(".ids")).to_contain_text(brand_server.phone)


def test_agent_cannot_open_settings_but_admin_can(
    browser: Browser, brand_server: BrandServer
) -> None:
    agent = sign_in(browser, brand_server, "agent@example.com")
    expect(agent.locator("nav")).not_to_contain_text("Settings")
    response = agent.goto(f"{brand_server.server.url}/settings")
    assert response is not None and response.status == 403
    expect(agent.locator("main")).to_contain_text("needs the admin role")

    admin = sign_in(browser, brand_server, "admin@example.com")
    admin.goto(f"{brand_server.server.url}/")
    expect(admin.locator("h1")).to_have_text("Overview")
    expect(admin.locator("svg.chart").first).to_be_visible()
    admin.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
    admin.goto(f"{brand_server.server.url}/settings")
    expect(admin.locator("#sources")).to_contain_text("contact-center")
    admin.screenshot(path=str(ARTIFACTS / "settings.png"), full_page=True)
