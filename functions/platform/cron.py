"""PingSource schedules: five-field cron or a descriptor (`@hourly`, `@every 10s`), as in Knative.

Knative parses `spec.schedule` with robfig/cron's standard parser; this reads the
same language — numbers, names (JAN, MON), `*`, `?`, ranges, lists and steps, and
the descriptors — in the PingSource's `timezone` (UTC when absent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# name, lowest, highest, names (index + lowest is the value)
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),  # 0 and 7 are both Sunday
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_HORIZON = timedelta(days=366 * 5)  # a schedule that never fires in five years never will


class ScheduleError(ValueError):
    """The schedule is not one Knative would accept; the message says which part."""


@dataclass(frozen=True)
class Schedule:
    """When a PingSource fires: `next_after(moment)` is the first firing after moment."""

    text: str
    fields: tuple[frozenset[int], ...] | None  # minute, hour, day, month, weekday
    any_day: tuple[bool, bool] = (True, True)  # day of month / day of week given as * or ?
    every: timedelta | None = None
    zone: ZoneInfo | None = None

    def next_after(self, moment: datetime) -> datetime:
        if self.every is not None:
            return moment + self.every
        assert self.fields is not None
        minutes, hours, days, months, weekdays = self.fields
        local = moment.astimezone(self.zone or UTC)
        wall = local.replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        limit = wall + _HORIZON
        while wall < limit:
            if wall.month not in months:
                wall = (wall.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0)
            elif not self._day_matches(wall, days, weekdays):
                wall = (wall + timedelta(days=1)).replace(hour=0, minute=0)
            elif wall.hour not in hours:
                wall = (wall + timedelta(hours=1)).replace(minute=0)
            elif wall.minute not in minutes:
                wall += timedelta(minutes=1)
            else:
                return wall.replace(tzinfo=self.zone or UTC).astimezone(moment.tzinfo or UTC)
        raise ScheduleError(f"schedule {self.text!r} never fires")

    def _day_matches(self, wall: datetime, days: frozenset[int], weekdays: frozenset[int]) -> bool:
        in_month = wall.day in days
        in_week = (wall.isoweekday() % 7) in weekdays
        any_month_day, any_week_day = self.any_day
        # Vixie cron: when both are restricted, either may match.
        if not any_month_day and not any_week_day:
            return in_month or in_week
        return in_month and in_week


def parse_schedule(text: str, timezone: str | None = None) -> Schedule:
    """Read a PingSource schedule; raises ScheduleError naming what is wrong."""
    try:
        zone = ZoneInfo(timezone) if timezone else None
    except (KeyError, ValueError):
        raise ScheduleError(f"unknown timezone {timezone!r}") from None
    spec = text.strip()
    if spec.startswith("@every "):
        return Schedule(text, None, every=_duration(spec[len("@every ") :].strip()), zone=zone)
    spec = DESCRIPTORS.get(spec, spec)
    parts = spec.split()
    if len(parts) != 5:
        raise ScheduleError(
            f"schedule {text!r} needs five fields (or a descriptor such as @hourly)"
        )
    fields = tuple(
        _field(part, *definition) for part, definition in zip(parts, _FIELDS, strict=True)
    )
    return Schedule(text, fields, (parts[2] in ("*", "?"), parts[4] in ("*", "?")), zone=zone)


def _duration(text: str) -> timedelta:
    if not text or _DURATION.sub("", text):
        raise ScheduleError(f"@every needs a duration such as 90s or 1h30m, got {text!r}")
    seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(text))
    if seconds <= 0:
        raise ScheduleError(f"@every needs a positive duration, got {text!r}")
    return timedelta(seconds=seconds)


def _field(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = _number(step_text, name, names=()) if step_text else 1
        if span in ("*", "?"):
            first, last = low, high
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = _number(start, name, names, low), _number(end, name, names, low)
        else:
            first = _number(span, name, names, low)
            last = high if step_text else first
        if not low <= first <= last <= high or step < 1:
            raise ScheduleError(f"{name} {item!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    if name == "day of week" and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values)


def _number(text: str, name: str, names: tuple[str, ...], low: int = 0) -> int:
    if text.upper() in names:
        return names.index(text.upper()) + low
    if not text.isdigit():
        raise ScheduleError(f"{name} {text!r} is not a number")
    return int(text)
