"""Working hours: office hours, Chinese statutory holidays and adjusted workdays, the override table."""

from __future__ import annotations

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from central.caseflow import ROUND_THE_CLOCK, WorkCalendar, WorkdayCalendar

SH = ZoneInfo("Asia/Shanghai")
HOUR = 3600.0


def at(text: str) -> float:
    """'2026-09-30 16:00' in Shanghai time -> POSIX seconds."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SH).timestamp()


def shanghai(ts: float) -> str:
    return datetime.fromtimestamp(ts, SH).strftime("%Y-%m-%d %H:%M")


@pytest.fixture
def cal() -> WorkCalendar:
    # The default: 08:30-12:00 and 13:30-17:30, chinese-calendar holidays.
    return WorkCalendar()


def test_four_working_hours_skip_lunch_and_the_night(cal: WorkCalendar) -> None:
    assert shanghai(cal.add(at("2026-11-18 09:00"), 4 * HOUR)) == "2026-11-18 14:30"
    assert shanghai(cal.add(at("2026-11-18 16:00"), 4 * HOUR)) == "2026-11-19 11:00"
    # Filed at night: the clock starts with the office.
    assert shanghai(cal.add(at("2026-11-18 22:00"), 4 * HOUR)) == "2026-11-19 14:00"
    # Ending exactly at the close of office counts as that moment.
    assert shanghai(cal.add(at("2026-11-18 13:30"), 4 * HOUR)) == "2026-11-18 17:30"


def test_a_weekend_and_the_national_day_holidays_do_not_count(cal: WorkCalendar) -> None:
    assert shanghai(cal.add(at("2026-11-20 16:00"), 4 * HOUR)) == "2026-11-23 11:00"  # Friday -> Monday
    # 2026-10-01..07 are statutory holidays.
    assert shanghai(cal.add(at("2026-09-30 16:00"), 4 * HOUR)) == "2026-10-08 11:00"


def test_an_adjusted_weekend_workday_counts(cal: WorkCalendar) -> None:
    # Saturday 2026-10-10 is a workday (调休).
    assert shanghai(cal.add(at("2026-10-09 16:00"), 4 * HOUR)) == "2026-10-10 11:00"


def test_subtract_and_between_agree_with_add(cal: WorkCalendar) -> None:
    start = at("2026-09-30 16:00")
    due = cal.add(start, 4 * HOUR)
    assert cal.subtract(due, 4 * HOUR) == start
    assert cal.between(start, due) == 4 * HOUR
    assert shanghai(cal.subtract(due, 0.5 * HOUR)) == "2026-10-08 10:30"
    assert shanghai(cal.subtract(at("2026-10-08 09:00"), HOUR)) == "2026-09-30 17:00"
    assert cal.is_working(at("2026-10-08 09:00")) and not cal.is_working(at("2026-10-03 09:00"))


def test_a_year_chinese_calendar_does_not_know_uses_weekdays_and_the_overrides(
    caplog: pytest.LogCaptureFixture,
) -> None:
    overrides = {date(2033, 1, 3): False, date(2033, 1, 8): True}  # Monday off, Saturday on
    cal = WorkCalendar(workdays=WorkdayCalendar("chinese", overrides))
    with caplog.at_level(logging.WARNING, logger="central.caseflow"):
        # Friday 2032-12-31 16:00 (2032 unknown too) -> Mon 2033-01-03 is off -> Tue 11:00.
        assert shanghai(cal.add(at("2032-12-31 16:00"), 4 * HOUR)) == "2033-01-04 11:00"
        # Friday 2033-01-07 16:00 -> Saturday 2033-01-08 is on.
        assert shanghai(cal.add(at("2033-01-07 16:00"), 4 * HOUR)) == "2033-01-08 11:00"
        for day in range(10, 28):
            cal.add(at(f"2033-01-{day:02d} 10:00"), HOUR)
    warned = [r for r in caplog.records if "2033" in r.getMessage()]
    assert len(warned) == 1, "the fallback is logged once per year, not per date"
    assert "chinese-calendar has no holidays for 2033" in warned[0].getMessage()


def test_round_the_clock_and_a_whole_day_calendar() -> None:
    assert ROUND_THE_CLOCK.add(1000.0, 4 * HOUR) == 1000.0 + 4 * HOUR
    every_day = WorkCalendar("Asia/Shanghai", (), WorkdayCalendar("every_day"))
    assert every_day.add(at("2026-10-01 23:00"), 2 * HOUR) == at("2026-10-02 01:00")
    weekdays = WorkCalendar("Asia/Shanghai", (), WorkdayCalendar("weekdays"))
    assert shanghai(weekdays.add(at("2026-11-20 23:00"), 2 * HOUR)) == "2026-11-23 01:00"


def test_a_calendar_without_any_working_time_is_refused_not_looped_forever() -> None:
    never = WorkdayCalendar("every_day", {})
    never.is_workday = lambda d: False  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="no working time"):
        WorkCalendar("UTC", [(0, 60)], never).add(0.0, 60.0)
    with pytest.raises(ValueError, match="overlap"):
        WorkCalendar("UTC", [(0, 120), (60, 180)])
