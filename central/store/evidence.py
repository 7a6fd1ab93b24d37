"""Rows for stored evidence files (the bytes live in the content store)."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from central.timefmt import utc_iso

__all__ = ["evidence_file", "record_evidence_file"]


def evidence_file(db: Database, sha256: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM evidence_files WHERE sha256 = ?", [sha256]))
    return rows[0] if rows else None


def record_evidence_file(
    db: Database,
    *,
    sha256: str,
    size: int,
    media_type: str,
    path: str,
    device_id: str,
    event_id: str,
    role: str,
    name: str,
    now: float,
) -> None:
    """Insert the row unless the file is already recorded (the first announcement wins).

    A file the retention sweep purged and that is stored again (a device re-sent it) is back:
    its row is no longer purged and counts as stored now (the retention rule starts over for a
    file of no order; for an order's file the order's times decide, as before).
    """
    stamp = utc_iso(now)
    db.execute(
        "INSERT INTO evidence_files (sha256, size, media_type, path, device_id, event_id, role, name, stored_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO UPDATE SET purged_at = NULL,"
        " purge_reason = NULL, unlink_pending = 0, stored_at = excluded.stored_at"
        " WHERE evidence_files.purged_at IS NOT NULL",
        [sha256, size, media_type, path, device_id, event_id, role, name, stamp],
    )
