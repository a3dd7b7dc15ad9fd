"""Loading the sample brand through the same validation, identity and write path as real data."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import duckdb
import yaml

from opencx.access import add_source, add_user, create_token, list_sources, list_users
from opencx.config import Settings
from opencx.demo.brand import SOURCES, generate_brand
from opencx.ingest import Ingestor, SourceContext, ValidatedBatch, now_us
from opencx.journeys import save_journey_design, touchpoint_model
from opencx.metrics import write_effort_traits
from opencx.orchestrate.actions import save_actions
from opencx.orchestrate.triggers import save_trigger
from opencx.profiles import refresh_profiles
from opencx.segments import refresh_segments, save_segment
from opencx.store import Store, fetch_one
from opencx.voc import open_cases_from_answers, save_survey
from opencx.warehouse import embedded

Progress = Callable[[int, int], None]
CHUNK = 10_000
EVENTS_PER_CUSTOMER = 80  # for the progress bar's estimate only


@dataclass(frozen=True)
class DemoReport:
    """What loading the sample brand did."""

    loaded: bool
    events: int
    rejected: int
    profiles: int
    token: str | None
    users: tuple[tuple[str, str, str], ...] = ()

    def describe(self) -> str:
        head = (
            f"Sample brand Northwind Mobile: {self.events} events stored, "
            f"{self.profiles} profiles, {self.rejected} rejected."
            if self.loaded
            else f"Sample brand already loaded ({self.events} events, {self.profiles} profiles)."
        )
        if self.token:
            head += f"\nAdmin API token (shown once): {self.token}"
        for email, role, password in self.users:
            head += f"\nSign in as {role}: {email} / {password}  (shown once)"
        return head


def _ensure_sources(con: duckdb.DuckDBPyConnection) -> dict[str, SourceContext]:
    existing = {s.name: s for s in list_sources(con)}
    contexts: dict[str, SourceContext] = {}
    for brand_source in SOURCES:
        source = existing.get(brand_source.name)
        if source is None:
            source, _key = add_source(con, brand_source.name, brand_source.channel)
        contexts[source.name] = SourceContext(source.name, source.channel, origin="demo")
    return contexts


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> int:
    row = fetch_one(con.execute(sql, params or []))
    return int(row[0]) if row else 0


def _resource(name: str) -> Any:
    return yaml.safe_load(resources.files("opencx.demo").joinpath(name).read_text())


def load_demo(
    store: Store,
    settings: Settings,
    *,
    customers: int = 5000,
    seed: int = 7,
    progress: Progress | None = None,
) -> DemoReport:
    """Generate and ingest the sample brand, unless it is there already."""
    con = store.con
    contexts = _ensure_sources(con)
    names = list(contexts)
    already = _count(
        con, "SELECT count(*) FROM events WHERE source IN (SELECT unnest(?::VARCHAR[]))", [names]
    )
    if already:
        events = _count(con, "SELECT count(*) FROM events")
        return DemoReport(False, events, 0, _count(con, "SELECT count(*) FROM profiles"), None)
    ingestor = Ingestor(store, settings)
    check = ingestor.validator.validate_into
    total_estimate = customers * EVENTS_PER_CUSTOMER
    stored = rejected = done = 0
    batch = ValidatedBatch()
    received = now_us()
    # The brand's history ends now, so the agent's "right now" panel has something to show.
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    brand = generate_brand(customers=customers, seed=seed, end=end)
    for index, (source_name, message) in enumerate(brand):
        check(batch, message, index=index, source=contexts[source_name], received_us=received)
        done += 1
        if done % CHUNK == 0:
            result = ingestor.writer.write(batch)
            stored, rejected = stored + result.accepted, rejected + result.rejected
            batch = ValidatedBatch()
            if progress is not None:
                progress(done, max(total_estimate, done + CHUNK))
    result = ingestor.writer.write(batch)
    stored, rejected = stored + result.accepted, rejected + result.rejected
    if progress is not None:
        progress(done, done)
    profiles = refresh_profiles(con)
    # The CX team's intended journey, to hold against what customers did (Journeys page).
    warehouse = embedded(con)
    design = resources.files("opencx.demo").joinpath("northwind_journey.yaml").read_text()
    save_journey_design(con, design, touchpoint_model(con, warehouse), by="demo")
    for survey in _resource("northwind_surveys.yaml")["surveys"]:
        save_survey(con, survey, by="demo")
    # What the brand does when customers act, and for whom (Contact policy page).
    for segment in _resource("northwind_segments.yaml")["segments"]:
        save_segment(con, segment, warehouse=warehouse, by="demo")
    # Effort traits and audiences at once, as the server's schedule would leave them.
    refresh_segments(con, warehouse, datetime.now(UTC), traits=[write_effort_traits])
    for trigger in _resource("northwind_triggers.yaml")["triggers"]:
        save_trigger(con, trigger, by="demo")
    save_actions(con, resources.files("opencx.demo").joinpath("northwind_actions.yaml").read_text(),
                 by="demo")  # fmt: skip
    # Detractors of the brand's history get their cases, as on a live server.
    cases = open_cases_from_answers(
        ingestor, queue=settings.case_queue, sla_hours=settings.case_sla_hours
    )
    stored += cases  # each case is a `Case Opened` event on the timeline
    _token, secret = create_token(con, "demo-admin", "admin")
    users = []
    for role in ("admin", "agent"):
        email = f"{role}@northwind.example"
        if not any(u.email == email for u in list_users(con)):
            password = secrets.token_urlsafe(12)
            add_user(con, email, role, password)
            users.append((email, role, password))
    return DemoReport(True, stored, rejected, profiles, secret, tuple(users))
