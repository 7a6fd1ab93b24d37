"""The API's one door into work orders and the case flow.

Everything the API reads or changes about orders goes through this module. The changes are the
case flow's, the same calls the console makes (central.console.actions): `act_on_order` is
`CaseFlow.act`, or `CaseFlow.extend` for 'extend' (statuses, deadlines, escalation, notices, the
order's history and the audit row, in one transaction), `file_report` is `CaseFlow.report` plus
this module's Open311 intake record and the photo. The reads are central.api.order_views',
re-exported here.

open311_reports is this module's own table: what an Open311 client sent beside the order
(contact details, its device and account ids, the photo, who filed it), keyed by the order id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlite_utils import Database

from central.api.order_views import (
    EvidenceRef,
    OrderView,
    evidence_orders,
    evidence_sites,
    get_order,
    list_orders,
    order_evidence,
)
from central.audit.hook import AuditHook
from central.caseflow.acknowledge import ACKNOWLEDGEABLE, acknowledge
from central.caseflow.flow import CaseFlow
from central.caseflow.flow import OrderNotFound as CaseFlowOrderNotFound
from central.caseflow.hooks import order_subject
from central.caseflow.states import CLOCK_RUNNING, Status, TransitionError
from central.caseflow.states import allowed_actions as caseflow_allowed_actions
from central.store.evidence import record_evidence_file
from central.store.transactions import immediate
from central.timefmt import utc_iso

__all__ = [
    "ACTIONS",
    "CLOSED_STATES",
    "EXTEND",
    "ORDER_STATES",
    "ActionRefused",
    "EvidenceRef",
    "OrderNotFound",
    "OrderView",
    "ReportIn",
    "StoredPhoto",
    "act_on_order",
    "allowed_actions",
    "ensure_schema",
    "evidence_orders",
    "evidence_sites",
    "file_report",
    "get_order",
    "list_orders",
    "order_evidence",
]

ORDER_STATES: tuple[str, ...] = tuple(s.value for s in Status)
CLOSED_STATES: frozenset[str] = frozenset({Status.CLOSED.value, Status.REJECTED.value})
# More working time on a running deadline, asked and approved at once (CaseFlow.extend), as at the console.
EXTEND = "extend"
# "Seen, on it": registers a reported order, or records who took one being worked in hand
# (central.caseflow.acknowledge), as at the console.
ACKNOWLEDGE = "acknowledge"
# What a person may do through the API: the case flow's moves, extend and acknowledge; 'report'
# is POST /open311/v2/requests.json.
ACTIONS: tuple[str, ...] = (
    "register", "dispatch", "start", "resolve", "verify", "close", "reject", "reopen", EXTEND, ACKNOWLEDGE,
)  # fmt: skip

_STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS open311_reports (
    order_id TEXT PRIMARY KEY,
    service_code TEXT NOT NULL,
    lat REAL,
    long REAL,
    address TEXT,
    address_id TEXT,
    description TEXT NOT NULL,
    media_url TEXT,                   -- as given; never fetched (the central makes no requests for a client)
    photo_sha256 TEXT,                -- the uploaded photo, in the evidence store
    contact TEXT NOT NULL,            -- JSON: email, first_name, last_name, phone (as given)
    reporter_device TEXT,
    reporter_account TEXT,
    filed_by TEXT NOT NULL,           -- the actor (the integration's token)
    filed_at TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS open311_reports_photo ON open311_reports (photo_sha256)",
)


def create_tables(db: Database) -> None:
    """Create the tables if missing, one statement at a time (executescript would commit a
    caller's transaction), so that this also runs as a numbered migration (central/store/migrations.py)."""
    for statement in _STATEMENTS:
        db.execute(statement)


def ensure_schema(db: Database) -> None:
    """Create the Open311 intake table if missing."""
    with immediate(db):
        create_tables(db)


class OrderNotFound(LookupError):
    pass


class ActionRefused(ValueError):
    """The case flow does not allow this move now; the text says why and what is allowed."""


@dataclass(frozen=True)
class ReportIn:
    """A resident's or a hotline's report, checked by the API (location present, sizes capped)."""

    service_code: str
    lat: float | None
    long: float | None
    address: str | None
    address_id: str | None
    description: str
    media_url: str | None = None
    contact: dict[str, str] = field(default_factory=dict)
    reporter_device: str | None = None
    reporter_account: str | None = None


@dataclass(frozen=True)
class StoredPhoto:
    """A photo already in the evidence store (the API sniffed its type from its bytes)."""

    sha256: str
    size: int
    media_type: str
    path: str  # relative to data_dir/evidence, as the content store names it


# -- reads (central.api.order_views) and what the case flow allows now -----------------------------


def allowed_actions(order: OrderView) -> list[str]:
    """The API's actions allowed now: the case flow's moves, then extend while the deadline runs,
    then acknowledge while there is something to acknowledge."""
    moves: list[str] = [a.value for a in caseflow_allowed_actions(order.state) if a.value in ACTIONS]
    if Status(order.state) in CLOCK_RUNNING:
        moves.append(EXTEND)
    if Status(order.state) in ACKNOWLEDGEABLE:
        moves.append(ACKNOWLEDGE)
    return moves


# -- changes ----------------------------------------------------------------------------------------


def act_on_order(
    flow: CaseFlow,
    db: Database,
    order_id: str,
    action: str,
    *,
    actor: str,
    reason: str,
    assignee: str | None,
    audit: AuditHook,
    hours: float | None = None,
) -> OrderView:
    """One case-flow action (CaseFlow.act; extend: CaseFlow.extend, `hours` more working time;
    acknowledge: central.caseflow.acknowledge); ActionRefused if the case flow does not allow it now."""
    if action not in ACTIONS:
        raise ActionRefused(f"unknown action {action[:40]!r}: use one of {', '.join(ACTIONS)}")
    try:
        if action == EXTEND:
            if hours is None:
                raise ActionRefused("extend needs hours: the working hours to add")
            flow.extend(db, order_id, hours=hours, actor=actor, reason=reason, audit=audit)
        elif action == ACKNOWLEDGE:
            acknowledge(flow, db, order_id, actor=actor, reason=reason, audit=audit)
        else:
            flow.act(db, order_id, action, actor=actor, reason=reason, assignee=assignee, audit=audit)
    except CaseFlowOrderNotFound:
        raise OrderNotFound(order_id) from None
    except TransitionError as exc:
        raise ActionRefused(str(exc)) from None
    view = get_order(db, order_id)
    assert view is not None
    return view


def file_report(
    flow: CaseFlow,
    db: Database,
    report: ReportIn,
    *,
    site: str,
    camera: str,
    photo: StoredPhoto | None,
    actor: str,
    audit: AuditHook,
    now: float,
) -> OrderView:
    """File a report as a 'reported' order (CaseFlow.report), with its intake record and photo, at once."""
    with immediate(db):
        order_id = flow.report(
            db,
            site=site,
            actor=actor,
            description=report.description,
            camera=camera,
            event_code=report.service_code,
            lat=report.lat,
            lon=report.long,
            address=report.address or "",
            audit=audit,
        )
        if photo is not None:
            record_evidence_file(
                db,
                sha256=photo.sha256,
                size=photo.size,
                media_type=photo.media_type,
                path=photo.path,
                device_id="",
                event_id=order_id,
                role="report_photo",
                name="photo" + {"image/jpeg": ".jpg", "image/png": ".png"}.get(photo.media_type, ".webp"),
                now=now,
            )
            # The photo notifications attach and city tools show, as a camera's snapshot is.
            db.execute("UPDATE work_orders SET snapshot_sha256 = ? WHERE id = ?", [photo.sha256, order_id])
        db.table("open311_reports").insert(
            {
                "order_id": order_id,
                "service_code": report.service_code,
                "lat": report.lat,
                "long": report.long,
                "address": report.address,
                "address_id": report.address_id,
                "description": report.description,
                "media_url": report.media_url,
                "photo_sha256": None if photo is None else photo.sha256,
                "contact": json.dumps(report.contact, ensure_ascii=False),
                "reporter_device": report.reporter_device,
                "reporter_account": report.reporter_account,
                "filed_by": actor,
                "filed_at": utc_iso(now),
            }
        )
        audit(
            actor,
            "open311.request",
            order_subject(order_id),
            "",
            {
                "service_code": report.service_code,
                "photo_sha256": None if photo is None else photo.sha256,
                "site": site,
                "camera": camera,
            },
        )
    view = get_order(db, order_id)
    assert view is not None
    return view
