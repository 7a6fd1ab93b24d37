"""The case flow of a work order as a pure state machine: statuses, actions, the allowed moves.

信息采集 -> 立案 -> 派遣 -> 处置 -> 反馈 -> 核查 -> 结案, as statuses:

    reported -> registered -> dispatched -> in_progress -> resolved -> verified -> closed

plus `rejected` (a false positive, always with a reason) and `reopened` (garbage back, or a
supervisor sending a resolved, verified or closed order back; it is worked like `registered`).
The camera files its orders straight as `registered` and verifies them itself when it sees the
spot clean, so `verify` is allowed from every working status, not only from `resolved`.

Nothing here touches the database: `transition` checks one move and says what it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "CLOCK_RUNNING",
    "OPEN_STATUSES",
    "TRANSITIONS",
    "Action",
    "Status",
    "Transition",
    "TransitionError",
    "allowed_actions",
    "transition",
]


class Status(StrEnum):
    REPORTED = "reported"  # 信息采集: someone reported it, not accepted as a case yet
    REGISTERED = "registered"  # 立案: a case with a deadline
    DISPATCHED = "dispatched"  # 派遣: given to an assignee
    IN_PROGRESS = "in_progress"  # 处置: being cleaned up
    RESOLVED = "resolved"  # 反馈: reported done by a person; waits for the camera's confirmation
    VERIFIED = "verified"  # 核查: confirmed clean (after-snapshot or a supervisor)
    CLOSED = "closed"  # 结案
    REJECTED = "rejected"  # not a case: a false positive, with the reason
    REOPENED = "reopened"  # back on the desk: garbage returned, or a supervisor disagreed


class Action(StrEnum):
    REPORT = "report"
    REGISTER = "register"
    DISPATCH = "dispatch"
    START = "start"
    RESOLVE = "resolve"
    VERIFY = "verify"
    CLOSE = "close"
    REJECT = "reject"
    REOPEN = "reopen"


S, A = Status, Action

# Statuses an order is "open" in: the camera attaches new detections at its spot to it.
OPEN_STATUSES: frozenset[Status] = frozenset(
    {S.REPORTED, S.REGISTERED, S.DISPATCHED, S.IN_PROGRESS, S.RESOLVED, S.REOPENED}
)
# Statuses the deadline clock runs in (and escalation with it). A resolved order waits for the
# camera; its clock stops, and starts again from zero if it is reopened.
CLOCK_RUNNING: frozenset[Status] = frozenset({S.REPORTED, S.REGISTERED, S.DISPATCHED, S.IN_PROGRESS, S.REOPENED})

_WORKING = (S.REGISTERED, S.DISPATCHED, S.IN_PROGRESS, S.REOPENED)

# (from, action) -> to. `None` as the source is an order that does not exist yet.
TRANSITIONS: Mapping[tuple[Status | None, Action], Status] = {
    (None, A.REPORT): S.REPORTED,
    (None, A.REGISTER): S.REGISTERED,
    (S.REPORTED, A.REGISTER): S.REGISTERED,
    **{(s, A.DISPATCH): S.DISPATCHED for s in (S.REGISTERED, S.DISPATCHED, S.REOPENED)},  # dispatched again: reassigned
    (S.DISPATCHED, A.START): S.IN_PROGRESS,
    **{(s, A.RESOLVE): S.RESOLVED for s in _WORKING},
    **{(s, A.VERIFY): S.VERIFIED for s in (*_WORKING, S.RESOLVED)},
    (S.VERIFIED, A.CLOSE): S.CLOSED,
    **{(s, A.REJECT): S.REJECTED for s in (S.REPORTED, *_WORKING)},
    **{(s, A.REOPEN): S.REOPENED for s in (S.RESOLVED, S.VERIFIED, S.CLOSED, S.REJECTED)},
}

# A rejection must say why (the false-positive reason is kept); so must a reopen.
_REASON_REQUIRED: frozenset[Action] = frozenset({A.REJECT, A.REOPEN})


class TransitionError(ValueError):
    """The move is not allowed from the order's status, or it lacks what it needs (a reason)."""


@dataclass(frozen=True)
class Transition:
    action: Action
    from_status: Status | None
    to_status: Status
    actor: str
    reason: str


def _status_of(order: Mapping[str, Any] | None) -> Status | None:
    raw = None if order is None else order.get("status")
    if raw is None:
        return None
    try:
        return Status(raw)
    except ValueError:
        raise TransitionError(f"unknown status {raw!r}") from None


def allowed_actions(status: Status | str | None) -> list[Action]:
    """The actions allowed from `status`, in case-flow order (what a console offers as buttons)."""
    current = None if status is None else Status(status)
    return [a for a in Action if (current, a) in TRANSITIONS]


def transition(order: Mapping[str, Any] | None, action: Action | str, actor: str, reason: str = "") -> Transition:
    """Check one move of `order` (a mapping with 'status'; None for a new order) and describe it.

    Raises TransitionError when the move is not in TRANSITIONS, the actor is empty, or a
    rejection or reopen comes without a reason.
    """
    try:
        act = Action(action)
    except ValueError:
        raise TransitionError(f"unknown action {action!r}") from None
    if not actor.strip():
        raise TransitionError(f"{act.value}: who does it (actor) must be given")
    current = _status_of(order)
    target = TRANSITIONS.get((current, act))
    if target is None:
        where = "a new order" if current is None else f"an order in status {current.value!r}"
        allowed = ", ".join(a.value for a in allowed_actions(current)) or "none"
        raise TransitionError(f"cannot {act.value} {where} (allowed: {allowed})")
    if act in _REASON_REQUIRED and not reason.strip():
        raise TransitionError(f"{act.value} needs a reason")
    return Transition(act, current, target, actor, reason.strip())
