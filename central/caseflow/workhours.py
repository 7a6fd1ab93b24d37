"""Working time: office hours on workdays, in a city's time zone. Pure; timestamps are POSIX seconds.

A limit of "4 working hours" filed at 16:00 on a Friday with office hours 08:30-12:00 and
13:30-17:30 is due at 11:00 on the next workday: 1.5 h on Friday, 2.5 h on Monday (or later if
Monday is a statutory holiday). `add` finds such instants, `subtract` walks back (a reminder
"30 working minutes before due"), `between` measures working time spent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from central.caseflow.holidays import WorkdayCalendar

__all__ = ["ROUND_THE_CLOCK", "OfficeHours", "WorkCalendar"]

# (start, end) minutes after local midnight; end may be 1440 (24:00).
OfficeHours = Sequence[tuple[int, int]]

# No sane calendar has ten years without a working minute; past that the config is wrong.
_MAX_DAYS = 3660
_DAY = timedelta(days=1)


class WorkCalendar:
    """When the deadline clock runs. `office_hours` empty means the whole day."""

    def __init__(
        self,
        zone: tzinfo | str = "Asia/Shanghai",
        office_hours: OfficeHours = ((8 * 60 + 30, 12 * 60), (13 * 60 + 30, 17 * 60 + 30)),
        workdays: WorkdayCalendar | None = None,
    ) -> None:
        self.zone: tzinfo = ZoneInfo(zone) if isinstance(zone, str) else zone
        spans = sorted((int(a), int(b)) for a, b in office_hours) or [(0, 1440)]
        for (a, b), nxt in zip(spans, [*spans[1:], None], strict=True):
            if not 0 <= a < b <= 1440:
                raise ValueError(
                    f"office hours {a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d} are not a span of one day"
                )
            if nxt is not None and nxt[0] < b:
                raise ValueError("office hours overlap")
        self.office_hours: tuple[tuple[int, int], ...] = tuple(spans)
        self.workdays = workdays if workdays is not None else WorkdayCalendar("chinese")
        self._always = self.office_hours == ((0, 1440),) and self.workdays.every_day
        self._spans: dict[date, tuple[tuple[float, float], ...]] = {}

    @classmethod
    def round_the_clock(cls) -> WorkCalendar:
        """Every second counts: working time is wall-clock time."""
        return cls("UTC", (), WorkdayCalendar("every_day"))

    # -- the three questions ----------------------------------------------------------------------

    def add(self, start: float, seconds: float) -> float:
        """The instant at which `seconds` of working time after `start` have passed."""
        if seconds < 0:
            return self.subtract(start, -seconds)
        if self._always or seconds == 0:
            return start + seconds
        remaining = float(seconds)
        day = self._date_of(start)
        for _ in range(_MAX_DAYS):
            for s, e in self._spans_of(day):
                if e <= start:
                    continue
                begin = max(s, start)
                if remaining <= e - begin:
                    return begin + remaining
                remaining -= e - begin
            day += _DAY
        raise ValueError(self._no_time())

    def subtract(self, end: float, seconds: float) -> float:
        """The instant `seconds` of working time before `end`."""
        if seconds < 0:
            return self.add(end, -seconds)
        if self._always or seconds == 0:
            return end - seconds
        remaining = float(seconds)
        day = self._date_of(end)
        for _ in range(_MAX_DAYS):
            for s, e in reversed(self._spans_of(day)):
                if s >= end:
                    continue
                stop = min(e, end)
                if remaining <= stop - s:
                    return stop - remaining
                remaining -= stop - s
            day -= _DAY
        raise ValueError(self._no_time())

    def between(self, a: float, b: float) -> float:
        """Working seconds in [a, b] (0 when b <= a)."""
        if b <= a:
            return 0.0
        if self._always:
            return b - a
        total = 0.0
        day, last = self._date_of(a), self._date_of(b)
        while day <= last:
            for s, e in self._spans_of(day):
                total += max(0.0, min(e, b) - max(s, a))
            day += _DAY
        return total

    def is_working(self, ts: float) -> bool:
        """True when the clock runs at `ts`."""
        return self._always or any(s <= ts < e for s, e in self._spans_of(self._date_of(ts)))

    # -- days -------------------------------------------------------------------------------------

    def _date_of(self, ts: float) -> date:
        return datetime.fromtimestamp(ts, self.zone).date()

    def _at(self, day: date, minute: int) -> float:
        if minute >= 1440:
            day, minute = day + _DAY, minute - 1440
        return datetime.combine(day, time(minute // 60, minute % 60), self.zone).timestamp()

    def _spans_of(self, day: date) -> tuple[tuple[float, float], ...]:
        """The day's office hours as timestamps; () on a day off."""
        spans = self._spans.get(day)
        if spans is None:
            if self.workdays.is_workday(day):
                spans = tuple((self._at(day, a), self._at(day, b)) for a, b in self.office_hours)
            else:
                spans = ()
            self._spans[day] = spans
        return spans

    def _no_time(self) -> str:
        return "no working time within ten years: check the office hours and the holiday overrides"


ROUND_THE_CLOCK = WorkCalendar.round_the_clock()
