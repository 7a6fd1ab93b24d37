"""The rules one order lives by, and the book that derives them per site from the config.

`CaseRules` is what the filing rules and the sweep need for one site: its event code and
limits, its city's working-hours calendar, its escalation ladder, the reopen window. `Rulebook`
builds them from a CentralConfig once per site and caches them (calendars are shared per city).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from central.caseflow.holidays import WorkdayCalendar
from central.caseflow.ladder import EscalationPolicy, LadderStep
from central.caseflow.workhours import ROUND_THE_CLOCK, WorkCalendar
from central.config import CentralConfig, CityConfig, LadderStepConfig

__all__ = ["CaseRules", "Place", "Rulebook"]


@dataclass(frozen=True)
class Place:
    lat: float | None = None
    lon: float | None = None
    address: str = ""


@dataclass(frozen=True)
class CaseRules:
    """Defaults: event code 0102, 4 hours on a wall clock, no reopening (what a bare test wants)."""

    event_code: str = "0102"  # what the camera files under
    limit_s: float = 4 * 3600.0  # working seconds, for event codes without their own limit
    limits_s: Mapping[str, float] = field(default_factory=dict)  # event code -> working seconds
    calendar: WorkCalendar = ROUND_THE_CLOCK
    escalation: EscalationPolicy = field(default_factory=EscalationPolicy)
    reopen_window_s: float = 0.0
    resolve_grace_s: float = 600.0
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # role -> person ids at this site

    def limit_for(self, event_code: str) -> float:
        return self.limits_s.get(event_code, self.limit_s)


def _ladder(steps: list[LadderStepConfig]) -> tuple[LadderStep, ...]:
    return tuple(LadderStep(s.role, s.after_s) for s in steps)


class Rulebook:
    """Per-site CaseRules from the config; safe to share between threads."""

    def __init__(self, config: CentralConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._sites: dict[str, CaseRules] = {}
        self._calendars: dict[str, WorkCalendar] = {}
        overrides: dict[date, bool] = {d: v == "workday" for d, v in config.calendar.overrides.items()}
        self._overrides = overrides

    def calendar_of(self, city: CityConfig) -> WorkCalendar:
        with self._lock:
            cal = self._calendars.get(city.id)
            if cal is None:
                workdays = WorkdayCalendar(city.holidays, self._overrides)
                cal = self._calendars[city.id] = WorkCalendar(city.timezone, city.spans(), workdays)
            return cal

    def for_site(self, site_id: str) -> CaseRules:
        with self._lock:
            rules = self._sites.get(site_id)
        if rules is None:
            rules = self._build(site_id)
            with self._lock:
                self._sites[site_id] = rules
        return rules

    def place(self, site_id: str, camera: str) -> Place:
        site = self.config.site(site_id)
        if site is None:
            return Place()
        p = site.place_of(camera)
        return Place(p.lat, p.lon, p.address)

    def _build(self, site_id: str) -> CaseRules:
        cfg = self.config
        wo, esc = cfg.work_orders, cfg.escalation
        city = cfg.city_of(site_id)
        site = cfg.site(site_id)
        event_code = city.event_code or wo.event_code
        limits_h = {**wo.limits_hours, **city.limits_hours}
        roles: dict[str, tuple[str, ...]] = {r: tuple(m) for r, m in cfg.notify.roles.items()}
        if site is not None:
            roles.update({r: tuple(m) for r, m in site.roles.items()})
        ladder = site.ladder if site is not None and site.ladder is not None else esc.ladder
        return CaseRules(
            event_code=event_code,
            limit_s=wo.deadline_hours * 3600.0,
            limits_s={code: h * 3600.0 for code, h in limits_h.items()},
            calendar=self.calendar_of(city),
            escalation=EscalationPolicy(_ladder(ladder), esc.reminder_before_s, esc.repeat_s),
            reopen_window_s=wo.reopen_window_s,
            resolve_grace_s=wo.resolve_grace_s,
            roles=roles,
        )
