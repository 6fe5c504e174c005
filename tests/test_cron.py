"""PingSource schedules: the cron language Knative accepts, and when each fires next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.platform.cron import ScheduleError, parse_schedule

FRIDAY = datetime(2026, 2, 20, 8, 15, 30, tzinfo=UTC)  # a Friday


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("* * * * *", datetime(2026, 2, 20, 8, 16, tzinfo=UTC)),
        ("*/5 * * * *", datetime(2026, 2, 20, 8, 20, tzinfo=UTC)),
        ("0 9 * * MON-FRI", datetime(2026, 2, 20, 9, 0, tzinfo=UTC)),
        ("0 9 * * sat,sun", datetime(2026, 2, 21, 9, 0, tzinfo=UTC)),
        ("30 2 * * 7", datetime(2026, 2, 22, 2, 30, tzinfo=UTC)),  # 7 is Sunday too
        ("0 0 1 JAN *", datetime(2027, 1, 1, tzinfo=UTC)),
        ("0 0 29 2 *", datetime(2028, 2, 29, tzinfo=UTC)),  # the next leap day
        ("0 12 1 * MON", datetime(2026, 2, 23, 12, 0, tzinfo=UTC)),  # either day field matches
        ("15-45/15 8 * * ?", datetime(2026, 2, 20, 8, 30, tzinfo=UTC)),
        ("@hourly", datetime(2026, 2, 20, 9, 0, tzinfo=UTC)),
        ("@daily", datetime(2026, 2, 21, tzinfo=UTC)),
        ("@every 1h30m", FRIDAY + timedelta(minutes=90)),
        ("@every 500ms", FRIDAY + timedelta(milliseconds=500)),
    ],
)
def test_the_next_firing(schedule: str, expected: datetime) -> None:
    assert parse_schedule(schedule).next_after(FRIDAY) == expected


def test_a_timezone_moves_the_wall_clock() -> None:
    berlin = parse_schedule("0 9 * * *", "Europe/Berlin")
    assert berlin.next_after(FRIDAY) == datetime(2026, 2, 21, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "timezone", "message"),
    [
        ("* * * *", None, "needs five fields"),
        ("60 * * * *", None, "minute '60' is outside 0-59"),
        ("* 24 * * *", None, "hour '24'"),
        ("* * * 13 *", None, "month '13'"),
        ("* * * * FUN", None, "day of week 'FUN' is not a number"),
        ("*/0 * * * *", None, "outside"),
        ("@every soon", None, "@every needs a duration"),
        ("0 0 31 2 *", None, "never fires"),
        ("* * * * *", "Mars/Olympus", "unknown timezone"),
    ],
)
def test_a_bad_schedule_says_what_is_wrong(
    schedule: str, timezone: str | None, message: str
) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(schedule, timezone).next_after(FRIDAY)
