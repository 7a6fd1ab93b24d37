"""The API's one door into work orders and the case flow.

Everything the API reads or changes about orders goes through this module. The changes are the
case flow's: `act_on_order` is `CaseFlow.act` (statuses, deadlines, escalation, notices, the
order's history and the audit row, in one transaction), `file_report` is `CaseFlow.report` plus
this module's Open311 intake record and the photo. The reads work on the store's tables
(work_orders, order_history, order_events, event_files, evidence_files).

open311_reports is this module's own table: what an Open311 client sent beside the order
(contact details, its device and account ids, the photo, who filed it), keyed by the order id.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlite_utils import Database

from central.audit.hook import AuditHook
from central.caseflow.flow import CaseFlow
from central.caseflow.flow import OrderNotFound as CaseFlowOrderNotFound
from central.caseflow.states import Status, TransitionError
from central.caseflow.states import allowed_actions as caseflow_allowed_actions
from central.store.evidence import record_evidence_file
from central.store.transactions import immediate
from central.store.work_orders import order_evidence as store_order_evidence
from central.timefmt import utc_iso

__all__ = [
    "ACTIONS",
    "CLOSED_STATES",
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
# What a person may do through the API; 'report' is POST /open311/v2/requests.json.
ACTIONS: tuple[str, ...] = ("register", "dispatch", "start", "resolve", "verify", "close", "reject", "reopen")

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
class OrderView:
    id: str
    state: str
    event_code: str
    source: str  # 'camera' | 'report'
    site: str
    camera: str | None
    zone: str | None
    device_id: str | None
    opened_at: str
    updated_at: str
    due_at: str | None
    closed_at: str | None
    lat: float | None = None
    long: float | None = None
    address: str | None = None
    description: str | None = None
    assignee: str | None = None
    last_reason: str | None = None
    event_count: int = 0
    media_sha256: str | None = None  # the photo a city tool shows: the report's photo, else a snapshot

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvidenceRef:
    sha256: str
    role: str
    name: str
    media_type: str | None
    size: int | None
    event_id: str | None
    missing: bool  # not in the store: the edge declared it dropped

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "download": None if self.missing else f"/api/v1/evidence/{self.sha256}"}


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


# -- reads ------------------------------------------------------------------------------------------

_SELECT = """
SELECT w.*, r.photo_sha256 AS r_photo,
       (SELECT h.reason FROM order_history h WHERE h.work_order_id = w.id AND h.reason != ''
        ORDER BY h.id DESC LIMIT 1) AS last_reason
FROM work_orders w LEFT JOIN open311_reports r ON r.order_id = w.id
"""


def _first_snapshot(db: Database, order_id: str) -> str | None:
    row = db.execute(
        "SELECT ef.sha256 FROM order_events oe JOIN event_files ef ON ef.message_id = oe.message_id"
        " WHERE oe.work_order_id = ? AND ef.role = 'snapshot' AND ef.missing = 0"
        " ORDER BY oe.attached_at, ef.name LIMIT 1",
        [order_id],
    ).fetchone()
    return str(row[0]) if row else None


def _view(db: Database, row: dict[str, Any]) -> OrderView:
    media = row["r_photo"] or row.get("snapshot_sha256") or _first_snapshot(db, row["id"])
    return OrderView(
        id=row["id"],
        state=row["status"],
        event_code=row["event_code"],
        source=row.get("source") or "camera",
        site=row["site"],
        camera=row["camera"] or None,
        zone=row["zone"] or None,
        device_id=row["device_id"] or None,
        opened_at=row["opened_at"],
        updated_at=row["updated_at"],
        due_at=row["due_at"],
        closed_at=row["closed_at"],
        lat=row.get("lat"),
        long=row.get("lon"),
        address=row.get("address") or None,
        description=row.get("description") or None,
        assignee=row.get("assignee"),
        last_reason=row["last_reason"],
        event_count=row["event_count"],
        media_sha256=media,
    )


def get_order(db: Database, order_id: str) -> OrderView | None:
    rows = list(db.query(_SELECT + " WHERE w.id = ?", [order_id]))
    return _view(db, rows[0]) if rows else None


def list_orders(
    db: Database,
    *,
    sites: frozenset[str] | None = None,
    states: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    event_codes: Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 100,
    offset: int = 0,
    newest_first: bool = False,
) -> list[OrderView]:
    """Orders matching every filter given. `sites` None: every site; `since`/`until`: opened_at bounds (UTC text)."""
    where: list[str] = []
    params: list[Any] = []
    filters = (("w.site", sites), ("w.status", states), ("w.id", ids), ("w.event_code", event_codes))
    for column, values in filters:
        if values is None:
            continue
        if not values:
            return []
        where.append(f"{column} IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(values)))
    if since is not None:
        where.append("w.opened_at >= ?")
        params.append(since)
    if until is not None:
        where.append("w.opened_at <= ?")
        params.append(until)
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY w.opened_at DESC, w.id DESC" if newest_first else " ORDER BY w.opened_at, w.id"
    sql += " LIMIT ? OFFSET ?"
    params += [limit, offset]
    return [_view(db, r) for r in db.query(sql, params)]


def allowed_actions(order: OrderView) -> list[str]:
    return [a.value for a in caseflow_allowed_actions(order.state) if a.value in ACTIONS]


def order_evidence(db: Database, order_id: str) -> list[EvidenceRef]:
    """The order's files (each once, in the order they came), then a report's photo."""
    refs: dict[str, EvidenceRef] = {}
    for r in store_order_evidence(db, order_id):
        if r["sha256"] not in refs:
            missing = bool(r["missing"]) or r["media_type"] is None
            refs[r["sha256"]] = EvidenceRef(
                r["sha256"], r["role"], r["name"], r["media_type"], r["size"], r["event_id"], missing
            )
    for r in db.query(
        "SELECT f.sha256, f.role, f.name, f.media_type, f.size FROM open311_reports o"
        " JOIN evidence_files f ON f.sha256 = o.photo_sha256 WHERE o.order_id = ?",
        [order_id],
    ):
        refs.setdefault(
            r["sha256"], EvidenceRef(r["sha256"], r["role"], r["name"], r["media_type"], r["size"], None, False)
        )
    return list(refs.values())


def evidence_sites(db: Database, sha256: str) -> frozenset[str]:
    """The sites of the events, orders and devices a file belongs to (who may read it is decided by site)."""
    rows = db.execute(
        "SELECT e.site FROM event_files f JOIN events e ON e.message_id = f.message_id WHERE f.sha256 = ?"
        " UNION SELECT w.site FROM open311_reports o JOIN work_orders w ON w.id = o.order_id WHERE o.photo_sha256 = ?"
        " UNION SELECT d.site FROM evidence_files f JOIN devices d ON d.device_id = f.device_id"
        " WHERE f.sha256 = ? AND d.site IS NOT NULL",
        [sha256, sha256, sha256],
    )
    return frozenset(str(r[0]) for r in rows)


def evidence_orders(db: Database, sha256: str) -> list[str]:
    rows = db.execute(
        "SELECT oe.work_order_id FROM event_files f JOIN order_events oe ON oe.message_id = f.message_id"
        " WHERE f.sha256 = ? UNION SELECT order_id FROM open311_reports WHERE photo_sha256 = ? ORDER BY 1",
        [sha256, sha256],
    )
    return [str(r[0]) for r in rows]


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
) -> OrderView:
    """One case-flow action (CaseFlow.act); ActionRefused if the case flow does not allow it now."""
    if action not in ACTIONS:
        raise ActionRefused(f"unknown action {action[:40]!r}: use one of {', '.join(ACTIONS)}")
    try:
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
            order_id,
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
