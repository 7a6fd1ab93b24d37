"""What a supervisor (or an admin) does to an order from the console, through the case flow.

Each action is one transaction with its audit rows (actor and reason) and the notices it causes:
- acknowledge: a reported order is registered (立案); an order being worked is acknowledged
  (an audit row and a history row, no status change; central.caseflow.acknowledge, as the API);
- dispatch: sent to an assignee, or reassigned (dispatch again);
- extend: more working hours on a running deadline (asked and approved by the same person);
- resolve: done, with a note and optionally a photo (kept in the evidence store);
- reject: not a case: a false positive, with the reason.
The case flow's TransitionError (not allowed now) and OrderNotFound pass through to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from central.audit.chain import AuditTrail
from central.caseflow.acknowledge import ACKNOWLEDGEABLE, acknowledge
from central.caseflow.flow import MAX_EXTENSION_HOURS, CaseFlow
from central.caseflow.hooks import order_subject
from central.caseflow.states import CLOCK_RUNNING, TRANSITIONS, Action, Status, TransitionError
from central.evidence_store import ContentStore
from central.store.evidence import record_evidence_file
from central.store.transactions import immediate
from central.timefmt import utc_iso

__all__ = ["ACTIONS", "MAX_EXTENSION_HOURS", "Photo", "available_actions", "perform"]

ACTIONS = ("acknowledge", "dispatch", "extend", "resolve", "reject")
_EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


@dataclass(frozen=True)
class Photo:
    """An uploaded photo, already checked to be an image of an allowed type and size."""

    data: bytes
    media_type: str


def available_actions(status: str) -> list[str]:
    """The console's actions that make sense for an order in `status`, in the forms' order."""
    try:
        s = Status(status)
    except ValueError:
        return []
    offered = {
        "acknowledge": s in ACKNOWLEDGEABLE,
        "dispatch": (s, Action.DISPATCH) in TRANSITIONS,
        "extend": s in CLOCK_RUNNING,
        "resolve": (s, Action.RESOLVE) in TRANSITIONS,
        "reject": (s, Action.REJECT) in TRANSITIONS,
    }
    return [a for a in ACTIONS if offered[a]]


def _resolve(
    flow: CaseFlow,
    db: Database,
    order_id: str,
    actor: str,
    note: str,
    photo: Photo | None,
    store: ContentStore,
    audit: AuditTrail,
) -> None:
    now = flow.clock()
    # The photo's bytes go to the content store first (idempotent, by hash); its rows commit with
    # the status change, or not at all.
    sha = store.put_bytes(photo.data) if photo is not None else None
    with immediate(db):
        flow.act(db, order_id, Action.RESOLVE, actor=actor, reason=note, audit=audit)
        if photo is None or sha is None:
            return
        record_evidence_file(
            db,
            sha256=sha,
            size=len(photo.data),
            media_type=photo.media_type,
            path=store.relative_path(sha),
            device_id="",
            event_id=order_id,
            role="resolve_photo",
            name="resolve" + _EXT.get(photo.media_type, ".bin"),
            now=now,
        )
        db.execute(
            "INSERT OR IGNORE INTO console_order_photos (order_id, sha256, media_type, size, uploaded_by,"
            " uploaded_at) VALUES (?, ?, ?, ?, ?, ?)",
            [order_id, sha, photo.media_type, len(photo.data), actor, utc_iso(now)],
        )
        audit(
            actor,
            "order.resolve_photo",
            order_subject(order_id),
            note,
            {"sha256": sha, "size": len(photo.data), "media_type": photo.media_type},
        )


def perform(
    flow: CaseFlow,
    db: Database,
    order_id: str,
    action: str,
    *,
    actor: str,
    reason: str,
    audit: AuditTrail,
    store: ContentStore,
    assignee: str = "",
    hours: float = 0.0,
    photo: Photo | None = None,
) -> None:
    """Do one console action (inputs already checked: a reason, an assignee, hours in range)."""
    if action == "acknowledge":
        acknowledge(flow, db, order_id, actor=actor, reason=reason, audit=audit)
    elif action == "dispatch":
        flow.act(db, order_id, Action.DISPATCH, actor=actor, reason=reason, assignee=assignee, audit=audit)
    elif action == "extend":
        flow.extend(db, order_id, hours=hours, actor=actor, reason=reason, audit=audit)
    elif action == "resolve":
        _resolve(flow, db, order_id, actor, reason, photo, store, audit)
    elif action == "reject":
        flow.act(db, order_id, Action.REJECT, actor=actor, reason=reason, audit=audit)
    else:
        raise TransitionError(f"unknown action {action[:40]!r}")
