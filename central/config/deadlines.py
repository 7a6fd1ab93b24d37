"""How deadlines are counted and chased: cities (time zone, office hours, holidays, limits), the
calendar's overrides, the escalation ladder, and the work orders' own defaults."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Literal

from pydantic import Field, field_validator

from central.config.base import Strict
from wire.ids import check_id

__all__ = [
    "CalendarConfig",
    "CityConfig",
    "EscalationConfig",
    "LadderStepConfig",
    "WorkOrderConfig",
    "check_ladder",
    "check_limits",
]


def check_limits(v: dict[str, float]) -> dict[str, float]:
    for code, hours in v.items():
        if not hours > 0:
            raise ValueError(f"{code}: the limit must be > 0 working hours")
    return v


def _minutes(hhmm: str) -> int:
    h, _, m = hhmm.strip().partition(":")
    if not (h.isdigit() and m.isdigit() and len(m) == 2) or not (0 <= int(h) <= 24 and 0 <= int(m) < 60):
        raise ValueError(f"{hhmm!r} is not HH:MM")
    total = int(h) * 60 + int(m)
    if total > 1440:
        raise ValueError(f"{hhmm!r} is after 24:00")
    return total


def _office_span(text: str) -> tuple[int, int]:
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not HH:MM-HH:MM")
    a, b = _minutes(start), _minutes(end)
    if not a < b:
        raise ValueError(f"{text!r} ends before it starts")
    return a, b


class CityConfig(Strict):
    """Where deadlines are counted: time zone, office hours, holidays, event code and limits."""

    id: str
    timezone: str = "Asia/Shanghai"
    # "HH:MM-HH:MM" spans of a workday; [] means the whole day.
    office_hours: list[str] = Field(default_factory=lambda: ["08:30-12:00", "13:30-17:30"])
    holidays: Literal["chinese", "weekdays", "every_day"] = "chinese"
    event_code: str | None = Field(default=None, pattern=r"^[0-9A-Za-z_-]{1,16}$")
    limits_hours: dict[str, float] = Field(default_factory=dict)  # event code -> working hours

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id(v, "city id")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(v)
        except Exception:
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("office_hours")
    @classmethod
    def _hours(cls, v: list[str]) -> list[str]:
        spans = sorted(_office_span(x) for x in v)
        if any(nxt[0] < cur[1] for cur, nxt in itertools.pairwise(spans)):
            raise ValueError("office hours overlap")
        return v

    _limits = field_validator("limits_hours")(check_limits)

    def spans(self) -> list[tuple[int, int]]:
        """Office hours as (start, end) minutes after midnight."""
        return sorted(_office_span(x) for x in self.office_hours)


class CalendarConfig(Strict):
    # Dates chinese-calendar does not know yet (next year's holidays are announced in November)
    # or that a city handles differently: "2027-02-06: workday", "2027-01-01: holiday".
    overrides: dict[date, Literal["workday", "holiday"]] = Field(default_factory=dict)


class LadderStepConfig(Strict):
    role: str = Field(min_length=1)
    after_s: float = Field(default=0.0, ge=0)  # working seconds after the due time


def _default_ladder() -> list[LadderStepConfig]:
    return [
        LadderStepConfig(role="responsible", after_s=0.0),
        LadderStepConfig(role="supervisor", after_s=3600.0),
        LadderStepConfig(role="district_lead", after_s=4 * 3600.0),
    ]


def check_ladder(v: list[LadderStepConfig] | None) -> list[LadderStepConfig] | None:
    if v is not None:
        delays = [s.after_s for s in v]
        if delays != sorted(delays):
            raise ValueError("the delays must not decrease from one level to the next")
    return v


class EscalationConfig(Strict):
    ladder: list[LadderStepConfig] = Field(default_factory=_default_ladder)
    reminder_before_s: float = Field(default=1800.0, ge=0)  # working seconds before due; 0: none
    repeat_s: float = Field(default=4 * 3600.0, ge=0)  # the top of the ladder again; 0: once
    camera_offline_s: float = Field(default=1800.0, gt=0)  # offline this long: the site hears of it
    sweep_s: float = Field(default=30.0, gt=0)  # how often deadlines and cameras are checked

    _ladder = field_validator("ladder")(check_ladder)


class WorkOrderConfig(Strict):
    event_code: str = Field(default="0102", pattern=r"^[0-9A-Za-z_-]{1,16}$")  # a city may set its own
    deadline_hours: float = Field(default=4.0, gt=0)  # working hours, for codes not in limits_hours
    limits_hours: dict[str, float] = Field(default_factory=dict)  # event code -> working hours
    # Garbage back at a spot within this long after its order closed reopens that order; later it
    # opens a new order linked to the last one (the spot's recurrence count goes up either way).
    reopen_window_s: float = Field(default=24 * 3600.0, ge=0)
    # An order resolved by hand waits for the camera; garbage the camera still sees this long
    # after the resolution reopens it.
    resolve_grace_s: float = Field(default=600.0, ge=0)

    _limits = field_validator("limits_hours")(check_limits)
