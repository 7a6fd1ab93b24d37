"""Acknowledging an order: the supervisor's "seen, on it" (确认接单), for the console and the API alike.

A reported order (信息采集) is registered (立案) by it, the case flow's `register`. An order
already being worked keeps its status: the acknowledgement is a history row and an audit row
(actor, reason), so the record shows who took the case in hand and when. Anything else (resolved,
closed, rejected, ...) has nothing to acknowledge.
"""

from __future__ import annotations

from sqlite_utils import Database

from central.caseflow.flow import CaseFlow, OrderNotFound
from central.caseflow.hooks import AuditHook, order_subject
from central.caseflow.states import Action, Status, TransitionError
from central.store.order_changes import record_history
from central.store.transactions import immediate
from central.store.work_orders import work_order

__all__ = ["ACKNOWLEDGEABLE", "acknowledge"]

# Statuses in which an acknowledgement records who is on it, without a change of status.
WORKING = frozenset({Status.REGISTERED, Status.DISPATCHED, Status.IN_PROGRESS, Status.REOPENED})
ACKNOWLEDGEABLE = WORKING | {Status.REPORTED}


def acknowledge(flow: CaseFlow, db: Database, order_id: str, *, actor: str, reason: str, audit: AuditHook) -> None:
    """Register a reported order, or record that an order being worked is acknowledged.

    OrderNotFound for an unknown order; TransitionError for an order with nothing to acknowledge.
    """
    now = flow.clock()
    with immediate(db):
        order = work_order(db, order_id)
        if order is None:
            raise OrderNotFound(f"no work order {order_id!r}")
        status = str(order["status"])
        if status == Status.REPORTED:
            flow.act(db, order_id, Action.REGISTER, actor=actor, reason=reason, audit=audit)
            return
        if status not in WORKING:
            raise TransitionError(f"an order in status {status!r} has nothing to acknowledge")
        facts = {"status": status}
        record_history(
            db,
            order_id,
            at=now,
            actor=actor,
            action="acknowledge",
            from_status=status,
            to_status=status,
            reason=reason,
            detail=facts,
        )
        audit(actor, "order.acknowledge", order_subject(order_id), reason, facts)
