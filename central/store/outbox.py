"""The notification outbox: rows written in the same transaction as the work order, sent later.

Ingest only inserts; the notifier thread sends, so a slow mail server never delays an ack.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from central.timefmt import utc_iso

__all__ = ["channel_id", "due_notifications", "enqueue_notification", "record_attempt"]


def channel_id(url: str) -> str:
    """How the database names an Apprise URL without storing its secrets."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def enqueue_notification(
    db: Database, *, work_order_id: str, kind: str, channels: Iterable[str], title: str, body: str, now: float
) -> None:
    """One pending row per channel; enqueuing the same (order, kind) again adds nothing."""
    for channel in channels:
        db.execute(
            "INSERT OR IGNORE INTO notifications (work_order_id, kind, channel, title, body, status,"
            " attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
            [work_order_id, kind, channel, title, body, now, utc_iso(now)],
        )


def due_notifications(db: Database, now: float, limit: int = 50) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT * FROM notifications WHERE status = 'pending' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, id LIMIT ?",
            [now, limit],
        )
    )


def record_attempt(
    db: Database, row: dict[str, Any], *, ok: bool, error: str | None, now: float, retry_in: float | None
) -> str:
    """Record one delivery attempt; return the new status (sent, pending again, or failed for good)."""
    attempt = int(row["attempts"]) + 1
    if ok:
        status = "sent"
    elif retry_in is None:
        status = "failed"
    else:
        status = "pending"
    with db.atomic():
        db.table("notification_attempts").insert(
            {
                "notification_id": row["id"],
                "attempt": attempt,
                "at": utc_iso(now),
                "ok": int(ok),
                "error": error,
            }
        )
        db.execute(
            "UPDATE notifications SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ?,"
            " sent_at = ? WHERE id = ?",
            [
                status,
                attempt,
                error,
                now + (retry_in or 0.0),
                utc_iso(now) if ok else None,
                row["id"],
            ],
        )
    return status
