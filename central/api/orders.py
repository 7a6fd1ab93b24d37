"""JSON API for work orders: list, read (with its legal hold), act (the case flow's actions), and
their evidence list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from central.api import orders_adapter as orders
from central.api.errors import ApiError
from central.api.security import Caller, caller
from central.auth.roles import Permission
from central.caseflow.flow import MAX_EXTENSION_HOURS
from central.caseflow.hooks import order_subject
from central.retention.holds import active_hold
from central.timefmt import utc_iso

__all__ = ["CallerDep", "OrderIdPath", "router", "visible_order"]

router = APIRouter(prefix="/api/v1", tags=["work orders"])

CallerDep = Annotated[Caller, Depends(caller)]
OrderIdPath = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="WO-YYYYMMDD-NNNNNN")


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(
        description="a case-flow action: register, dispatch, start, resolve, verify, close, reject, reopen, extend,"
        " acknowledge"
    )
    reason: str = Field(default="", max_length=2000, description="why (required to reject, reopen or extend)")
    assignee: str | None = Field(default=None, max_length=200, description="for dispatch: who is sent")
    hours: float | None = Field(
        default=None, gt=0, le=MAX_EXTENSION_HOURS, description="for extend: the working hours to add"
    )


def visible_order(c: Caller, order_id: str) -> orders.OrderView:
    """The order, or 404 (also when it exists at a site the caller does not see: no hint it exists)."""
    order = orders.get_order(c.db, order_id)
    if order is None or not c.principal.sees_site(order.site):
        raise ApiError(404, "not_found", f"no work order {order_id!r}")
    return order


@router.get("/orders", summary="List work orders the caller may see, oldest first")
def list_orders(
    c: CallerDep,
    status: Annotated[str | None, Query(max_length=32, description="only orders in this case-flow status")] = None,
    site: Annotated[str | None, Query(max_length=63)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    c.require(Permission.ORDERS_READ, "orders")
    if status is not None and status not in orders.ORDER_STATES:
        raise ApiError(422, "invalid_request", f"status must be one of {', '.join(orders.ORDER_STATES)}")
    sites = c.principal.visible_sites()
    if site is not None:
        if not c.principal.sees_site(site):
            return {"orders": [], "limit": limit, "offset": offset}
        sites = frozenset({site})
    found = orders.list_orders(
        c.db, sites=sites, states=None if status is None else [status], limit=limit, offset=offset
    )
    return {"orders": [o.as_dict() for o in found], "limit": limit, "offset": offset}


@router.get("/orders/{order_id}", summary="One work order, with its evidence files and the actions allowed now")
def get_order(c: CallerDep, order_id: Annotated[str, OrderIdPath]) -> dict[str, Any]:
    c.require(Permission.ORDERS_READ, order_subject(order_id))
    order = visible_order(c, order_id)
    hold = active_hold(c.db, order_id)
    return {
        **order.as_dict(),
        "legal_hold": (
            None if hold is None else {"reason": hold.reason, "placed_by": hold.placed_by, "placed_at": hold.placed_at}
        ),
        "evidence": [e.as_dict() for e in orders.order_evidence(c.db, order_id)],
        "allowed_actions": orders.allowed_actions(order) if c.principal.can(Permission.ORDERS_ACT) else [],
    }


@router.post("/orders/{order_id}/actions", summary="Move a work order on in the case flow")
def act(c: CallerDep, order_id: Annotated[str, OrderIdPath], body: ActionIn) -> dict[str, Any]:
    c.require(Permission.ORDERS_ACT, order_subject(order_id))
    visible_order(c, order_id)
    try:
        order = orders.act_on_order(
            c.ctx.flow,
            c.db,
            order_id,
            body.action,
            actor=c.actor,
            reason=body.reason,
            assignee=body.assignee,
            audit=c.audit,
            hours=body.hours,
        )
    except orders.ActionRefused as exc:
        raise ApiError(409, "action_refused", str(exc)) from None
    except orders.OrderNotFound:
        raise ApiError(404, "not_found", f"no work order {order_id!r}") from None
    c.ctx.counters.inc(f"api_order_action.{body.action}" if body.action in orders.ACTIONS else "api_order_action")
    return {**order.as_dict(), "acted_at": utc_iso(c.ctx.clock())}
