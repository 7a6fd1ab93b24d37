"""The one SQLite file: opened in WAL mode, tables created idempotently.

Each thread opens its own connection (the ingest thread, the notifier, a CLI); sqlite-utils'
`db.atomic()` makes one transaction of several writes (nested blocks become savepoints).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

__all__ = ["ensure_schema", "open_database"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    site TEXT,
    key_id TEXT,
    online INTEGER NOT NULL DEFAULT 0,
    last_seen TEXT,
    version TEXT,
    cameras TEXT,
    last_stats TEXT
);
-- One row per signed event message. An exposure event (event_id) sends several: confirmed,
-- updates, cleared; message_id (sha256 of the signed manifest bytes) tells them apart.
CREATE TABLE IF NOT EXISTS events (
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
);
CREATE INDEX IF NOT EXISTS events_by_event ON events (event_id, kind);
CREATE TABLE IF NOT EXISTS evidence_files (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    path TEXT NOT NULL,              -- relative to data_dir/evidence
    device_id TEXT NOT NULL,
    event_id TEXT NOT NULL,          -- the event that announced it first (from the file's init)
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    stored_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS event_files (
    message_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (message_id, sha256)
);
CREATE TABLE IF NOT EXISTS work_orders (
    id TEXT PRIMARY KEY,             -- WO-YYYYMMDD-NNNNNN (UTC day it was opened)
    event_code TEXT NOT NULL,
    device_id TEXT NOT NULL,
    site TEXT NOT NULL,
    camera TEXT NOT NULL,
    zone TEXT NOT NULL,
    status TEXT NOT NULL,            -- open -> verified -> closed
    opened_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    verified_at TEXT,
    closed_at TEXT,
    updated_at TEXT NOT NULL,
    first_event_id TEXT NOT NULL,
    last_event_id TEXT NOT NULL,
    event_count INTEGER NOT NULL,
    detections INTEGER NOT NULL      -- detections in the latest event
);
CREATE INDEX IF NOT EXISTS work_orders_place ON work_orders (device_id, site, camera, zone, status);
CREATE TABLE IF NOT EXISTS order_events (
    work_order_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    attached_at TEXT NOT NULL,
    PRIMARY KEY (work_order_id, message_id)
);
CREATE INDEX IF NOT EXISTS order_events_by_event ON order_events (event_id);
CREATE TABLE IF NOT EXISTS transfers (
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
);
CREATE TABLE IF NOT EXISTS quarantine (
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
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    work_order_id TEXT NOT NULL,
    kind TEXT NOT NULL,              -- opened | closed
    channel TEXT NOT NULL,           -- sha256 prefix of the Apprise URL (URLs hold secrets)
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,            -- pending | sent | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    UNIQUE (work_order_id, kind, channel)
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS notification_attempts (
    notification_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at TEXT NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT,
    PRIMARY KEY (notification_id, attempt)
);
"""


def open_database(path: Path) -> Database:
    """Open (creating if needed) the central's database with WAL and full fsync on commit.

    The connection may be handed to another thread, but must be used by one thread at a time.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False)
    db = Database(conn)
    db.enable_wal()
    # FULL: an ack promises the data survives power loss, not only a crash of the process.
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=30000")
    ensure_schema(db)
    return db


def ensure_schema(db: Database) -> None:
    with db.atomic():
        db.executescript(_SCHEMA)
