"""Every operation of the OpenAPI document, fuzzed by schemathesis: never a 5xx, clear 4xx."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error

from opencx.access import add_source, create_token
from opencx.api import create_app
from opencx.config import load_settings
from opencx.ingest import Ingestor, SourceContext
from opencx.profiles import refresh_profiles
from opencx.store import Store
from tests.conftest import basic_auth

# Routes that read their body themselves (ingestion, YAML/JSON documents) declare none in
# the document; these schemas let schemathesis send them bodies of the shape they expect.
_MESSAGE = {
    "type": "object",
    "properties": {
        "type": {
            "type": "string",
            "enum": ["track", "identify", "page", "screen", "group", "alias"],
        },
        "messageId": {"type": "string"},
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "event": {"type": "string"},
        "name": {"type": "string"},
        "groupId": {"type": "string"},
        "previousId": {"type": "string"},
        "timestamp": {"type": "string"},
        "sentAt": {"type": "string"},
        "properties": {"type": "object"},
        "traits": {"type": "object"},
        "context": {"type": "object"},
    },
}
_BATCH = {"type": "object", "properties": {"batch": {"type": "array", "items": _MESSAGE}}}
_DOCUMENT = {"type": "object", "additionalProperties": True}


def _body(schema: dict[str, Any], media_type: str = "application/json") -> dict[str, Any]:
    return {"required": True, "content": {media_type: {"schema": schema}}}


def _document(app: Any) -> dict[str, Any]:
    """The app's own OpenAPI document, with the bodies its raw-body routes read."""
    doc = copy.deepcopy(app.openapi())
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation or method not in ("post", "put"):
                continue
            if path == "/v1/batch":
                operation["requestBody"] = _body(_BATCH)
            elif path.startswith("/v1/"):
                operation["requestBody"] = _body(_MESSAGE)
            elif method == "put" or path.endswith("/simulate"):
                operation["requestBody"] = _body(_DOCUMENT)
    return doc


_APP_FOR_SCHEMA = create_app(load_settings(db=Path("unused.duckdb")))
schema = schemathesis.openapi.from_dict(_document(_APP_FOR_SCHEMA))


def _seed(store: Store, settings: Any) -> None:
    """A few people with an identify, a page, an order and a survey answer each."""
    messages: list[dict[str, Any]] = []
    for n in range(6):
        who = {"userId": f"u-{n}"}
        messages += [
            {"type": "identify", **who, "messageId": f"i-{n}",
             "traits": {"email": f"p{n}@example.com", "plan": "pro" if n % 2 else "free"}},
            {"type": "page", **who, "name": "Pricing", "messageId": f"p-{n}"},
            {"type": "track", **who, "event": "Order Completed", "messageId": f"o-{n}"},
            {"type": "track", **who, "event": "Survey Responded", "messageId": f"s-{n}",
             "properties": {"survey_type": "nps", "score": n, "comment": "slow delivery"}},
        ]  # fmt: skip
    Ingestor(store, settings).ingest(messages, SourceContext("web", "web"))
    refresh_profiles(store.con)


class Server:
    """One app on an in-memory store for the whole module (Hypothesis reuses it per example)."""

    def __init__(self, client: TestClient, admin: str, write_key: str) -> None:
        self.client = client
        self.admin = {"Authorization": f"Bearer {admin}"}
        self.ingest = basic_auth(write_key)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = load_settings(
        db=tmp_path_factory.mktemp("schemathesis") / "opencx.duckdb", profiles_refresh_s=0,
        orchestrate_every_s=0, segments_every_s=0, voc_every_s=0,
        rate_limits={"api_per_s": 0, "ingest_per_s": 0},  # bad input is the subject, not 429s
    )  # fmt: skip
    with Store() as store:
        _, key = add_source(store.con, "web", "web")
        _, admin = create_token(store.con, "schemathesis", "admin")
        _seed(store, settings)
        with TestClient(create_app(settings, store), raise_server_exceptions=False) as client:
            yield Server(client, admin, key)


def _send(client: TestClient, case: schemathesis.Case, headers: dict[str, str]) -> Any:
    """The case as one TestClient request (the requests-style kwargs mapped onto httpx)."""
    sent = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    data = sent.get("data")
    return client.request(
        sent["method"],
        sent["url"],
        params=sent.get("params"),
        headers=sent.get("headers"),
        cookies=sent.get("cookies") or None,
        json=sent.get("json"),
        content=data if isinstance(data, (bytes, str)) else None,
        data=data if isinstance(data, dict) else None,
        files=sent.get("files"),
    )


_SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}
# Journey and KPI analytics take 0.1-0.2 s a call: fewer examples keep the file near a minute.
_ANALYTICS = r"^/api/v1/(journeys|metrics)/"


def check_case(case: schemathesis.Case, server: Server) -> None:
    """One generated request: never a 5xx, and a 4xx says what was wrong in JSON."""
    headers = server.ingest if case.path.startswith("/v1/") else server.admin
    response = _send(server.client, case, headers)
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if 400 <= response.status_code < 500:
        assert response.headers["content-type"].startswith("application/json"), response.text
        body = response.json()
        message = _message(body)
        assert message.strip(), f"{case.method} {case.formatted_path}: {body}"


@schema.exclude(path_regex=_ANALYTICS).parametrize()
@hypothesis.settings(max_examples=10, **_SETTINGS)
def test_no_server_error_and_every_refusal_explains_itself(
    case: schemathesis.Case, server: Server
) -> None:
    check_case(case, server)


@schema.include(path_regex=_ANALYTICS).parametrize()
@hypothesis.settings(max_examples=4, **_SETTINGS)
def test_analytics_never_fail_with_a_server_error(case: schemathesis.Case, server: Server) -> None:
    check_case(case, server)


def _message(body: Any) -> str:
    """The human-readable reason of an error body: ours, or FastAPI's request validation."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))
    if isinstance(body, dict) and isinstance(body.get("detail"), list):
        return "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in body["detail"])
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"]
    return ""
