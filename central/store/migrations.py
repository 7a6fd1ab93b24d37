"""Schema migrations: numbered functions applied in order when a database is opened.

`schema_version` holds one row per applied migration. `migrate` takes SQLite's write lock first
(BEGIN IMMEDIATE), so the threads and processes that open the file at the same moment apply each
migration exactly once; each migration commits together with its row. Migration 1 is the schema
of the first release, written so that it also adopts a file created before versions were kept.
Add a migration by appending a function to MIGRATIONS; never change one that has shipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from central.store.transactions import immediate

__all__ = ["MIGRATIONS", "Migration", "migrate", "schema_version"]

log = logging.getLogger("central.store")

Migration = Callable[[Database], None]


def _run(db: Database, statements: Sequence[str]) -> None:
    for sql in statements:
        db.execute(sql)


def _add_columns(db: Database, table: str, columns: Sequence[tuple[str, str]]) -> None:
    """ALTER TABLE ... ADD COLUMN for each (name, declaration) the table lacks."""
    have = {row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()}
    for name, decl in columns:
        if name not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")


def _ts(iso: Any) -> float | None:
    return datetime.fromisoformat(str(iso)).timestamp() if iso else None


# -- 1: the first release ---------------------------------------------------------------------------

_V1 = (
    """CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    site TEXT,
    key_id TEXT,
    online INTEGER NOT NULL DEFAULT 0,
    last_seen TEXT,
    version TEXT,
    cameras TEXT,
    last_stats TEXT
)""",
    # One row per signed event message. An exposure event (event_id) sends several (confirmed,
    # updates, cleared); message_id (sha256 of the signed manifest bytes) tells them apart.
    """CREATE TABLE IF NOT EXISTS events (
    message_id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    site TEXT NOT NULL,
    camera TEXT NOT NULL,
    zone TEXT NOT NULL,
    kind TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    at TEXT NOT NULL,
    clock_synced INTEGER NOT NULL,
    detections INTEGER NOT NULL,
    manifest TEXT NOT NULL,          -- RFC 8785 bytes exactly as signed
    signature TEXT NOT NULL,
    key_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    work_order_id TEXT
)""",
    "CREATE INDEX IF NOT EXISTS events_by_event ON events (event_id, kind)",
    """CREATE TABLE IF NOT EXISTS evidence_files (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    path TEXT NOT NULL,              -- relative to data_dir/evidence
    device_id TEXT NOT NULL,
    event_id TEXT NOT NULL,          -- the event that announced it first (from the file's init)
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    stored_at TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS event_files (
    message_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    missing INTEGER NOT NULL DEFAULT 0,  -- 1: filed without it, the edge declared it dropped
    PRIMARY KEY (message_id, sha256)
)""",
    """CREATE TABLE IF NOT EXISTS work_orders (
    id TEXT PRIMARY KEY,             -- WO-YYYYMMDD-NNNNNN (UTC day it was opened)
    event_code TEXT NOT NULL,
    device_id TEXT NOT NULL,
    site TEXT NOT NULL,
    camera TEXT NOT NULL,
    zone TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    verified_at TEXT,
    closed_at TEXT,
    updated_at TEXT NOT NULL,
    first_event_id TEXT NOT NULL,
    last_event_id TEXT NOT NULL,
    event_count INTEGER NOT NULL,
    detections INTEGER NOT NULL      -- detections in the latest event
)""",
    "CREATE INDEX IF NOT EXISTS work_orders_place ON work_orders (device_id, site, camera, zone, status)",
    """CREATE TABLE IF NOT EXISTS order_events (
    work_order_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    attached_at TEXT NOT NULL,
    PRIMARY KEY (work_order_id, message_id)
)""",
    "CREATE INDEX IF NOT EXISTS order_events_by_event ON order_events (event_id)",
    """CREATE TABLE IF NOT EXISTS transfers (
    device_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    site TEXT NOT NULL,
    camera TEXT NOT NULL,
    event_id TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    ranges TEXT NOT NULL,            -- JSON [[start, end), ...] of bytes durably written
    fin_seen INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (device_id, sha256)
)""",
    """CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL UNIQUE, -- same reason, topic and payload -> one row, counted in `times`
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    topic TEXT NOT NULL,
    device_id TEXT,
    payload_bytes INTEGER NOT NULL,
    payload_sha256 TEXT NOT NULL,
    saved INTEGER NOT NULL,          -- 1: the payload is in data_dir/quarantine under its sha256
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    times INTEGER NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    work_order_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    UNIQUE (work_order_id, kind, channel)
)""",
    "CREATE INDEX IF NOT EXISTS notifications_due ON notifications (status, next_attempt_at)",
    """CREATE TABLE IF NOT EXISTS notification_attempts (
    notification_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at TEXT NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT,
    PRIMARY KEY (notification_id, attempt)
)""",
)


def _v1_first_release(db: Database) -> None:
    _run(db, _V1)
    # A file from before `missing` existed (CREATE TABLE IF NOT EXISTS leaves old tables alone).
    _add_columns(db, "event_files", [("missing", "INTEGER NOT NULL DEFAULT 0")])


# -- 2: the case flow ----------------------------------------------------------------------------

_ORDER_COLUMNS = (
    ("source", "TEXT NOT NULL DEFAULT 'camera'"),  # camera | report
    ("description", "TEXT NOT NULL DEFAULT ''"),
    ("lat", "REAL"),
    ("lon", "REAL"),
    ("address", "TEXT NOT NULL DEFAULT ''"),
    ("assignee", "TEXT"),
    ("opened_ts", "REAL"),
    ("clock_start_ts", "REAL"),  # the deadline clock started (filed, or reopened)
    ("limit_s", "REAL"),  # working seconds allowed
    ("extension_s", "REAL NOT NULL DEFAULT 0"),  # approved extensions, working seconds
    ("due_ts", "REAL"),
    ("escalation_level", "INTEGER NOT NULL DEFAULT 0"),
    ("reminded", "INTEGER NOT NULL DEFAULT 0"),
    ("escalation_repeats", "INTEGER NOT NULL DEFAULT 0"),
    ("next_escalation_at", "REAL"),  # NULL: nothing to check (clock stopped)
    ("registered_at", "TEXT"),
    ("dispatched_at", "TEXT"),
    ("started_at", "TEXT"),
    ("resolved_at", "TEXT"),
    ("resolved_ts", "REAL"),
    ("rejected_at", "TEXT"),
    ("reject_reason", "TEXT"),
    ("reopened_at", "TEXT"),
    ("reopen_count", "INTEGER NOT NULL DEFAULT 0"),
    ("closed_ts", "REAL"),
    ("recurrence", "INTEGER NOT NULL DEFAULT 0"),  # times garbage came back at this spot before
    ("linked_order_id", "TEXT"),  # the spot's previous order
    ("snapshot_sha256", "TEXT"),  # the photo notifications may attach
    ("after_snapshot_sha256", "TEXT"),  # the clean spot that closed it
)

_V2 = (
    # The sweep reads only the orders whose next check has come: a range scan of this index.
    "CREATE INDEX IF NOT EXISTS work_orders_escalation ON work_orders (next_escalation_at)"
    " WHERE next_escalation_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS work_orders_status ON work_orders (status, opened_at)",
    """CREATE TABLE IF NOT EXISTS order_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    work_order_id TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,             -- camera:<device>/<camera>, system:<what>, or a user
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL             -- JSON
)""",
    "CREATE INDEX IF NOT EXISTS order_history_by_order ON order_history (work_order_id, id)",
    """CREATE TABLE IF NOT EXISTS order_extensions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    work_order_id TEXT NOT NULL,
    seconds REAL NOT NULL,           -- working seconds asked for
    reason TEXT NOT NULL,
    status TEXT NOT NULL,            -- requested | approved | denied
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    decision_reason TEXT
)""",
    "CREATE INDEX IF NOT EXISTS order_extensions_by_order ON order_extensions (work_order_id)",
    # One row per spot (device, site, camera, zone): how often garbage came back, so hotspots show.
    """CREATE TABLE IF NOT EXISTS spots (
    device_id TEXT NOT NULL,
    site TEXT NOT NULL,
    camera TEXT NOT NULL,
    zone TEXT NOT NULL,
    orders INTEGER NOT NULL,
    recurrences INTEGER NOT NULL,
    last_order_id TEXT NOT NULL,
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    PRIMARY KEY (device_id, site, camera, zone)
)""",
    "CREATE INDEX IF NOT EXISTS spots_by_recurrences ON spots (recurrences)",
    # Camera health from the edge's status and stats: offline since when, told or not.
    """CREATE TABLE IF NOT EXISTS cameras (
    device_id TEXT NOT NULL,
    camera TEXT NOT NULL,
    online INTEGER NOT NULL,
    since REAL NOT NULL,             -- when the current state began
    offline_notified INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (device_id, camera)
)""",
    "CREATE INDEX IF NOT EXISTS cameras_offline ON cameras (since) WHERE online = 0 AND offline_notified = 0",
)


def _v2_case_flow(db: Database) -> None:
    _add_columns(db, "work_orders", _ORDER_COLUMNS)
    _run(db, _V2)
    # Orders of the first release: 'open' is 'registered' now; their clock and due time become
    # numbers, and the sweep looks at each once (next_escalation_at = when its clock started).
    rows = db.execute(
        "SELECT id, status, opened_at, due_at, closed_at FROM work_orders WHERE opened_ts IS NULL"
    ).fetchall()
    for order_id, status, opened_at, due_at, closed_at in rows:
        opened, due = _ts(opened_at), _ts(due_at)
        running = status == "open"
        db.execute(
            "UPDATE work_orders SET status = ?, opened_ts = ?, clock_start_ts = ?, due_ts = ?, limit_s = ?,"
            " registered_at = opened_at, closed_ts = ?, next_escalation_at = ? WHERE id = ?",
            [
                "registered" if running else status,
                opened,
                opened,
                due,
                (due or 0.0) - (opened or 0.0),
                _ts(closed_at),
                opened if running else None,
                order_id,
            ],
        )
    db.execute(
        "INSERT OR IGNORE INTO spots (device_id, site, camera, zone, orders, recurrences, last_order_id,"
        " first_at, last_at) SELECT device_id, site, camera, zone, count(*), count(*) - 1, max(id),"
        " min(opened_at), max(opened_at) FROM work_orders GROUP BY device_id, site, camera, zone"
    )


# -- 3: the outbox per recipient, with grouping ----------------------------------------------------


def _v3_outbox(db: Database) -> None:
    # Rebuilt: a message may now carry several orders, so (order, kind, channel) is no longer
    # unique; what must not repeat is one notice to one channel (notification_items.dedupe_key).
    _run(
        db,
        (
            """CREATE TABLE notifications_v3 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    work_order_id TEXT NOT NULL,     -- the first order in the message ('' for a camera notice)
    kind TEXT NOT NULL,              -- the first notice's kind (opened, closed, overdue, ...)
    channel TEXT NOT NULL,           -- sha256 prefix of the Apprise URL (URLs hold secrets)
    recipient TEXT NOT NULL DEFAULT '',  -- person id; '' for a feed in notify.urls
    group_key TEXT NOT NULL DEFAULT '',  -- the site: one message per recipient and site at a time
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    items INTEGER NOT NULL DEFAULT 1,
    attachments TEXT NOT NULL DEFAULT '[]',  -- JSON sha256s of evidence files to attach
    status TEXT NOT NULL,            -- pending | sending | sent | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    scheduled_at REAL NOT NULL,      -- the first planned send (spaces a group's messages)
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
)""",
            "INSERT INTO notifications_v3 (id, work_order_id, kind, channel, title, body, status, attempts,"
            " scheduled_at, next_attempt_at, last_error, created_at, sent_at) SELECT id, work_order_id, kind,"
            " channel, title, body, status, attempts, next_attempt_at, next_attempt_at, last_error, created_at,"
            " sent_at FROM notifications",
            "DROP TABLE notifications",
            "ALTER TABLE notifications_v3 RENAME TO notifications",
            "CREATE INDEX notifications_due ON notifications (status, next_attempt_at)",
            # The group's latest message: still pending (append to it) or when the next may go.
            "CREATE INDEX notifications_group ON notifications (channel, recipient, group_key, scheduled_at)",
            """CREATE TABLE notification_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id INTEGER NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE, -- one notice to one channel: queued once, ever
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,           -- the work order id, or camera:<device>/<camera>
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ts REAL NOT NULL
)""",
            "CREATE INDEX notification_items_by_message ON notification_items (notification_id, id)",
            "CREATE INDEX notification_items_recent ON notification_items"
            " (channel, recipient, subject, kind, created_ts)",
            "INSERT INTO notification_items (notification_id, dedupe_key, channel, recipient, subject, kind,"
            " title, body, created_ts) SELECT id, '|' || channel || '|' || work_order_id || '|' || kind, channel,"
            " '', work_order_id, kind, title, body, next_attempt_at FROM notifications",
        ),
    )


# -- 4: retention of evidence, legal holds ----------------------------------------------------------

_V4 = (
    # A legal hold pins an order's evidence against the retention sweep. Rows are never deleted:
    # a release fills released_*, so the table is the holds' history too.
    """CREATE TABLE IF NOT EXISTS legal_holds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    work_order_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    placed_by TEXT NOT NULL,
    placed_at TEXT NOT NULL,
    released_by TEXT,
    released_at TEXT,
    release_reason TEXT
)""",
    # At most one active hold per order (placing a second one is refused, not stacked).
    "CREATE UNIQUE INDEX IF NOT EXISTS legal_holds_active ON legal_holds (work_order_id) WHERE released_at IS NULL",
    # Which orders a file belongs to, looked up by sha256 (the retention rule, evidence reads):
    # without these each lookup reads all of event_files, order_events or work_orders.
    "CREATE INDEX IF NOT EXISTS event_files_by_sha256 ON event_files (sha256)",
    "CREATE INDEX IF NOT EXISTS order_events_by_message ON order_events (message_id)",
    "CREATE INDEX IF NOT EXISTS work_orders_snapshot ON work_orders (snapshot_sha256)"
    " WHERE snapshot_sha256 IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS work_orders_after_snapshot ON work_orders (after_snapshot_sha256)"
    " WHERE after_snapshot_sha256 IS NOT NULL",
    # Purged rows whose files may still be on disk (a crash between the commit and the unlink):
    # the next sweep unlinks exactly these, however large the archive of purged rows grows.
    "CREATE INDEX IF NOT EXISTS evidence_files_unlink_pending ON evidence_files (sha256) WHERE unlink_pending = 1",
)


def _v4_retention(db: Database) -> None:
    # The row of a purged file stays: signed manifests and the audit trail still name its sha256.
    _add_columns(
        db,
        "evidence_files",
        [("purged_at", "TEXT"), ("purge_reason", "TEXT"), ("unlink_pending", "INTEGER NOT NULL DEFAULT 0")],
    )
    _run(db, _V4)


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "first release: devices, events, evidence, work orders, outbox", _v1_first_release),
    (2, "case flow: statuses, deadlines, escalation, history, extensions, spots, cameras", _v2_case_flow),
    (3, "outbox per recipient with grouping", _v3_outbox),
    (4, "evidence retention: legal holds, purged files", _v4_retention),
)


def schema_version(db: Database) -> int:
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone():
        return 0
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: Database, migrations: Sequence[tuple[int, str, Migration]] = MIGRATIONS) -> int:
    """Apply the migrations the file lacks, in order; return the version it is at now."""
    with immediate(db):
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL)"
        )
        current = schema_version(db)
        for version, name, apply in migrations:
            if version <= current:
                continue
            with db.atomic():  # a savepoint: a failing migration leaves nothing behind
                apply(db)
                db.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    [version, name, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())],
                )
            log.info("database migrated to version %d: %s", version, name)
            current = version
    return current
