"""One work order: its evidence (with integrity; purged files as purged), deadline, legal hold,
timeline, notifications, and the actions."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from central.api.uploads import sniff_image
from central.auth.roles import Permission
from central.caseflow.flow import OrderNotFound
from central.caseflow.hooks import order_subject
from central.caseflow.states import CLOCK_RUNNING, TransitionError
from central.console.actions import ACTIONS, MAX_EXTENSION_HOURS, Photo, available_actions, perform
from central.console.i18n import size_text
from central.console.integrity import ChainStatus, check_evidence, check_order_rows
from central.console.queries import evidence_read_rows, order_audit_rows, order_evidence_items, order_notifications
from central.console.web import PageError, Viewer, acting_viewer, page_viewer, posted_form, render
from central.devices.registry import DeviceRegistry
from central.retention.holds import active_hold
from central.retention.purged import purged_files
from central.store.work_orders import work_order

__all__ = ["HOLD_DONE", "ORDER_ID", "order_page", "router", "visible_order"]

log = logging.getLogger("central.console")

router = APIRouter()

# WO-YYYYMMDD-NNNNNN, and anything else an id may have been (never used to build a path).
ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_MAX_TEXT = 2000
_ASSIGNEE = re.compile(r"[^\x00-\x1f\x7f]{1,100}")
HOLD_DONE = ("hold", "hold_release")  # ?done= after the legal hold's forms (central.console.routes_hold)


def visible_order(viewer: Viewer, order_id: str) -> dict[str, Any]:
    """The order, or 404 (also when it is at a site the viewer does not see: no hint it exists)."""
    order = work_order(viewer.db, order_id) if ORDER_ID.fullmatch(order_id) else None
    if order is None or not viewer.principal.sees_site(str(order["site"])):
        raise PageError(404, viewer.t("err.not_found"))
    return order


def _combined(chain: ChainStatus, rows: ChainStatus) -> ChainStatus:
    if "failed" in (chain.state, rows.state):
        return chain if chain.state == "failed" else rows
    if chain.state == "unchecked":
        return ChainStatus("unchecked", f"{rows.detail}; {chain.detail}")
    return ChainStatus("ok", f"{rows.detail}; {chain.detail}")


def order_page(
    request: Request, viewer: Viewer, order_id: str, *, status: int = 200, error: str = "", flash: str = ""
) -> HTMLResponse:
    viewer.require(Permission.ORDERS_READ, order_subject(order_id))
    order = visible_order(viewer, order_id)
    console, db = viewer.console, viewer.db
    registry = DeviceRegistry(db)
    evidence = order_evidence_items(db, order_id)
    integrity = {
        e.sha256: check_evidence(db, console.ctx.evidence, e.sha256, e.size, signed=e.signed, registry=registry)
        for e in evidence
        if not e.missing
    }
    for sha, result in integrity.items():
        if not result.ok:
            console.ctx.counters.inc("console_integrity_failed")
            log.error("console: evidence %s of order %s does not verify: %s", sha, order_id, result.why)
    snapshot, after = order.get("snapshot_sha256"), order.get("after_snapshot_sha256")
    shas = [e.sha256 for e in evidence if not e.missing] + [s for s in (snapshot, after) if s]
    purged = {sha: p.purged_at for sha, p in purged_files(db, shas).items()}
    clip = next((e for e in evidence if e.role == "clip" and not e.missing), None)
    rows = order_audit_rows(db, order_id)
    audit_status = _combined(console.chain.status(db), check_order_rows(db, rows))
    now = console.ctx.clock()
    running = order["status"] in {s.value for s in CLOCK_RUNNING}
    return render(
        request,
        "order.html",
        viewer=viewer,
        status=status,
        error=error,
        flash=flash,
        order=order,
        evidence=evidence,
        integrity=integrity,
        snapshot=snapshot,
        after=after,
        purged=purged,
        hold=active_hold(db, order_id),
        can_hold=viewer.principal.can(Permission.EVIDENCE_HOLD),
        clip=clip,
        photos=[e for e in evidence if e.role in ("resolve_photo", "report_photo") and not e.missing],
        timeline=rows,
        audit_status=audit_status,
        reads=evidence_read_rows(db, [e.sha256 for e in evidence], limit=20),
        notifications=order_notifications(db, order_id),
        running=running,
        overdue=running and order.get("due_ts") is not None and float(order["due_ts"]) < now,
        actions=available_actions(str(order["status"])) if viewer.can_act else [],
        people=[p.id for p in console.flow.config.notify.people],
        max_upload=size_text(console.settings.max_upload_bytes),
    )


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def show_order(request: Request, order_id: str, viewer: Annotated[Viewer, Depends(page_viewer)]) -> HTMLResponse:
    done = request.query_params.get("done", "")
    flash = viewer.t(f"done.{done}") if done in ACTIONS or done in HOLD_DONE else ""
    return order_page(request, viewer, order_id, flash=flash)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip()[:_MAX_TEXT] if isinstance(value, str) else ""


def _photo(viewer: Viewer, form: FormData) -> Photo | None:
    upload = form.get("photo")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None  # no file chosen: browsers send an empty part
    limit = viewer.console.settings.max_upload_bytes
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        viewer.console.ctx.counters.inc("console_upload_too_large")
        raise PageError(413, viewer.t("err.photo_size", size=size_text(limit)))
    if not data:
        return None
    media_type = sniff_image(data)
    if media_type is None:
        viewer.console.ctx.counters.inc("console_upload_not_image")
        log.warning(
            "console: %s uploaded a resolve photo that is not an image (%d bytes, named %r)",
            viewer.actor,
            len(data),
            upload.filename[:100],
        )
        raise PageError(400, viewer.t("err.photo_type"))
    return Photo(data, media_type)


@router.post("/orders/{order_id}/{action}")
def act(
    request: Request,
    order_id: str,
    action: str,
    viewer: Annotated[Viewer, Depends(acting_viewer)],
    form: Annotated[FormData, Depends(posted_form)],
) -> Response:
    if action not in ACTIONS:
        raise PageError(404, viewer.t("err.not_found"))
    viewer.require(Permission.ORDERS_ACT, order_subject(order_id))
    visible_order(viewer, order_id)
    t = viewer.t

    def refuse(status: int, message: str) -> HTMLResponse:
        viewer.console.ctx.counters.inc(f"console_action_refused.{action}")
        return order_page(request, viewer, order_id, status=status, error=message)

    reason = _text(form, "reason")
    if not reason:
        return refuse(400, t("err.reason_required"))
    assignee, hours, photo = "", 0.0, None
    if action == "dispatch":
        assignee = _text(form, "assignee")
        if not _ASSIGNEE.fullmatch(assignee):
            return refuse(400, t("err.assignee_required"))
    elif action == "extend":
        try:
            hours = float(_text(form, "hours"))
        except ValueError:
            hours = -1.0
        if not 0 < hours <= MAX_EXTENSION_HOURS:
            return refuse(400, t("err.hours", max=f"{MAX_EXTENSION_HOURS:g}"))
    elif action == "resolve":
        try:
            photo = _photo(viewer, form)
        except PageError as exc:
            return refuse(exc.status, exc.message)
    try:
        perform(
            viewer.console.flow,
            viewer.db,
            order_id,
            action,
            actor=viewer.actor,
            reason=reason,
            audit=viewer.audit,
            store=viewer.console.ctx.evidence,
            assignee=assignee,
            hours=hours,
            photo=photo,
        )
    except TransitionError as exc:
        return refuse(409, t("err.refused", what=str(exc)))
    except OrderNotFound:
        raise PageError(404, t("err.not_found")) from None
    viewer.console.ctx.counters.inc(f"console_action.{action}")
    log.info("console: %s did %s on %s", viewer.actor, action, order_id)
    return RedirectResponse(f"/orders/{order_id}?done={action}", status_code=303)
