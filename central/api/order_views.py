"""The API's reads of work orders: the order as the API shows it, its evidence, and which sites
and orders a file belongs to.

central.api.orders_adapter re-exports these (it is the API's one door into orders); the reads
work on the store's tables (work_orders, order_history, order_events, event_files,
evidence_files) and on the adapter's open311_reports.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlite_utils import Database

from central.retention.purged import purged_files
from central.store.work_orders import order_evidence as store_order_evidence

__all__ = [
    "EvidenceRef",
    "OrderView",
    "evidence_orders",
    "evidence_sites",
    "get_order",
    "list_orders",
    "order_evidence",
]


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
    purged_at: str | None = None  # deleted by the retention sweep then (the row stays)

    def as_dict(self) -> dict[str, Any]:
        gone = self.missing or self.purged_at is not None
        return {**asdict(self), "download": None if gone else f"/api/v1/evidence/{self.sha256}"}


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
    purged = purged_files(db, refs)
    return [replace(ref, purged_at=purged[sha].purged_at) if sha in purged else ref for sha, ref in refs.items()]


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
