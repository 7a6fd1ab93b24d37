"""The notification outbox: messages written in the same transaction as the change they report, sent later.

Ingest, people's actions and the sweep only insert (central.notify.grouping groups them per
recipient and site); the notifier thread claims a due message, sends it and records the attempt,
so a slow mail server never delays an ack, and an outage of a notification service only delays.
Every attempt is a row of `notification_attempts`: the delivery log, per recipient and channel.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from central.store.transactions import immediate
from central.timefmt import utc_iso

__all__ = [
    "channel_id",
    "claim_notification",
    "delivery_log",
    "due_notifications",
    "enqueue_notification",
    "record_attempt",
    "release_claims",
]


def channel_id(url: str) -> str:
    """How the database names an Apprise URL without storing its secrets."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def enqueue_notification(
    db: Database, *, work_order_id: str, kind: str, channels: Iterable[str], title: str, body: str, now: float
) -> None:
    """One message per channel, due now, to no one in particular (a feed); the same (order, kind) again adds nothing."""
    with immediate(db):
        for channel in channels:
            key = f"|{channel}|{work_order_id}|{kind}"
            if db.execute("SELECT 1 FROM notification_items WHERE dedupe_key = ?", [key]).fetchone():
                continue
            cursor = db.execute(
                "INSERT INTO notifications (work_order_id, kind, channel, title, body, status, attempts,"
                " scheduled_at, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
                [work_order_id, kind, channel, title, body, now, now, utc_iso(now)],
            )
            db.execute(
                "INSERT INTO notification_items (notification_id, dedupe_key, channel, recipient, subject, kind,"
                " title, body, created_ts) VALUES (?, ?, ?, '', ?, ?, ?, ?, ?)",
                [cursor.lastrowid, key, channel, work_order_id, kind, title, body, now],
            )


def due_notifications(db: Database, now: float, limit: int = 50) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT * FROM notifications WHERE status = 'pending' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, id LIMIT ?",
            [now, limit],
        )
    )


def claim_notification(
    db: Database, notification_id: int, *, owner: str = "notifier", now: float | None = None
) -> dict[str, Any] | None:
    """Mark a pending message 'sending' by `owner` (a notifier's name, unique among the instances
    sharing the database) and return it as it is now; None if it is not pending.

    From here on no notice joins it (grouping appends only to pending messages), so what is
    sent is exactly what the row says.
    """
    with immediate(db):
        cursor = db.execute(
            "UPDATE notifications SET status = 'sending', claimed_by = ?, claimed_at = ?"
            " WHERE id = ? AND status = 'pending'",
            [owner, time.time() if now is None else now, notification_id],
        )
        if cursor.rowcount != 1:
            return None
        rows = list(db.query("SELECT * FROM notifications WHERE id = ?", [notification_id]))
    return rows[0]


def release_claims(db: Database, *, owner: str = "notifier", now: float | None = None, lease_s: float = 600.0) -> int:
    """Back to pending what a stopped notifier left 'sending' (sent at least once, maybe twice).

    Only `owner`'s own claims (its previous run stopped between a send and its record), claims
    older than `lease_s` (their notifier, another instance's, must be gone: a send takes seconds),
    and claims from before owners were recorded. A claim another live instance holds is left
    alone, so it does not go out twice.
    """
    stale_before = (time.time() if now is None else now) - lease_s
    with immediate(db):
        return int(
            db.execute(
                "UPDATE notifications SET status = 'pending', claimed_by = NULL, claimed_at = NULL"
                " WHERE status = 'sending' AND (claimed_by IS NULL OR claimed_by = ? OR claimed_at < ?)",
                [owner, stale_before],
            ).rowcount
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
    with immediate(db):
        db.execute(
            "INSERT INTO notification_attempts (notification_id, attempt, at, ok, error) VALUES (?, ?, ?, ?, ?)",
            [row["id"], attempt, utc_iso(now), int(ok), error],
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


def delivery_log(
    db: Database, *, recipient: str | None = None, subject: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Per notice and channel: what was queued, in which message, and every attempt to send it.

    Filter by recipient (a person id; '' for the feeds) and/or subject (a work order id or
    camera:<device>/<camera>). Newest first.
    """
    where, params = [], []
    if recipient is not None:
        where.append("i.recipient = ?")
        params.append(recipient)
    if subject is not None:
        where.append("i.subject = ?")
        params.append(subject)
    sql = (
        "SELECT i.recipient, i.channel, i.subject, i.kind, i.title AS notice, i.notification_id, n.status,"
        " n.attempts, n.sent_at, n.last_error, (SELECT json_group_array(json_object('attempt', a.attempt, 'at',"
        " a.at, 'ok', a.ok, 'error', a.error)) FROM notification_attempts a WHERE a.notification_id = n.id)"
        " AS attempts_log FROM notification_items i JOIN notifications n ON n.id = i.notification_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY i.id DESC LIMIT ?"
    )
    return list(db.query(sql, [*params, limit]))
