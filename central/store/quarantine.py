"""What the central refused: one row per distinct (reason, topic, payload), counted in `times`."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlite_utils import Database

from central.timefmt import utc_iso

__all__ = ["list_quarantine", "record_quarantine"]


def record_quarantine(
    db: Database,
    *,
    reason: str,
    detail: str,
    topic: str,
    device_id: str | None,
    payload_sha256: str,
    payload_bytes: int,
    saved: bool,
    now: float,
) -> int:
    """Insert or count a refusal; return how many times it has been seen."""
    fp = hashlib.sha256(f"{reason}\0{topic}\0{payload_sha256}".encode()).hexdigest()
    stamp = utc_iso(now)
    with db.atomic():
        db.execute(
            "INSERT INTO quarantine (fingerprint, reason, detail, topic, device_id, payload_bytes,"
            " payload_sha256, saved, first_at, last_at, times) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"
            " ON CONFLICT (fingerprint) DO UPDATE SET times = times + 1, last_at = excluded.last_at,"
            " saved = max(saved, excluded.saved)",
            [fp, reason, detail, topic, device_id, payload_bytes, payload_sha256, int(saved), stamp, stamp],
        )
        row = db.execute("SELECT times FROM quarantine WHERE fingerprint = ?", [fp]).fetchone()
    return int(row[0])


def list_quarantine(db: Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM quarantine ORDER BY id"))
