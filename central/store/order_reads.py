"""Reading work orders and filed event messages: by id, by status, their history, files and spots.

The filing rules that write them are central.store.work_orders (which re-exports these names, so
`from central.store.work_orders import work_order` keeps working).
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlite_utils import Database

from central.caseflow.states import OPEN_STATUSES
from central.timefmt import utc_day
from wire.messages import Manifest

__all__ = [
    "OPEN",
    "OPEN_SQL",
    "filed_message",
    "hotspots",
    "list_work_orders",
    "message_id",
    "messages_of_event",
    "new_work_order_id",
    "open_order_at",
    "order_evidence",
    "order_history",
    "order_of_event",
    "spot_at",
    "work_order",
]

OPEN = "open"  # not a status: list_work_orders' name for every status of OPEN_STATUSES
OPEN_SQL = ", ".join(f"'{s.value}'" for s in sorted(OPEN_STATUSES))  # for `status IN (...)`


def message_id(manifest_json: str) -> str:
    """The id of one signed event message: sha256 of the canonical manifest text that was signed."""
    return hashlib.sha256(manifest_json.encode()).hexdigest()


def new_work_order_id(db: Database, now: float) -> str:
    """The next id of the UTC day: WO-20261126-000001, WO-20261126-000002, ..."""
    prefix = f"WO-{utc_day(now)}-"
    row = db.execute("SELECT max(id) FROM work_orders WHERE id LIKE ? || '%'", [prefix]).fetchone()
    last = row[0] if row else None
    seq = int(last[len(prefix) :]) + 1 if last else 1
    return f"{prefix}{seq:06d}"


def _first(db: Database, sql: str, params: list[Any]) -> dict[str, Any] | None:
    """The first row of a SELECT as a dict, or None. `db.query` would wrap the read in a savepoint
    (two more statements); these run for every event filed."""
    cursor = db.execute(sql, params)
    rows = cursor.fetchall()  # to the end: no statement left open
    return dict(zip((d[0] for d in cursor.description), rows[0], strict=True)) if rows else None


def filed_message(db: Database, msg_id: str) -> dict[str, Any] | None:
    return _first(db, "SELECT * FROM events WHERE message_id = ?", [msg_id])


def messages_of_event(db: Database, event_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    if kind is None:
        return list(db.query("SELECT * FROM events WHERE event_id = ? ORDER BY at", [event_id]))
    return list(db.query("SELECT * FROM events WHERE event_id = ? AND kind = ? ORDER BY at", [event_id, kind]))


def work_order(db: Database, order_id: str) -> dict[str, Any] | None:
    return _first(db, "SELECT * FROM work_orders WHERE id = ?", [order_id])


def order_of_event(db: Database, event_id: str) -> dict[str, Any] | None:
    """The order an event's messages were filed under (the newest, should there be several)."""
    return _first(
        db,
        "SELECT w.* FROM order_events o JOIN work_orders w ON w.id = o.work_order_id"
        " WHERE o.event_id = ? ORDER BY w.opened_at DESC LIMIT 1",
        [event_id],
    )


def open_order_at(db: Database, m: Manifest) -> dict[str, Any] | None:
    """The newest open order at the message's spot (device, site, camera, zone)."""
    return _first(
        db,
        "SELECT * FROM work_orders WHERE device_id = ? AND site = ? AND camera = ? AND zone = ?"
        f" AND status IN ({OPEN_SQL}) ORDER BY opened_at DESC, id DESC LIMIT 1",
        [m.device_id, m.site, m.camera, m.zone],
    )


def spot_at(db: Database, m: Manifest) -> dict[str, Any] | None:
    """The spot the message is about: its order and recurrence counts."""
    return _first(
        db,
        "SELECT * FROM spots WHERE device_id = ? AND site = ? AND camera = ? AND zone = ?",
        [m.device_id, m.site, m.camera, m.zone],
    )


def list_work_orders(db: Database, status: str | None = None) -> list[dict[str, Any]]:
    """All orders, or those in one status; `status='open'` means any of OPEN_STATUSES."""
    if status is None:
        return list(db.query("SELECT * FROM work_orders ORDER BY opened_at, id"))
    if status == OPEN:
        return list(db.query(f"SELECT * FROM work_orders WHERE status IN ({OPEN_SQL}) ORDER BY opened_at, id"))
    return list(db.query("SELECT * FROM work_orders WHERE status = ? ORDER BY opened_at, id", [status]))


def order_history(db: Database, order_id: str) -> list[dict[str, Any]]:
    """Every change of the order, oldest first (detail is JSON text)."""
    return list(db.query("SELECT * FROM order_history WHERE work_order_id = ? ORDER BY id", [order_id]))


def order_evidence(db: Database, order_id: str) -> list[dict[str, Any]]:
    """The files of every message attached to the order: role, name, sha256, media type, stored path."""
    return list(
        db.query(
            "SELECT o.kind, o.event_id, o.message_id, o.attached_at, f.role, f.name, f.sha256, f.missing,"
            " e.media_type, e.size, e.path FROM order_events o JOIN event_files f ON f.message_id = o.message_id"
            " LEFT JOIN evidence_files e ON e.sha256 = f.sha256 WHERE o.work_order_id = ?"
            " ORDER BY o.attached_at, o.message_id, f.role",
            [order_id],
        )
    )


def hotspots(db: Database, limit: int = 20) -> list[dict[str, Any]]:
    """The spots garbage comes back to most often."""
    return list(
        db.query("SELECT * FROM spots WHERE recurrences > 0 ORDER BY recurrences DESC, orders DESC LIMIT ?", [limit])
    )
