"""JSON API for legal holds: place or release one on an order, list the active ones.

A hold pins an order's evidence against the retention sweep (central.retention). Placing and
releasing need `evidence.hold` (admins and auditors) and a reason; both are audited with the
caller as actor. An order at a site the caller does not see answers 404, as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from central.api.errors import ApiError
from central.api.orders import CallerDep, OrderIdPath, visible_order
from central.auth.roles import Permission
from central.caseflow.hooks import order_subject
from central.retention.holds import (
    MAX_REASON_CHARS,
    AlreadyHeld,
    Hold,
    HoldError,
    NoSuchOrder,
    NotHeld,
    list_holds,
    place_hold,
    release_hold,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["legal holds"])


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1, max_length=MAX_REASON_CHARS, description="why: the case, complaint or request it is for"
    )


def _refused(exc: HoldError, order_id: str) -> ApiError:
    if isinstance(exc, NoSuchOrder):
        return ApiError(404, "not_found", f"no work order {order_id!r}")
    if isinstance(exc, AlreadyHeld):
        return ApiError(409, "already_held", str(exc))
    if isinstance(exc, NotHeld):
        return ApiError(409, "not_held", str(exc))
    return ApiError(422, "invalid_request", str(exc))


def _change_hold(
    c: CallerDep, order_id: str, body: HoldIn, change: Callable[..., Hold], counter: str
) -> dict[str, Any]:
    """Place or release (`change`) the order's hold, as the caller, after the same checks."""
    c.require(Permission.EVIDENCE_HOLD, order_subject(order_id))
    visible_order(c, order_id)
    try:
        hold = change(c.db, order_id, reason=body.reason, actor=c.actor, audit=c.audit, now=c.ctx.clock())
    except HoldError as exc:
        raise _refused(exc, order_id) from None
    c.ctx.counters.inc(counter)
    return hold.as_dict()


@router.post(
    "/orders/{order_id}/hold",
    status_code=201,
    summary="Place a legal hold: the order's evidence is kept whatever the retention period",
)
def place(c: CallerDep, order_id: Annotated[str, OrderIdPath], body: HoldIn) -> dict[str, Any]:
    return _change_hold(c, order_id, body, place_hold, "api_hold_placed")


@router.post("/orders/{order_id}/hold/release", summary="Release the order's legal hold (retention applies again)")
def release(c: CallerDep, order_id: Annotated[str, OrderIdPath], body: HoldIn) -> dict[str, Any]:
    return _change_hold(c, order_id, body, release_hold, "api_hold_released")


@router.get("/holds", summary="The active legal holds on orders the caller may see, oldest first")
def holds(c: CallerDep) -> dict[str, Any]:
    c.require(Permission.ORDERS_READ, "holds")
    return {"holds": [h.as_dict() for h in list_holds(c.db, sites=c.principal.visible_sites())]}
