"""The policy dry run: replays a period's contacts and counts what a policy would do."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opencx.errors import InvalidInput
from opencx.ingest import Ingestor, SourceContext
from opencx.orchestrate.policy import default_policy, parse_policy
from opencx.orchestrate.simulate import DROPPED, HELD, SENT, simulate
from tests.voc.conftest import person

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
NY = {"timezone": "America/New_York"}
_ids = itertools.count(1)


def send(ingestor: Ingestor, user: str, event: str, at: datetime, on: str,
         **properties: Any) -> None:  # fmt: skip
    ingestor.ingest(
        [{"type": "track", "userId": user, "event": event, "messageId": f"s-{next(_ids)}",
          "timestamp": at.isoformat(), "properties": properties, "context": NY}],
        SourceContext(on, on),
    )  # fmt: skip


def promotion(ingestor: Ingestor, user: str, at: datetime, campaign: str = "promo") -> None:
    send(ingestor, user, "Email Sent", at, "email", email_type="promotion", campaign_id=campaign)


def consent(ingestor: Ingestor, user: str, at: datetime, granted: bool) -> None:
    send(ingestor, user, "Consent Updated", at, "web", channel="email", purpose="marketing",
         granted=granted)  # fmt: skip


@pytest.fixture
def jane(ingestor: Ingestor) -> str:
    found = person(ingestor, "jane")
    consent(ingestor, "jane", NOW - timedelta(days=60), True)
    return found


def test_the_budget_keeps_three_of_five_promotions(ingestor: Ingestor, jane: str) -> None:
    for day in range(5):  # 10:00 in New York, one a day
        promotion(ingestor, "jane", NOW - timedelta(days=10 - day, hours=-3))
    report = simulate(ingestor.store.cursor(), default_policy(), days=30, now=NOW)
    assert report.proposals == report.actual_sent == 5
    assert report.outcomes[SENT] == 3
    assert report.outcomes[DROPPED] == 2
    assert report.by_rule["budget"][DROPPED] == 2
    assert report.by_source["promo"] == {SENT: 3, DROPPED: 2}
    assert report.examples["budget"].startswith("blocked: 3 contacts in the last 7 days")
    looser = simulate(ingestor.store.cursor(), parse_policy("budget: {max: 5}"), now=NOW)
    assert looser.outcomes[SENT] == 5


def test_quiet_hours_hold_a_late_send_and_withdrawal_stops_later_ones(
    ingestor: Ingestor, jane: str
) -> None:
    promotion(ingestor, "jane", datetime(2026, 11, 20, 3, 0, tzinfo=UTC), "late")  # 22:00 NY
    consent(ingestor, "jane", datetime(2026, 11, 24, 12, 0, tzinfo=UTC), False)
    promotion(ingestor, "jane", datetime(2026, 11, 25, 15, 0, tzinfo=UTC), "after")
    report = simulate(ingestor.store.cursor(), default_policy(), days=30, now=NOW)
    assert report.by_source["late"][HELD] == 1
    assert report.by_rule["quiet_hours"][HELD] == 1
    assert report.by_source["after"][DROPPED] == 1
    assert report.by_rule["consent"][DROPPED] == 1


def test_segments_and_nothing_recorded(ingestor: Ingestor, jane: str) -> None:
    con = ingestor.store.cursor()
    con.execute("INSERT INTO segment_members VALUES ('vip', ?, ?)", [jane, NOW])
    promotion(ingestor, "jane", NOW - timedelta(days=2, hours=-3))
    promotion(ingestor, "jane", NOW - timedelta(days=40))  # before the period
    report = simulate(con, default_policy(), days=30, now=NOW)
    assert report.proposals == 1
    assert report.by_segment["vip"][SENT] == 1
    assert report.as_dict()["by_segment"]["vip"] == {SENT: 1, HELD: 0, DROPPED: 0}
    assert con.execute("SELECT count(*) FROM decisions").fetchall() == [(0,)]


def test_days_must_be_sensible(ingestor: Ingestor) -> None:
    with pytest.raises(InvalidInput, match="days must be between 1 and 366"):
        simulate(ingestor.store.cursor(), default_policy(), days=0, now=NOW)
