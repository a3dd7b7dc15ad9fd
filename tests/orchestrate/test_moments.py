"""The best moment and channel, learned from responses by local hour of week."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opencx.ingest import Ingestor
from opencx.orchestrate.moments import (
    Population,
    Response,
    best_moment,
    hour_of_week,
    population_from,
    population_moments,
    zone,
)
from opencx.orchestrate.state import PersonState
from tests.orchestrate.conftest import Track, person

NEW_YORK = zone("America/New_York")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def opens(*moments: str, channel: str = "email") -> tuple[Response, ...]:
    return tuple(Response(at(m), channel, "Email Opened") for m in moments)


def test_hour_of_week_is_local() -> None:
    monday_9_ny = at("2026-11-23T09:00:00-05:00")
    assert hour_of_week(monday_9_ny, NEW_YORK) == 9
    assert hour_of_week(monday_9_ny, zone("Europe/Berlin")) == 15
    assert hour_of_week(at("2026-11-29T23:30:00-05:00"), NEW_YORK) == 167
    assert zone("Not/AZone", "Europe/Berlin").key == "Europe/Berlin"
    assert zone(None).key == "UTC"


def test_a_regular_gets_their_own_hour_and_channel() -> None:
    # Opens on Tuesday evenings around 19:00, clicks on SMS once.
    responses = (
        *opens(
            "2026-11-03T19:05:00-05:00", "2026-11-10T19:40:00-05:00", "2026-11-17T18:55:00-05:00"
        ),
        Response(at("2026-11-12T12:00:00-05:00"), "sms", "SMS Link Clicked"),
    )
    state = PersonState("p1", timezone="America/New_York", responses=responses)
    everyone = population_from([(9, "sms")] * 50)  # the crowd likes Monday 09:00 and SMS
    channel, moment = best_moment(
        state, everyone, at("2026-11-23T10:00:00-05:00"), horizon=timedelta(days=7)
    )
    assert channel == "email"
    assert moment == at("2026-11-24T19:00:00-05:00")


def test_a_new_customer_gets_the_population_moment() -> None:
    everyone = population_from([(24 + 12, "app")] * 20 + [(10, "email")] * 5)  # Tue 12:00
    state = PersonState("p_new", timezone="Europe/Berlin")
    channel, moment = best_moment(
        state, everyone, at("2026-11-23T08:00:00+01:00"), horizon=timedelta(days=3)
    )
    assert (channel, moment) == ("app", at("2026-11-24T12:00:00+01:00"))
    # Nothing known at all: email, right away.
    assert best_moment(state, Population(), at("2026-11-23T08:00:00+01:00")) == (
        "email",
        at("2026-11-23T08:00:00+01:00"),
    )


def test_best_moment_across_the_spring_forward_change() -> None:
    # Sunday-morning reader at 09:00 local; after 2026-03-08 09:00 is UTC-4, not UTC-5.
    state = PersonState(
        "p1",
        timezone="America/New_York",
        responses=opens("2026-02-22T09:10:00-05:00", "2026-03-01T09:15:00-05:00"),
    )
    _, moment = best_moment(state, Population(), at("2026-03-07T12:00:00-05:00"))
    assert moment == at("2026-03-08T09:00:00-04:00") == at("2026-03-08T13:00:00Z")


def test_population_moments_from_the_log(ingestor: Ingestor, track: Track) -> None:
    person(ingestor, "u1")
    person(ingestor, "u2")
    track("u1", "Product Viewed", at("2026-11-01T10:00:00Z"),
          context={"timezone": "Europe/Berlin"})  # fmt: skip
    for day in (2, 9, 16):  # Mondays 18:30 UTC: 19:30 in Berlin
        track("u1", "Email Opened", at(f"2026-11-{day:02d}T18:30:00Z"), channel="email")
    # No known zone: read in the default (New York): Monday 13:30.
    track("u2", "Email Link Clicked", at("2026-11-02T18:30:00Z"), channel="email")
    track("u2", "SMS Sent", at("2026-11-02T18:00:00Z"), channel="sms")  # not a response
    found = population_moments(ingestor.store.con, default_timezone="America/New_York")
    assert {h: n for h, n in enumerate(found.hours) if n} == {19: 3.0, 13: 1.0}
    assert found.channels == {"email": 4.0}
    later = population_moments(ingestor.store.con, since=at("2026-11-10T00:00:00Z"))
    assert later.responses == 1.0
