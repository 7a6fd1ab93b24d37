"""Applying case-flow moves to stored orders: the row, its history, its clock, the audit hook.

Every status change of a work order, whoever makes it (the camera, a person through the API),
goes through `apply_transition`: the pure state machine checks it, the row gets the new status
and timestamps, the deadline clock stops or restarts, `order_history` gets a row and the audit
hook is called, all in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from central.caseflow.hooks import AuditHook, no_audit, order_subject
from central.caseflow.ladder import EscalationState, due_at, plan
from central.caseflow.rules import CaseRules
from central.caseflow.states import CLOCK_RUNNING, Action, Status, transition
from central.timefmt import utc_iso

__all__ = ["Change", "apply_transition", "clock_fields", "record_history"]

_STAMPS: Mapping[Status, str] = {
    Status.REGISTERED: "registered_at",
    Status.DISPATCHED: "dispatched_at",
    Status.IN_PROGRESS: "started_at",
    Status.RESOLVED: "resolved_at",
    Status.VERIFIED: "verified_at",
    Status.CLOSED: "closed_at",
    Status.REJECTED: "rejected_at",
    Status.REOPENED: "reopened_at",
}


@dataclass(frozen=True)
class Change:
    """One status change that was made (what notifications and counters are derived from)."""

    order_id: str
    action: Action
    from_status: Status | None
    to_status: Status
    actor: str
    reason: str
    at: float


def clock_fields(
    *,
    clock_start: float,
    limit_s: float,
    extension_s: float,
    rules: CaseRules,
    now: float,
    state: EscalationState | None = None,
) -> dict[str, Any]:
    """The deadline columns for a clock started at `clock_start`, and when the sweep looks next.

    If something is due already (an extension that still leaves the order overdue), the sweep
    looks at once rather than this function sending anything.
    """
    state = state or EscalationState()
    due = due_at(clock_start, limit_s, extension_s, rules.calendar)
    p = plan(due=due, clock_start=clock_start, state=state, now=now, policy=rules.escalation, calendar=rules.calendar)
    return {
        "clock_start_ts": clock_start,
        "limit_s": limit_s,
        "extension_s": extension_s,
        "due_ts": due,
        "due_at": utc_iso(due),
        "escalation_level": state.level,
        "reminded": int(state.reminded),
        "escalation_repeats": state.repeats,
        "next_escalation_at": now if p.steps else p.next_at,
    }


def record_history(
    db: Database,
    order_id: str,
    *,
    at: float,
    actor: str,
    action: str,
    from_status: str | None,
    to_status: str,
    reason: str,
    detail: Mapping[str, Any],
) -> None:
    db.execute(
        "INSERT INTO order_history (work_order_id, at, actor, action, from_status, to_status, reason, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            order_id,
            utc_iso(at),
            actor,
            action,
            from_status,
            to_status,
            reason,
            json.dumps(dict(detail), sort_keys=True),
        ],
    )


def apply_transition(
    db: Database,
    order: Mapping[str, Any],
    action: Action | str,
    *,
    actor: str,
    reason: str = "",
    now: float,
    rules: CaseRules,
    audit: AuditHook = no_audit,
    fields: Mapping[str, Any] | None = None,
    detail: Mapping[str, Any] | None = None,
) -> Change:
    """Check and make one move of a stored order (a row of work_orders); raise TransitionError if not allowed.

    `fields`: more columns to set with the move (assignee, after_snapshot_sha256, ...).
    A reopen restarts the deadline clock from zero; a move out of the running statuses stops it.
    """
    t = transition(order, action, actor, reason)
    stamp = utc_iso(now)
    updates: dict[str, Any] = {**(fields or {}), "status": t.to_status.value, "updated_at": stamp}
    column = _STAMPS.get(t.to_status)
    if column is not None:
        updates[column] = stamp
    if t.to_status is Status.RESOLVED:
        updates["resolved_ts"] = now
    elif t.to_status is Status.CLOSED:
        updates["closed_ts"] = now
    elif t.to_status is Status.REJECTED:
        updates["reject_reason"] = t.reason
    if t.to_status is Status.REOPENED:
        updates["reopen_count"] = int(order.get("reopen_count") or 0) + 1
        limit = rules.limit_for(str(order["event_code"]))
        updates.update(clock_fields(clock_start=now, limit_s=limit, extension_s=0.0, rules=rules, now=now))
    elif t.to_status not in CLOCK_RUNNING:
        updates["next_escalation_at"] = None
    order_id = str(order["id"])
    bad = [name for name in updates if not name.replace("_", "").isalnum()]
    if bad:
        raise ValueError(f"not a column name: {bad[0]!r}")
    assignments = ", ".join(f"{name} = ?" for name in updates)
    db.execute(f"UPDATE work_orders SET {assignments} WHERE id = ?", [*updates.values(), order_id])
    facts: dict[str, Any] = {
        "from": t.from_status.value if t.from_status else None,
        "to": t.to_status.value,
        **(detail or {}),
    }
    if "due_at" in updates:
        facts["due_at"] = updates["due_at"]
    record_history(
        db,
        order_id,
        at=now,
        actor=actor,
        action=t.action.value,
        from_status=facts["from"],
        to_status=t.to_status.value,
        reason=t.reason,
        detail=facts,
    )
    audit(actor, f"order.{t.action.value}", order_subject(order_id), t.reason, facts)
    return Change(order_id, t.action, t.from_status, t.to_status, actor, t.reason, now)
