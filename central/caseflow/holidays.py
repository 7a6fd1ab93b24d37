"""Which dates are workdays: the config's override table, then chinese-calendar, then Monday to Friday.

chinese-calendar knows China's statutory holidays and the weekend days moved to workdays
(调休) for the years the State Council has announced. For a year it does not know yet it raises
NotImplementedError; the override table fills that gap (add the announced dates to the config
until the package is updated), and any date in neither counts by the plain week, Monday to
Friday. That fallback is logged once per year and process, not once per date.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import date
from typing import Literal

import chinese_calendar

__all__ = ["HolidaySource", "WorkdayCalendar"]

log = logging.getLogger("central.caseflow")

HolidaySource = Literal["chinese", "weekdays", "every_day"]

_warned_years: set[int] = set()
_warned_lock = threading.Lock()


def _warn_unknown_year(year: int, detail: str) -> None:
    with _warned_lock:
        if year in _warned_years:
            return
        _warned_years.add(year)
    log.warning(
        "chinese-calendar has no holidays for %d (%s): counting Monday to Friday as workdays there,"
        " corrected by the config's holiday overrides; update chinese-calendar once the year is announced",
        year,
        detail,
    )


class WorkdayCalendar:
    """`is_workday(d)`: overrides first (True: workday, False: holiday), then the source.

    source 'chinese': chinese-calendar (statutory holidays and adjusted workdays), falling back
    to Monday-Friday for years it does not know; 'weekdays': Monday-Friday; 'every_day': always.
    """

    def __init__(self, source: HolidaySource = "chinese", overrides: Mapping[date, bool] | None = None) -> None:
        self.source: HolidaySource = source
        self.overrides: dict[date, bool] = dict(overrides or {})
        self._cache: dict[date, bool] = {}

    @property
    def every_day(self) -> bool:
        """True when no date is ever off (the clock runs on weekends and holidays too)."""
        return self.source == "every_day" and all(self.overrides.values())

    def is_workday(self, d: date) -> bool:
        cached = self._cache.get(d)
        if cached is None:
            cached = self._cache[d] = self._decide(d)
        return cached

    def _decide(self, d: date) -> bool:
        override = self.overrides.get(d)
        if override is not None:
            return override
        if self.source == "every_day":
            return True
        if self.source == "chinese":
            try:
                return bool(chinese_calendar.is_workday(d))
            except NotImplementedError as exc:
                _warn_unknown_year(d.year, str(exc))
        return d.weekday() < 5
