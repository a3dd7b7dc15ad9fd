"""The brand's calendar: the period, weekly and yearly rhythms, local opening hours, timestamps.

Times are integer epoch milliseconds (UTC) throughout: cheap to compare, add and sort,
and formatted as ISO 8601 only once, on the way out.
"""

from __future__ import annotations

import functools
import random
from bisect import bisect_right
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MINUTE_MS = 60_000

# Monday..Sunday: digital shopping peaks at weekends, the contact center on Mondays.
_WEEKDAYS = {
    "digital": (1.04, 1.0, 0.99, 1.0, 0.96, 1.12, 1.18),
    "assisted": (1.3, 1.15, 1.1, 1.05, 1.0, 0.55, 0.35),
    "store": (0.8, 0.8, 0.85, 0.9, 1.05, 1.6, 0.95),
}
# Local hour 0..23. People browse in the evening and use the app on the commute too;
# the contact center answers 8-20, chat 8-22, stores open 10-20.
_WEB_HOURS = "1 .6 .4 .3 .3 .5 1 2 3 3.5 4 4.5 5 4.5 4 4 4.5 5 6 7 7.5 7 5 2.5"
_APP_HOURS = "1.5 .8 .5 .3 .3 .6 2 4 5 4.5 4 4 5 4.5 4 4 4.5 5.5 6 6.5 6.5 6 4.5 3"
_CALL_HOURS = "0 0 0 0 0 0 0 0 4 7 8 8 6 7 7 7 6 5 4 3 0 0 0 0"
_CHAT_HOURS = "0 0 0 0 0 0 0 0 3 5 6 6 5 6 6 6 5 5 5 5 4 3 0 0"
_STORE_HOURS = "0 0 0 0 0 0 0 0 0 0 3 5 6 6 6 6 6 7 6 4 0 0 0 0"
# rhythm -> (which day weights, local hour weights)
_RHYTHMS: dict[str, tuple[str, str]] = {
    "web": ("digital", _WEB_HOURS),
    "app": ("digital", _APP_HOURS),
    "call": ("assisted", _CALL_HOURS),
    "chat": ("assisted", _CHAT_HOURS),
    "store": ("store", _STORE_HOURS),
}


# Timestamps are assembled from pieces: the day, "HH:MM:" and "SS.mmmZ" (8x faster).
_MINUTE_TEXT = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]


@functools.cache
def _second_text() -> list[str]:
    return [f"{s:02d}.{ms:03d}Z" for s in range(60) for ms in range(1000)]


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th given weekday of a month (n=-1: the last one)."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _season(day: date) -> tuple[float, float, float, float]:
    """Multipliers (digital, assisted, store, deals) of one calendar day."""
    thanksgiving = nth_weekday(day.year, 11, 3, 4)
    offset = (day - thanksgiving).days
    if offset == 0:
        return 0.8, 0.15, 0.05, 1.3
    if offset == 1:  # Black Friday
        return 2.4, 1.3, 3.0, 1.9
    if offset in (2, 3):
        return 1.6, 1.1, 1.8, 1.6
    if offset == 4:  # Cyber Monday
        return 2.0, 1.2, 1.2, 1.8
    holidays = {
        date(day.year, 1, 1),
        nth_weekday(day.year, 5, 0, -1),
        date(day.year, 7, 4),
        nth_weekday(day.year, 9, 0, 1),
    }
    if day in holidays:
        return 0.65, 0.35, 0.6, 1.0
    if day.month == 12 and day.day == 25:
        return 0.45, 0.15, 0.05, 1.0
    if day.month == 12 and day.day == 24:
        return 0.8, 0.6, 0.9, 1.1
    if day.month == 11 and offset < 0:  # deals ramp up through November
        ramp = 1 - offset / (1 - thanksgiving.day)
        return 1 + 0.35 * ramp, 1.0 + 0.1 * ramp, 1 + 0.3 * ramp, 1 + 0.4 * ramp
    if day.month == 12 and day.day < 24:
        return 1.25, 1.05, 1.4, 1.3
    return 1.0, 1.0, 1.0, 1.0


def months_before(end: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (clipped to the month's end)."""
    index = end.year * 12 + end.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    last_day = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return end.replace(year=year, month=month, day=min(end.day, last_day))


class Clock:
    """The period of one run and the moments in it when people plausibly do things."""

    def __init__(self, end: datetime, months: int) -> None:
        start = months_before(end, months)
        self.start_ms = _ms(start)
        self.end_ms = _ms(end)
        first = start.date() - timedelta(days=1)  # local evenings west of UTC
        self.day0_ms = _ms(datetime.combine(first, time(), UTC))
        self.dates = [first + timedelta(days=i) for i in range((end.date() - first).days + 1)]
        self.date_text = [d.isoformat() for d in self.dates]
        self._day_text = [f"{text}T" for text in self.date_text]
        seasons = [_season(d) for d in self.dates]
        span = max(len(self.dates) - 1, 1)
        trend = {
            "digital": [0.88 + 0.24 * i / span for i in range(len(self.dates))],
            "assisted": [1.0] * len(self.dates),
            "store": [1.05 - 0.1 * i / span for i in range(len(self.dates))],
        }
        column = {"digital": 0, "assisted": 1, "store": 2}
        self._cum_days: dict[str, list[float]] = {}
        for kind, weekdays in _WEEKDAYS.items():
            weights = (
                weekdays[d.weekday()] * s[column[kind]] * t
                for d, s, t in zip(self.dates, seasons, trend[kind], strict=True)
            )
            self._cum_days[kind] = [0.0, *accumulate(weights)]
        self._deals = [s[3] for s in seasons]
        self._rhythms = {
            name: (self._cum_days[kind], [0.0, *accumulate(map(float, hours.split()))])
            for name, (kind, hours) in _RHYTHMS.items()
        }
        self._offsets: dict[str, list[int]] = {}
        # App release 5.2.0 ships a quarter into the period, on a Tuesday afternoon (UTC).
        release_day = max(len(self.dates) // 4, 1)
        while release_day < len(self.dates) - 1 and self.dates[release_day].weekday() != 1:
            release_day += 1
        self.release_ms = self.day0_ms + release_day * DAY_MS + 17 * HOUR_MS

    def offsets(self, tz: str) -> list[int]:
        """UTC offset in ms of a time zone on each day of the period (DST included)."""
        found = self._offsets.get(tz)
        if found is None:
            zone = ZoneInfo(tz)
            found = [_offset_ms(d, zone) for d in self.dates]
            self._offsets[tz] = found
        return found

    def day_of(self, ms: int) -> int:
        """Index of the (UTC) day of a moment in the period."""
        return min(max((ms - self.day0_ms) // DAY_MS, 0), len(self.dates) - 1)

    def moment(self, rhythm: str, tz: str, rng: random.Random, lo_ms: int, hi_ms: int) -> int:
        """A moment in [lo_ms, hi_ms) drawn from the rhythm's days and local hours."""
        days, hours = self._rhythms[rhythm]
        offsets = self.offsets(tz)
        lo_day = max((lo_ms - self.day0_ms) // DAY_MS - 1, 0)
        hi_day = min((hi_ms - self.day0_ms) // DAY_MS + 1, len(self.dates))
        base, width = days[lo_day], days[hi_day] - days[lo_day]
        total_hours = hours[-1]
        for _ in range(6):
            day = bisect_right(days, base + rng.random() * width) - 1
            day = min(max(day, lo_day), hi_day - 1)
            hour = bisect_right(hours, rng.random() * total_hours) - 1
            local = hour * HOUR_MS + int(rng.random() * HOUR_MS)
            ms = self.day0_ms + day * DAY_MS + local - offsets[day]
            if lo_ms <= ms < hi_ms:
                return ms
        return lo_ms + int(rng.random() * (hi_ms - lo_ms))

    def moments(
        self, rhythm: str, tz: str, rng: random.Random, lo_ms: int, hi_ms: int, count: int
    ) -> list[int]:
        """`count` moments in [lo_ms, hi_ms), in time order."""
        moment = self.moment
        return sorted(moment(rhythm, tz, rng, lo_ms, hi_ms) for _ in range(count))

    def local_hour(self, ms: int, tz: str) -> int:
        """The wall-clock hour at a moment in a time zone."""
        return ((ms + self.offsets(tz)[self.day_of(ms)]) // HOUR_MS) % 24

    def when_open(self, ms: int, tz: str, rng: random.Random, opens: int, closes: int) -> int:
        """`ms` if it falls within local opening hours, else soon after the next opening."""
        local = ms + self.offsets(tz)[self.day_of(ms)]
        hour = (local // HOUR_MS) % 24
        if opens <= hour < closes:
            return ms
        wait_hours = opens - hour if hour < opens else 24 - hour + opens
        return ms + wait_hours * HOUR_MS - local % HOUR_MS + int(rng.expovariate(1 / 40) * 60_000)

    def at_local(
        self, day: date, tz: str, hour: int, spread_ms: int, rng: random.Random
    ) -> int | None:
        """A moment at a local hour of a calendar day, plus a random spread; None outside."""
        index = (day - self.dates[0]).days
        if not 0 <= index < len(self.dates):
            return None
        local_midnight = self.day0_ms + index * DAY_MS - self.offsets(tz)[index]
        return local_midnight + hour * HOUR_MS + int(rng.random() * spread_ms)

    def deal(self, ms: int) -> float:
        """How promotional a day is (1 normally, up to ~1.9 on Black Friday)."""
        return self._deals[self.day_of(ms)]

    def iso(self, ms: int) -> str:
        """`2026-09-03T14:22:05.123Z` for an epoch-millisecond moment in the period."""
        day, rest = divmod(ms - self.day0_ms, DAY_MS)
        minute, rest = divmod(rest, MINUTE_MS)
        return self._day_text[day] + _MINUTE_TEXT[minute] + _second_text()[rest]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def _offset_ms(day: date, zone: ZoneInfo) -> int:
    offset = datetime.combine(day, time(12), zone).utcoffset()
    return int(offset.total_seconds()) * 1000 if offset is not None else 0
