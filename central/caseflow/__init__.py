"""The case flow of work orders: statuses, working-hour deadlines, escalation. Pure parts here.

    from central.caseflow import Action, Status, transition, WorkCalendar

The parts that read and write the database are imported by their own path (they depend on
central.store, which depends on the pure parts here):

    from central.caseflow.flow import CaseFlow        # filing, people's actions, extensions
    from central.caseflow.sweep import sweep           # deadlines, escalation, offline cameras
    from central.caseflow.sweeper import Sweeper       # the sweep on a timer, in a thread
"""

from central.caseflow.holidays import HolidaySource, WorkdayCalendar
from central.caseflow.hooks import AuditHook, no_audit
from central.caseflow.ladder import (
    EscalationPlan,
    EscalationPolicy,
    EscalationState,
    EscalationStep,
    LadderStep,
    due_at,
    plan,
)
from central.caseflow.rules import CaseRules, Place, Rulebook
from central.caseflow.states import (
    CLOCK_RUNNING,
    OPEN_STATUSES,
    TRANSITIONS,
    Action,
    Status,
    Transition,
    TransitionError,
    allowed_actions,
    transition,
)
from central.caseflow.workhours import ROUND_THE_CLOCK, WorkCalendar

__all__ = [
    "CLOCK_RUNNING",
    "OPEN_STATUSES",
    "ROUND_THE_CLOCK",
    "TRANSITIONS",
    "Action",
    "AuditHook",
    "CaseRules",
    "EscalationPlan",
    "EscalationPolicy",
    "EscalationState",
    "EscalationStep",
    "HolidaySource",
    "LadderStep",
    "Place",
    "Rulebook",
    "Status",
    "Transition",
    "TransitionError",
    "WorkCalendar",
    "WorkdayCalendar",
    "allowed_actions",
    "due_at",
    "no_audit",
    "plan",
    "transition",
]
