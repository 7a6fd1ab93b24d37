"""The schema statements of the migrations that shipped, as data, one block per migration.

central.store.migrations decides what runs, in which order and exactly once; this module holds
what each migration creates: the first release's tables, the case flow's order columns, tables
and indexes, the outbox rebuilt per recipient, and retention's legal holds and indexes. They are
kept apart because they are long, are read rather than changed (a shipped migration must never
change: a file migrated by it would differ from one created anew), and a new migration appends
its block here and its function and MIGRATIONS entry there.
"""

from __future__ import annotations

__all__ = [
    "V1_FIRST_RELEASE",
    "V2_CASE_FLOW",
    "V2_ORDER_COLUMNS",
    "V3_OUTBOX",
    "V4_RETENTION",
    "V7_LEANER_INDEXES",
]

# -- 1: the first release ---------------------------------------------------------------------------

V1_FIRST_RELEASE = (
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


# -- 2: the case flow ----------------------------------------------------------------------------

V2_ORDER_COLUMNS = (
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

V2_CASE_FLOW = (
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


# -- 3: the outbox per recipient, with grouping ----------------------------------------------------

# Run in this order: the rebuilt notifications table is filled from the old one before it is
# dropped, and notification_items from the rebuilt one.
V3_OUTBOX = (
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
)


# -- 4: retention of evidence, legal holds ----------------------------------------------------------

V4_RETENTION = (
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


# -- 7: indexes that every write paid for and few reads use ------------------------------------------

V7_LEANER_INDEXES = (
    # "Did this recipient hear this kind about this subject lately" is only asked about the kinds
    # limited to one per repeat_s (central.notify.grouping.REPEAT_LIMITED): the index holds only
    # their rows, so the deadline sweep's thousands of escalation notices do not write to it. The
    # query repeats this WHERE term word for word (SQLite uses a partial index only then).
    "DROP INDEX IF EXISTS notification_items_recent",
    "CREATE INDEX notification_items_recent ON notification_items (channel, recipient, subject, kind, created_ts)"
    " WHERE kind IN ('opened', 'reopened', 'resolved', 'closed', 'rejected', 'camera_offline')",
    # Filtering the trail by actor pages through it in seq order (central.api.audit_routes); no
    # query looked this index up, and every audit row wrote to it.
    "DROP INDEX IF EXISTS audit_log_actor",
)
