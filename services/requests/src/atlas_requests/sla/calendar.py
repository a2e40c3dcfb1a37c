"""Business-day arithmetic per département: weekends and French public holidays are not counted.

Business time is measured in days: each business day counts as 1 spread over its local hours
(so daylight-saving days count fully too), weekends and public holidays count 0. The holidays
are those of the space's département: Alsace-Moselle (57, 67, 68) adds Good Friday and
26 December, overseas départements and collectivities add their own (abolition of slavery…).
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

# Département (or overseas collectivity) → `holidays.France` subdivision.
_SUBDIVISIONS = {
    "57": "57",
    "67": "6AE",
    "68": "6AE",
    "971": "971",
    "972": "972",
    "973": "973",
    "974": "974",
    "975": "PM",
    "976": "976",
    "977": "BL",
    "978": "MF",
    "986": "WF",
    "987": "PF",
    "988": "NC",
}
_TIMEZONES = {
    "971": "America/Guadeloupe",
    "972": "America/Martinique",
    "973": "America/Cayenne",
    "974": "Indian/Reunion",
    "975": "America/Miquelon",
    "976": "Indian/Mayotte",
    "977": "America/St_Barthelemy",
    "978": "America/Marigot",
    "986": "Pacific/Wallis",
    "987": "Pacific/Tahiti",
    "988": "Pacific/Noumea",
}
_MAX_DAYS = 3660  # a guard against walking forever on absurd input
_NTH_CACHE_SIZE = 4096  # (day, n) → n-th business day after it, per calendar


def departement_of(commune_insee: str) -> str:
    """The département of an INSEE commune code (three characters overseas)."""
    return commune_insee[:3] if commune_insee[:2] in ("97", "98") else commune_insee[:2]


class BusinessCalendar:
    """Business days and their time zone for one département."""

    def __init__(self, departement: str | None) -> None:
        self.departement = departement or "75"
        self.subdivision = _SUBDIVISIONS.get(self.departement)
        self.zone = ZoneInfo(_TIMEZONES.get(self.departement, "Europe/Paris"))
        self._holidays = holidays.country_holidays("FR", subdiv=self.subdivision)
        self._by_year: dict[int, list[date]] = {}
        self._off_by_year: dict[int, frozenset[date]] = {}
        self._nth: dict[tuple[date, int], date | None] = {}

    def holiday_name(self, day: date) -> str | None:
        """The public holiday on `day` here, if any."""
        name = self._holidays.get(day)
        return None if name is None else str(name)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self._weekday_holidays_set(day.year)

    def _day_bounds(self, day: date) -> tuple[datetime, datetime]:
        start = datetime.combine(day, time(0), tzinfo=self.zone)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
        return start.astimezone(UTC), end.astimezone(UTC)

    def business_days_between(self, start: datetime, end: datetime) -> float:
        """Business time from `start` to `end`, in (fractional) business days; 0 if end ≤ start."""
        if end <= start:
            return 0.0
        first = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        if first == last:
            return self._fraction(first, start, end)
        # Partial first and last days, and whole business days counted in O(1) in between.
        return (
            self._fraction(first, start, end)
            + self.whole_business_days(first + timedelta(days=1), last)
            + self._fraction(last, start, end)
        )

    def _fraction(self, day: date, start: datetime, end: datetime) -> float:
        if not self.is_business_day(day):
            return 0.0
        lo, hi = self._day_bounds(day)
        overlap = (min(hi, end) - max(lo, start)).total_seconds()
        return max(overlap, 0.0) / (hi - lo).total_seconds()

    def whole_business_days(self, first: date, stop: date) -> int:
        """Business days in [first, stop): weekdays by arithmetic, minus weekday holidays."""
        if stop <= first:
            return 0
        days = (stop - first).days
        weeks, rest = divmod(days, 7)
        weekdays = weeks * 5 + sum((first.weekday() + i) % 7 < 5 for i in range(rest))
        off = sum(
            1
            for year in range(first.year, stop.year + 1)
            for holiday in self._weekday_holidays(year)
            if first <= holiday < stop
        )
        return weekdays - off

    def _weekday_holidays(self, year: int) -> list[date]:
        cached = self._by_year.get(year)
        if cached is None:
            _ = date(year, 1, 1) in self._holidays  # a lookup expands the whole year
            cached = sorted(d for d in self._holidays if d.year == year and d.weekday() < 5)
            self._by_year[year] = cached
        return cached

    def _weekday_holidays_set(self, year: int) -> frozenset[date]:
        cached = self._off_by_year.get(year)
        if cached is None:
            cached = self._off_by_year[year] = frozenset(self._weekday_holidays(year))
        return cached

    def add_business_days(self, start: datetime, days: float) -> datetime:
        """The instant at which `days` business days have elapsed since `start`."""
        remaining = max(days, 0.0)
        day = start.astimezone(self.zone).date()
        # The first day may be partly gone; every later business day offers a whole day, so only
        # the first and the last day need their (time-zone and DST aware) bounds.
        if self.is_business_day(day):
            lo, hi = self._day_bounds(day)
            begin = max(lo, start)
            length = (hi - lo).total_seconds()
            available = (hi - begin).total_seconds() / length
            if remaining <= available + 1e-9:
                return begin + timedelta(seconds=remaining * length)
            remaining -= available
        # The deadline falls on the n-th business day after `day`, `remaining` of it gone (the
        # same float steps as subtracting one whole day per business day walked).
        if remaining > _MAX_DAYS:
            raise ValueError(f"no deadline within {_MAX_DAYS} days of {start}")
        n = 1
        while remaining > 1.0 + 1e-9:
            remaining -= 1.0
            n += 1
        target = self._business_day_after(day, n)
        if target is None:
            raise ValueError(f"no deadline within {_MAX_DAYS} days of {start}")
        lo, hi = self._day_bounds(target)
        return lo + timedelta(seconds=remaining * (hi - lo).total_seconds())

    def _business_day_after(self, day: date, n: int) -> date | None:
        """The n-th business day after `day` (None beyond _MAX_DAYS), remembered: a batch of
        requests opened the same day asks for the same few deadlines."""
        key = (day, n)
        if key in self._nth:
            return self._nth[key]
        found, current, left = None, day, n
        for _ in range(_MAX_DAYS):
            current += timedelta(days=1)
            if self.is_business_day(current):
                left -= 1
                if left == 0:
                    found = current
                    break
        if len(self._nth) >= _NTH_CACHE_SIZE:
            self._nth.clear()
        self._nth[key] = found
        return found


@functools.lru_cache(maxsize=256)
def calendar_for(departement: str | None) -> BusinessCalendar:
    """The (cached) calendar of a département."""
    return BusinessCalendar(departement)
