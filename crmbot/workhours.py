"""Working time: "within one working hour" in a rep's own time zone and working week."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crmbot.domain import InvalidInput

MAX_MINUTES = 60 * 24 * 30  # an SLA beyond a month of working time is a typo


@dataclass(frozen=True)
class WorkingHours:
    """A working day from `start` to `end` on `days` (0 = Monday), in some time zone."""

    start: time = time(9)
    end: time = time(17)
    days: frozenset[int] = frozenset(range(5))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> WorkingHours:
        """Read `{"start": "09:00", "end": "17:00", "days": [0, 1, 2, 3, 4]}` (bad: defaults)."""
        raw = (settings or {}).get("working_hours") or {}
        default = cls()
        try:
            start = time.fromisoformat(str(raw.get("start", "09:00")))
            end = time.fromisoformat(str(raw.get("end", "17:00")))
            days = frozenset(int(d) for d in raw.get("days", range(5)) if 0 <= int(d) <= 6)
        except (TypeError, ValueError):
            return default
        if start >= end or not days:
            return default
        return cls(start, end, days)

    def _minutes(self) -> int:
        return (self.end.hour * 60 + self.end.minute) - (self.start.hour * 60 + self.start.minute)


def zone(tz: str | None) -> ZoneInfo:
    """The named zone, or UTC for names this system doesn't know."""
    try:
        return ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


def _at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """A wall-clock time on a day, as aware UTC (a time skipped by DST moves forward)."""
    local = datetime.combine(day, clock, tzinfo=tz)
    back = local.astimezone(UTC).astimezone(tz)
    if back.replace(tzinfo=None) != local.replace(tzinfo=None):  # inside a spring-forward gap
        local = local + timedelta(hours=1)
    return local.astimezone(UTC)


def add_working_minutes(
    start: datetime, minutes: int, tz: str | None, hours: WorkingHours | None = None
) -> datetime:
    """The moment `minutes` of working time after `start`, counted in the zone `tz`.

    Time outside working hours doesn't count: a lead arriving on Friday at 18:00 with a
    one-hour SLA is due on Monday at 10:00 in the owner's zone.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if not 0 <= minutes <= MAX_MINUTES:
        raise InvalidInput("sla", f"The response time must be 0 to {MAX_MINUTES} minutes.")
    hours = hours or WorkingHours()
    where = zone(tz)
    now = start.astimezone(UTC)
    left = timedelta(minutes=minutes)
    day = now.astimezone(where).date()
    for _ in range(MAX_MINUTES):  # bounded: at least one working day a week
        if day.weekday() in hours.days:
            opens, closes = _at(day, hours.start, where), _at(day, hours.end, where)
            begin = max(now, opens)
            if begin < closes:
                if begin + left <= closes:
                    return begin + left
                left -= closes - begin
        day += timedelta(days=1)
    raise AssertionError("unreachable: working hours have at least one day")
