"""Deadlines and the escalation ladder, as pure functions of an order's clock and the time.

An order's clock starts when it is filed (or reopened). It is due `limit + approved extensions`
of working time later. Before that a reminder goes out (`reminder_before_s` of working time
before due); at due + ladder[0].after_s level 1 is told (usually the responsible person), at
due + ladder[1].after_s level 2 (the supervisor), and so on (the district lead). Past the top,
the top role is told again every `repeat_s` of wall-clock time while the order stays overdue.

`plan` answers, for one order at one instant, what is due to be sent now and when to look at
the order next; the sweep stores that instant (`next_escalation_at`, indexed) so it never has to
scan the orders that need nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

from central.caseflow.workhours import WorkCalendar

__all__ = [
    "Calendar",
    "EscalationPlan",
    "EscalationPolicy",
    "EscalationState",
    "EscalationStep",
    "LadderStep",
    "MemoCalendar",
    "PlanMemo",
    "due_at",
    "plan",
]

StepKind = Literal["reminder", "overdue", "still_overdue"]


@dataclass(frozen=True)
class LadderStep:
    role: str  # a role of the order's site: responsible, supervisor, district_lead, ...
    after_s: float = 0.0  # working seconds after the due time


@dataclass(frozen=True)
class EscalationPolicy:
    ladder: tuple[LadderStep, ...] = (
        LadderStep("responsible", 0.0),
        LadderStep("supervisor", 3600.0),
        LadderStep("district_lead", 4 * 3600.0),
    )
    reminder_before_s: float = 1800.0  # 0: no reminder
    repeat_s: float = 4 * 3600.0  # 0: the top of the ladder is told once

    def __post_init__(self) -> None:
        delays = [s.after_s for s in self.ladder]
        if any(d < 0 for d in delays) or delays != sorted(delays):
            raise ValueError("ladder delays must be >= 0 and not decrease from one level to the next")


@dataclass(frozen=True)
class EscalationState:
    level: int = 0  # ladder levels told so far (0: not overdue yet)
    reminded: bool = False
    repeats: int = 0  # times the top of the ladder was told again


@dataclass(frozen=True)
class EscalationStep:
    kind: StepKind
    level: int
    role: str | None  # None for the reminder: the routes in the config say who hears it
    at: float  # when this step fell due (it names the notice, so a step is sent once)


@dataclass(frozen=True)
class EscalationPlan:
    steps: tuple[EscalationStep, ...]
    state: EscalationState
    next_at: float | None  # None: nothing will ever be due (no ladder, no reminder)
    changed: bool = field(default=False)


class Calendar(Protocol):
    """What `plan` asks of a working-time calendar (a WorkCalendar, or a MemoCalendar over one)."""

    def add(self, start: float, seconds: float) -> float: ...

    def subtract(self, end: float, seconds: float) -> float: ...


class MemoCalendar:
    """A WorkCalendar that remembers its answers, for one sweep.

    The ladder's times are the due time plus or minus a few fixed offsets, and a burst is many
    orders with the same due time (all filed overnight, all started at 08:30): each is worked
    out once. Use one per sweep (the memory grows with the distinct due times it is asked about).
    """

    def __init__(self, calendar: WorkCalendar) -> None:
        self.calendar = calendar
        self._added: dict[tuple[float, float], float] = {}

    def add(self, start: float, seconds: float) -> float:
        key = (start, seconds)
        t = self._added.get(key)
        if t is None:
            t = self._added[key] = self.calendar.add(start, seconds)
        return t

    def subtract(self, end: float, seconds: float) -> float:
        return self.add(end, -seconds)  # WorkCalendar.add of a negative time subtracts


def due_at(clock_start: float, limit_s: float, extension_s: float, calendar: WorkCalendar) -> float:
    """The deadline: `limit + extensions` of working time after the clock started."""
    return calendar.add(clock_start, limit_s + extension_s)


def plan(
    *,
    due: float,
    clock_start: float,
    state: EscalationState,
    now: float,
    policy: EscalationPolicy,
    calendar: Calendar,
) -> EscalationPlan:
    """What to send at `now` given what was sent (`state`), and when to look again.

    After downtime every missed level is sent (they go to different people); a reminder whose
    moment passed while the order became overdue is skipped, and missed repeats count as one
    (none when the top level itself is sent in the same plan).
    """
    ladder = policy.ladder
    top = len(ladder)
    steps: list[EscalationStep] = []
    level, reminded, repeats = state.level, state.reminded, state.repeats
    # Ladder times do not decrease: walk from the current level to the first one still ahead.
    next_level_at: float | None = None
    top_at: float | None = None
    while level < top:
        t = calendar.add(due, ladder[level].after_s)
        if t > now:
            next_level_at = t
            break
        steps.append(EscalationStep("overdue", level + 1, ladder[level].role, t))
        reminded = True  # too late for "due soon"
        level += 1
        top_at = t
    remind_at: float | None = None
    if level == 0 and not reminded and policy.reminder_before_s > 0:
        candidate = calendar.subtract(due, policy.reminder_before_s)
        if candidate > clock_start:  # a limit shorter than the reminder gets none: 'opened' just went out
            remind_at = candidate
            if candidate <= now:
                steps.append(EscalationStep("reminder", 0, None, candidate))
                reminded, remind_at = True, None
    if top and level == top and policy.repeat_s > 0:
        if top_at is None:
            top_at = calendar.add(due, ladder[-1].after_s)
        due_repeats = math.floor((now - top_at) / policy.repeat_s)
        if due_repeats > repeats:
            # Reaching the top in this very plan tells the top role already: no repeat on top of it.
            if not (steps and steps[-1].level == top):
                steps.append(
                    EscalationStep("still_overdue", top, ladder[-1].role, top_at + due_repeats * policy.repeat_s)
                )
            repeats = due_repeats

    next_at: float | None
    if remind_at is not None:
        next_at = remind_at
    elif level < top:
        next_at = next_level_at
    elif top and policy.repeat_s > 0 and top_at is not None:
        next_at = top_at + (repeats + 1) * policy.repeat_s
    else:
        next_at = None
    new_state = EscalationState(level, reminded, repeats)
    return EscalationPlan(tuple(steps), new_state, next_at, changed=new_state != state)


class PlanMemo:
    """`plan` for one policy, calendar and instant, remembering its answers (for one sweep).

    A burst is many orders with the same due time and state (filed overnight, clocks started at
    08:30): their plans are the same, and each is worked out once. The clock's start matters to
    a plan only through whether the reminder's moment comes after it, so that, not the start
    itself, is part of the key.
    """

    def __init__(self, policy: EscalationPolicy, calendar: Calendar, now: float) -> None:
        self.policy = policy
        self.calendar = calendar
        self.now = now
        self._plans: dict[tuple[float, int, bool, int, bool], EscalationPlan] = {}

    def plan(self, *, due: float, clock_start: float, level: int, reminded: bool, repeats: int) -> EscalationPlan:
        """plan(due=..., clock_start=..., state=EscalationState(level, reminded, repeats), ...)."""
        before = self.policy.reminder_before_s
        remind_after_start = before > 0 and self.calendar.subtract(due, before) > clock_start
        key = (due, level, reminded, repeats, remind_after_start)
        found = self._plans.get(key)
        if found is None:
            found = self._plans[key] = plan(
                due=due,
                clock_start=clock_start,
                state=EscalationState(level, reminded, repeats),
                now=self.now,
                policy=self.policy,
                calendar=self.calendar,
            )
        return found
