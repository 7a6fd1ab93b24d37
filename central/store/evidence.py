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
    """Insert the row unless the file is already recorded (the first announcement wins)."""
    db.execute(
        "INSERT OR IGNORE INTO evidence_files (sha256, size, media_type, path, device_id, event_id, role,"
        " name, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [sha256, size, media_type, path, device_id, event_id, role, name, utc_iso(now)],
    )
