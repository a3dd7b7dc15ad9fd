"""The Segments page: a rule saved from the form, counted, with its NPS and history."""

from __future__ import annotations

import httpx

from tests.web.conftest import BrandServer
from tests.web.test_journeys import _sign_in


def _csrf(client: httpx.Client) -> str:
    return client.get("/segments").text.split('name="csrf" value="')[1].split('"')[0]


def test_a_segment_is_saved_counted_and_explained(brand_server: BrandServer) -> None:
    with httpx.Client(base_url=brand_server.server.url, timeout=60) as client:
        _sign_in(client, "analyst@example.com")
        form = {"name": "app-users", "rule": 'channel = "app" or events_30d >= 1',
                "csrf": _csrf(client)}  # fmt: skip
        assert client.post("/segments", data=form).status_code == 303
        page = client.get("/segments").text
        assert "app-users" in page and "events_30d" in page
        broken = {"name": "bad", "rule": "purchases_90d >= and", "csrf": _csrf(client)}
        refused = client.post("/segments", data=broken)
        assert refused.status_code == 400 and "column" in refused.text
        hostile = {"name": "x", "rule": "__import__('os')", "csrf": _csrf(client)}
        assert client.post("/segments", data=hostile).status_code == 400


def test_members_are_read_as_refreshed_and_refresh_on_demand(brand_server: BrandServer) -> None:
    with httpx.Client(base_url=brand_server.server.url, timeout=60) as client:
        _sign_in(client, "analyst@example.com")
        page = client.get("/segments").text
        assert "upgrade-ready" in page and "Members as of" in page
        assert client.post("/segments/refresh", data={"csrf": _csrf(client)}).status_code == 303
        assert "Members as of" in client.get("/segments").text


def test_the_overview_shows_segments_and_kpi_trends(brand_server: BrandServer) -> None:
    with httpx.Client(base_url=brand_server.server.url, timeout=120) as client:
        _sign_in(client, "analyst@example.com")
        page = client.get("/").text
        assert "NPS week by week" in page and "<svg" in page
        analytics = client.get("/overview/analytics").text
        assert 'id="segments"' in analytics and "upgrade-ready" in analytics
        assert "profit, last 12 months" in analytics
