"""The order page's legal hold forms: place or release a hold, with a reason (admins and auditors).

Same pattern as the order's actions (central/console/routes_order.py): the session's CSRF token
and this site's origin (`posting_viewer`, which lets auditors post: preserving evidence is their
job), the `evidence.hold` permission (403, audited), the order's site (404), then one
transaction with its audit row, and a redirect back to the order. Registered before
routes_order, whose `/orders/{id}/{action}` would otherwise take `/orders/{id}/hold`.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from central.auth.roles import Permission
from central.caseflow.hooks import order_subject
from central.console.routes_order import HOLD_DONE, order_page, visible_order
from central.console.web import PageError, Viewer, posted_form, posting_viewer
from central.retention.holds import MAX_REASON_CHARS, HoldError, NoSuchOrder, place_hold, release_hold

__all__ = ["router"]

log = logging.getLogger("central.console")

router = APIRouter()

ViewerDep = Annotated[Viewer, Depends(posting_viewer)]
FormDep = Annotated[FormData, Depends(posted_form)]


def _change(request: Request, viewer: Viewer, order_id: str, form: FormData, *, release: bool) -> Response:
    done = HOLD_DONE[1] if release else HOLD_DONE[0]
    viewer.require(Permission.EVIDENCE_HOLD, order_subject(order_id))
    visible_order(viewer, order_id)
    counters = viewer.console.ctx.counters
    value = form.get("reason")
    reason = value.strip()[:MAX_REASON_CHARS] if isinstance(value, str) else ""
    if not reason:
        counters.inc(f"console_action_refused.{done}")
        return order_page(request, viewer, order_id, status=400, error=viewer.t("err.reason_required"))
    change = release_hold if release else place_hold
    now = viewer.console.ctx.clock()
    try:
        change(viewer.db, order_id, reason=reason, actor=viewer.actor, audit=viewer.audit, now=now)
    except NoSuchOrder:
        raise PageError(404, viewer.t("err.not_found")) from None
    except HoldError as exc:
        counters.inc(f"console_action_refused.{done}")
        return order_page(request, viewer, order_id, status=409, error=viewer.t("err.refused", what=str(exc)))
    counters.inc(f"console_action.{done}")
    log.info("console: %s did %s on %s", viewer.actor, done, order_id)
    return RedirectResponse(f"/orders/{order_id}?done={done}", status_code=303)


@router.post("/orders/{order_id}/hold")
def place(request: Request, order_id: str, viewer: ViewerDep, form: FormDep) -> Response:
    return _change(request, viewer, order_id, form, release=False)


@router.post("/orders/{order_id}/hold/release")
def release(request: Request, order_id: str, viewer: ViewerDep, form: FormDep) -> Response:
    return _change(request, viewer, order_id, form, release=True)
