"""Retention cohorts by first-seen week and month."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from opencx.journeys.cohorts import retention_cohorts
from opencx.warehouse import Warehouse

Log = Callable[..., Warehouse]


def test_weekly_cohorts_count_people_active_k_weeks_later(log: Log) -> None:
    week = 24 * 7
    wh = log(
        [
            ("p1", 0, "A", "web"),
            ("p1", week + 1, "A", "web"),
            ("p2", 2, "A", "web"),
            ("p2", 3 * week, "A", "app"),
            ("p3", week, "A", "web"),
        ]
    )
    cohorts = retention_cohorts(wh, "week")
    assert [c.start for c in cohorts] == [date(2026, 3, 2), date(2026, 3, 9)]
    assert cohorts[0].size == 2 and cohorts[0].active == (2, 1, 0, 1)
    assert cohorts[0].retention[1] == 0.5
    assert cohorts[1].active == (1,)
    web_only = retention_cohorts(wh, "week", channels=["web"])
    assert web_only[0].active == (2, 1)


def test_monthly_cohorts_cross_a_year(log: Log) -> None:
    wh = log([("p1", 0, "A", "web"), ("p1", 24 * 31, "A", "web"), ("p1", 24 * 330, "A", "web")])
    [cohort] = retention_cohorts(wh, "month")
    assert cohort.start == date(2026, 3, 1)
    assert cohort.active[0] == 1 and cohort.active[1] == 1 and cohort.active[-1] == 1
    assert len(cohort.active) == 11
