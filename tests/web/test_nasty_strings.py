"""Hostile strings stored everywhere a person or a user can write render inert on every page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opencx.access import add_source, add_user
from opencx.api import create_app
from opencx.config import load_settings
from opencx.ingest import Ingestor, SourceContext
from opencx.profiles import refresh_profiles
from opencx.store import Store
from opencx.voc import open_cases_from_answers
from tests.conftest import basic_auth
from tests.web.test_app import PASSWORD, sign_in

# Each string carries a marker (N00..) to find it on a page, and payloads whose effect
# would be visible: a script, a handler, a URL scheme, template maths (7*7777 = 54439).
NASTY = [
    "<script>alert('N00')</script>",
    '"><img src=x onerror=alert("N01")>',
    "'><svg onload=alert('N02')>",
    "<a href=\"javascript:alert('N03')\">N03 click</a>",
    "javascript:alert('N04')",
    "N05 {{7*7777}} {{ config }} {% print(7*7777) %} ${7*7777} #{7*7777} <%= 7*7777 %>",
    "N06 \u202egnp.exe\u202c \u200b\u200d\ufeff zero-width",
    "N07 null \x00 byte",
    "N08 &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#60;b&#62;",
    'N09 <div style="background:url(javascript:alert(1));width:expression(alert(1))">x</div>',
    "N10 [click](javascript:alert(1)) ![x](https://evil.example/x.png) <https://evil.example>",
    "N11 </textarea><script>alert(1)</script></title></style>",
    "N12 <iframe src=//evil.example></iframe><object data=x></object>",
    "N13 ' OR 1=1 -- ; DROP TABLE events; \\ \" `backtick`",
    "N14 " + "A" * 5_000,
    "N15 <svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    'N16 <math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    'N17 <base href="https://evil.example/"><meta http-equiv=refresh content=0;url=x>',
]
MAX_EVENT_NAME = 200  # what ingestion accepts for an event name
TEMPLATE_RESULT = str(7 * 7777)


@dataclass
class Site:
    client: TestClient
    csrf: str
    profiles: list[str]
    cases: list[str]


def _messages() -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for n, text in enumerate(NASTY):
        who = {"userId": f"nasty-{n}"}
        short = text[:MAX_EVENT_NAME].replace("\x00", "")
        messages += [
            {"type": "identify", **who, "messageId": f"n-id-{n}",
             "traits": {"email": f"nasty{n}@example.com", "name": text, "plan": text,
                        "company": text}},
            {"type": "track", **who, "event": short, "messageId": f"n-ev-{n}",
             "properties": {"topic": text, "reason": text, "plan": text, "url": text}},
            {"type": "page", **who, "name": short, "messageId": f"n-pg-{n}",
             "properties": {"path": text}},
            {"type": "track", **who, "event": "Survey Responded", "messageId": f"n-sv-{n}",
             "properties": {"survey_type": "csat", "score": 1, "comment": text,
                            "touchpoint": short}},
        ]  # fmt: skip
    return messages


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = load_settings(
        db=tmp_path_factory.mktemp("nasty") / "opencx.duckdb", profiles_refresh_s=0,
        orchestrate_every_s=0, segments_every_s=0, voc_every_s=0,
    )  # fmt: skip
    with Store() as store:
        add_user(store.con, "admin@example.com", "admin", PASSWORD)
        _, key = add_source(store.con, "web", "web")
        ingestor = Ingestor(store, settings)
        result = ingestor.ingest(_messages(), SourceContext("web", "web"))
        assert result.rejected == 0, result.failures[:3]
        refresh_profiles(store.con)
        assert open_cases_from_answers(ingestor) == len(NASTY)
        profiles = [
            pid for (pid,) in store.con.execute(
                "SELECT DISTINCT profile_id FROM events WHERE user_id LIKE 'nasty-%'"
            ).fetchall()
        ]  # fmt: skip
        cases = [cid for (cid,) in store.con.execute("SELECT id FROM cases").fetchall()]
        app = create_app(settings, store)
        with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
            # Refused events keep their raw payload, which the settings page shows.
            bad = [{"type": "track", "userId": text, "messageId": f"n-bad-{n}"}
                   for n, text in enumerate(NASTY)]  # fmt: skip
            sent = client.post("/v1/batch", json={"batch": bad}, headers=basic_auth(key))
            assert sent.status_code == 200 and sent.json()["rejected"] == len(NASTY)
            csrf = sign_in(client, "admin@example.com")
            _write_through_the_forms(client, csrf, cases)
            yield Site(client, csrf, profiles, cases)


def _yaml(value: str) -> str:
    """A YAML scalar holding `value` exactly (JSON strings are YAML)."""
    return json.dumps(value.replace("\x00", ""))


def _write_through_the_forms(client: TestClient, csrf: str, cases: list[str]) -> None:
    for n, (case_id, text) in enumerate(zip(cases, NASTY, strict=False)):
        noted = client.post(f"/cases/{case_id}", data={"csrf": csrf, "note": text, "owner": text})
        if len(text) > 4_000:  # longer than a note may be: refused, and told why
            assert noted.status_code == 400 and "characters, got" in noted.text
        else:
            assert noted.status_code == 303, (n, noted.status_code, noted.text[-900:])
    for n in range(0, len(NASTY), 6):  # each save refreshes every segment: a few, many strings
        text = NASTY[n]
        segment = {"csrf": csrf, "name": f"nasty-{n}", "description": " | ".join(NASTY[n : n + 6]),
                   "rule": f"trait.plan = {_yaml(text)}"}  # fmt: skip
        saved = client.post("/segments", data=segment)
        assert saved.status_code == 303, (n, saved.status_code, saved.text[-900:])
        hostile_name = client.post("/segments", data={**segment, "name": text})
        assert hostile_name.status_code == 400, hostile_name.text[:300]
    for n, text in enumerate(NASTY):
        trigger = (
            f"id: nasty-{n}\nname: {_yaml(text[:200])}\nwhen: {{event: {_yaml(text[:200])}}}\n"
            f"action: {{type: task, title: {_yaml(text[:200])}}}\n"
        )
        made = client.post("/policy/triggers", data={"csrf": csrf, "trigger": trigger})
        assert made.status_code == 303, (n, made.status_code, made.text[-900:])
    with_nul = client.post("/policy", data={"csrf": csrf, "text": f"# {NASTY[7]}\nbudget: {{}}"})
    assert with_nul.status_code == 400 and "special characters" in with_nul.text
    comments = "".join(f"# {text.replace(chr(0), '')}\n" for text in NASTY)
    policy = client.post("/policy", data={"csrf": csrf, "text": comments + "budget: {max: 3}\n"})
    assert policy.status_code == 303, policy.text[:300]
    stages = "".join(
        f"  - name: {_yaml(text[:80])}\n    touchpoints: [survey_responded@web]\n"
        for text in NASTY[:6]
    )
    design = f"name: {_yaml(NASTY[0])}\nstages:\n{stages}"
    saved = client.post("/journeys/designs", data={"csrf": csrf, "body": design})
    assert saved.status_code == 303, saved.text[-1500:]


# -- what "inert" means ------------------------------------------------------------------
_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "srcdoc"}
_FOREIGN_TAGS = {"iframe", "object", "embed", "base", "meta"}


class _Inspector(HTMLParser):
    """Collects every way a page could run something it did not ship itself."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._in_script = True
            if not dict(attrs).get("src"):
                self.problems.append("an inline <script>")
        if tag in _FOREIGN_TAGS and not (tag == "meta" and "http-equiv" not in dict(attrs)):
            self.problems.append(f"a <{tag}> element")
        for name, value in attrs:
            value = (value or "").strip().lower()
            if name.startswith("on"):
                self.problems.append(f"an event handler {name}= on <{tag}>")
            if name in _URL_ATTRIBUTES and value.replace("\x00", "").startswith(
                ("javascript:", "vbscript:", "data:text/html")
            ):
                self.problems.append(f"a script URL in {name}= on <{tag}>")
            if name == "style" and ("expression(" in value or "javascript:" in value):
                self.problems.append(f"a scripted style on <{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append(f"script content {data[:60]!r}")
        self.text.append(data)


def assert_inert(response: Any, *, expect: int = 1) -> str:
    """The page answered, kept its CSP, runs nothing injected, and shows the strings as text."""
    assert response.status_code == 200, (response.status_code, response.text[:400])
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp, csp
    page = response.text
    inspector = _Inspector()
    inspector.feed(page)
    inspector.close()
    assert not inspector.problems, inspector.problems
    text = "".join(inspector.text)
    assert TEMPLATE_RESULT not in page, "template syntax was evaluated"
    shown = sorted(set(re.findall(r"N\d\d", text)))
    assert len(shown) >= expect, f"only {shown} of the stored strings are on the page"
    return text


def test_the_customer_page_and_timeline_show_hostile_traits_and_events_as_text(site: Site) -> None:
    shown = []
    for pid in site.profiles:
        page = site.client.get(f"/customers/{pid}")
        assert "<script>alert(" not in page.text
        shown.append(assert_inert(page))
        assert_inert(site.client.get(f"/customers/{pid}/timeline"))
    # As text, exactly as stored: escaped, not dropped.
    assert any("<script>alert('N00')</script>" in text for text in shown)
    assert any("{{7*7777}}" in text for text in shown)


def test_customer_search_with_a_hostile_query_renders_inert(site: Site) -> None:
    for text in NASTY:
        response = site.client.get("/customers", params={"q": text.replace("\x00", "")})
        if response.status_code == 303:
            response = site.client.get(response.headers["location"])
        assert response.status_code in (200, 400), response.text[:300]
        if response.status_code == 200:
            assert_inert(response, expect=0)


def test_cases_and_each_case_with_hostile_comments_and_notes(site: Site) -> None:
    assert_inert(site.client.get("/cases"), expect=5)
    for case_id in site.cases:
        assert_inert(site.client.get(f"/cases/{case_id}"))


@pytest.mark.parametrize(
    ("path", "expect"),
    [("/voc", 1), ("/segments", 5), ("/policy", 10), ("/journeys", 0), ("/journeys/designs", 1),
     ("/settings", 5), ("/", 0)],
)  # fmt: skip
def test_every_page_that_lists_stored_text_renders_it_inert(
    site: Site, path: str, expect: int
) -> None:
    assert_inert(site.client.get(path), expect=expect)


def test_the_inspector_catches_what_it_looks_for() -> None:
    """The checks above can fail: raw payloads trip the inspector."""
    for raw in [*NASTY[:4], NASTY[9], NASTY[12], NASTY[15]]:
        inspector = _Inspector()
        inspector.feed(f"<p>{raw}</p>")
        assert inspector.problems, raw


def test_a_long_event_name_does_not_break_the_journeys_page(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    settings = load_settings(db=tmp_path_factory.mktemp("long") / "x.duckdb", profiles_refresh_s=0)
    with Store() as store:
        add_user(store.con, "admin@example.com", "admin", PASSWORD)
        Ingestor(store, settings).ingest(
            [{"type": "track", "userId": "u", "event": "Long " + "x" * 195, "messageId": "l1"}],
            SourceContext("web", "web"),
        )
        with TestClient(create_app(settings, store), follow_redirects=False) as client:
            sign_in(client, "admin@example.com")
            assert client.get("/journeys").status_code == 200
