"""What the console's pages read: dashboard counts, cameras, the filtered order list, one order.

Every read takes `sites`: the sites the viewer may see (None: all of them). Nothing here writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from central.api.orders_adapter import evidence_sites
from central.audit.chain import AuditRow
from central.caseflow.states import CLOCK_RUNNING, OPEN_STATUSES
from central.export.bundle import order_subjects
from central.store.order_counts import count_orders_by, order_sites
from central.store.outbox import delivery_log
from central.store.work_orders import order_evidence
from central.timefmt import utc_iso

__all__ = [
    "OPEN_FILTER",
    "DashboardCounts",
    "EvidenceItem",
    "OrderFilter",
    "camera_rows",
    "count_orders",
    "dashboard_counts",
    "evidence_read_rows",
    "file_sites",
    "list_orders",
    "order_audit_rows",
    "order_evidence_items",
    "order_notifications",
    "site_choices",
]

OPEN_FILTER = "open"  # the status filter for every status of OPEN_STATUSES
_OPEN_SET = frozenset(s.value for s in OPEN_STATUSES)
_OPEN = json.dumps(sorted(_OPEN_SET))
_RUNNING = json.dumps(sorted(s.value for s in CLOCK_RUNNING))
_AUDIT_COLUMNS = "seq, at, actor, action, subject, reason, detail, prev_sha256, sha256"
_LIST_COLUMNS = "id, status, site, camera, zone, device_id, opened_at, due_at, due_ts, assignee, source"


@dataclass(frozen=True)
class DashboardCounts:
    open: int
    overdue: int
    due_soon: int


@dataclass(frozen=True)
class OrderFilter:
    """The order list's filters, already checked (see central.console.forms.parse_order_filter)."""

    status: str | None = None  # a Status value or OPEN_FILTER
    site: str | None = None
    camera: str | None = None
    date_from: date | None = None  # local days, inclusive
    date_to: date | None = None
    overdue: bool = False
    page: int = 1


def _sites_clause(sites: frozenset[str] | None, column: str = "site") -> tuple[str, list[Any]]:
    if sites is None:
        return "1", []
    return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(sorted(sites))]


def dashboard_counts(db: Database, sites: frozenset[str] | None, *, now: float, due_soon_s: float) -> DashboardCounts:
    where, params = _sites_clause(sites)
    # Three range counts over the (status, due_ts, site) index: no order row is read.
    base = f"SELECT count(*) FROM work_orders WHERE {where} AND status IN (SELECT value FROM json_each(?))"
    open_ = db.execute(base, [*params, _OPEN]).fetchone()[0]
    overdue = db.execute(base + " AND due_ts < ?", [*params, _RUNNING, now]).fetchone()[0]
    soon_params = [*params, _RUNNING, now, now + due_soon_s]
    soon = db.execute(base + " AND due_ts >= ? AND due_ts < ?", soon_params).fetchone()[0]
    return DashboardCounts(open=int(open_), overdue=int(overdue), due_soon=int(soon))


def camera_rows(db: Database, sites: frozenset[str] | None) -> list[dict[str, Any]]:
    """Every camera a box reported (and every box that never did), with its state and when last seen."""
    where, params = _sites_clause(sites, "d.site")
    return list(
        db.query(
            "SELECT c.device_id, c.camera, c.online, c.since, c.updated_at, d.site, d.last_seen"
            " FROM cameras c LEFT JOIN devices d ON d.device_id = c.device_id"
            f" WHERE {where}"
            " UNION ALL SELECT d.device_id, NULL, 0, NULL, NULL, d.site, d.last_seen FROM devices d"
            f" WHERE NOT EXISTS (SELECT 1 FROM cameras c WHERE c.device_id = d.device_id) AND {where}"
            " ORDER BY 6, 1, 2",
            [*params, *params],
        )
    )


def site_choices(db: Database, sites: frozenset[str] | None) -> list[str]:
    """The sites the order list's filter offers: the viewer's, or every site a device or order has."""
    if sites is not None:
        return sorted(sites)
    # Not SELECT DISTINCT site FROM work_orders: that reads every order (most of a second at a million).
    devices = {str(r[0]) for r in db.execute("SELECT site FROM devices WHERE site IS NOT NULL") if r[0]}
    return sorted(devices | set(order_sites(db)))


def _day_start_utc(day: date, tz: ZoneInfo) -> str:
    return utc_iso(datetime.combine(day, time(0), tzinfo=tz).timestamp())


def _order_where(f: OrderFilter, sites: frozenset[str] | None, *, now: float, tz: ZoneInfo) -> tuple[str, list[Any]]:
    where, params = [], []
    clause, values = _sites_clause(sites)
    where.append(clause)
    params += values
    if f.status == OPEN_FILTER:
        where.append("status IN (SELECT value FROM json_each(?))")
        params.append(_OPEN)
    elif f.status is not None:
        where.append("status = ?")
        params.append(f.status)
    if f.site is not None:
        where.append("site = ?")
        params.append(f.site)
    if f.camera is not None:
        where.append("camera = ?")
        params.append(f.camera)
    # opened_at is RFC 3339 UTC text with fixed width: comparing text compares instants.
    if f.date_from is not None:
        where.append("opened_at >= ?")
        params.append(_day_start_utc(f.date_from, tz))
    if f.date_to is not None:
        where.append("opened_at < ?")
        params.append(_day_start_utc(f.date_to + timedelta(days=1), tz))
    if f.overdue:
        where.append("status IN (SELECT value FROM json_each(?)) AND due_ts < ?")
        params += [_RUNNING, now]
    return " AND ".join(where), params


def count_orders(db: Database, f: OrderFilter, sites: frozenset[str] | None, *, now: float, tz: ZoneInfo) -> int:
    if f.camera is None and f.date_from is None and f.date_to is None and not f.overdue:
        # Only statuses and sites: the per-(site, status) counts the triggers keep answer at once,
        # where COUNT(*) over "every closed order" of a large city reads most of an index.
        statuses = _OPEN_SET if f.status == OPEN_FILTER else None if f.status is None else {f.status}
        wanted = sites
        if f.site is not None:
            wanted = frozenset({f.site}) if sites is None else frozenset({f.site}) & sites
        return count_orders_by(db, statuses=statuses, sites=wanted)
    where, params = _order_where(f, sites, now=now, tz=tz)
    return int(db.execute(f"SELECT count(*) FROM work_orders WHERE {where}", params).fetchone()[0])


def list_orders(
    db: Database, f: OrderFilter, sites: frozenset[str] | None, *, now: float, tz: ZoneInfo, limit: int, offset: int
) -> list[dict[str, Any]]:
    """One page of matching orders, newest first."""
    where, params = _order_where(f, sites, now=now, tz=tz)
    # The page's rowids come from an index alone (opened_at, rowid); only those rows are read.
    return list(
        db.query(
            f"SELECT {_LIST_COLUMNS} FROM work_orders WHERE rowid IN (SELECT rowid FROM work_orders WHERE {where}"
            " ORDER BY opened_at DESC, rowid DESC LIMIT ? OFFSET ?) ORDER BY opened_at DESC, rowid DESC",
            [*params, limit, offset],
        )
    )


# -- one order -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceItem:
    sha256: str
    role: str  # clip | snapshot | snapshot_boxes | after_snapshot | resolve_photo | report_photo | ...
    name: str
    media_type: str | None
    size: int | None
    missing: bool  # filed without it (the edge dropped it) or not in the store's table
    signed: bool  # listed in a device-signed manifest
    uploaded_by: str | None = None


def order_evidence_items(db: Database, order_id: str) -> list[EvidenceItem]:
    """The order's files, each once: the events' (signed) first, then photos people uploaded."""
    items: dict[str, EvidenceItem] = {}
    for r in order_evidence(db, order_id):
        if r["sha256"] in items:
            continue
        items[r["sha256"]] = EvidenceItem(
            sha256=r["sha256"],
            role=r["role"],
            name=r["name"],
            media_type=r["media_type"],
            size=r["size"],
            missing=bool(r["missing"]) or r["media_type"] is None,
            signed=True,
        )
    uploads = db.execute(
        "SELECT sha256, 'resolve_photo', media_type, size, uploaded_by FROM console_order_photos WHERE order_id = ?"
        " UNION ALL SELECT f.sha256, f.role, f.media_type, f.size, o.filed_by FROM open311_reports o"
        " JOIN evidence_files f ON f.sha256 = o.photo_sha256 WHERE o.order_id = ?",
        [order_id, order_id],
    )
    for sha, role, media_type, size, by in uploads:
        if sha not in items:
            items[sha] = EvidenceItem(sha, role, role, media_type, size, False, False, by)
    return list(items.values())


def file_sites(db: Database, sha256: str) -> frozenset[str]:
    """The sites of the orders and events a file belongs to (who may read it is decided by site)."""
    rows = db.execute(
        "SELECT w.site FROM console_order_photos p JOIN work_orders w ON w.id = p.order_id WHERE p.sha256 = ?",
        [sha256],
    )
    return evidence_sites(db, sha256) | {str(r[0]) for r in rows}


def _audit_rows(db: Database, subjects: Sequence[str], limit: int | None = None) -> list[AuditRow]:
    """The last `limit` rows (all: None) about these subjects, oldest first."""
    newest = (
        f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE subject IN (SELECT value FROM json_each(?))"
        " ORDER BY seq DESC LIMIT ?"
    )
    params = [json.dumps(list(subjects)), -1 if limit is None else limit]  # LIMIT -1: no limit
    return [AuditRow(**r) for r in db.query(f"SELECT * FROM ({newest}) ORDER BY seq", params)]


def order_audit_rows(db: Database, order_id: str) -> list[AuditRow]:
    """The order's own rows (status changes, acknowledgements, extensions, exports), oldest first."""
    return _audit_rows(db, order_subjects(order_id))


def evidence_read_rows(db: Database, sha256s: Sequence[str], limit: int = 50) -> list[AuditRow]:
    """The latest reads (and refused reads) of these files, oldest first."""
    return _audit_rows(db, [f"evidence:{sha}" for sha in sha256s], limit)


def order_notifications(db: Database, order_id: str, limit: int = 200) -> list[dict[str, Any]]:
    return delivery_log(db, subject=order_id, limit=limit)
