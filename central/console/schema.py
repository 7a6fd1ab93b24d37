"""The console's own tables and the indexes its order list needs (created idempotently).

Sessions are server-side (revocable: signing out, disabling a user or an admin ends them at
once); the cookie holds a random token and the table only its sha256, so a copy of the
database does not hand out live sessions.
"""

from __future__ import annotations

from sqlite_utils import Database

from central.store.order_counts import ensure_order_counts

__all__ = ["ensure_schema"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS console_sessions (
    id TEXT PRIMARY KEY,               -- sha256 hex of the cookie's token
    username TEXT NOT NULL,
    csrf_token TEXT NOT NULL,          -- the synchronizer token every form of this session carries
    created_ts REAL NOT NULL,
    last_seen_ts REAL NOT NULL,
    expires_ts REAL NOT NULL,          -- absolute end, whatever the activity
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT
);
CREATE INDEX IF NOT EXISTS console_sessions_by_user ON console_sessions (username);
-- Failed sign-ins inside the throttling window (older rows are pruned as new ones come).
CREATE TABLE IF NOT EXISTS console_login_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    ip TEXT NOT NULL,
    at_ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS console_login_failures_by_user ON console_login_failures (username, ip, at_ts);
CREATE INDEX IF NOT EXISTS console_login_failures_by_ip ON console_login_failures (ip, at_ts);
-- Photos people attach when they resolve an order (the bytes are in the evidence store).
CREATE TABLE IF NOT EXISTS console_order_photos (
    order_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    PRIMARY KEY (order_id, sha256)
);
CREATE INDEX IF NOT EXISTS console_order_photos_by_sha ON console_order_photos (sha256);
-- The order list pages newest first, optionally by site or camera: without these a page of a
-- large city's orders is a full scan and sort. (Candidates for a store migration.)
CREATE INDEX IF NOT EXISTS console_work_orders_opened ON work_orders (opened_at);
CREATE INDEX IF NOT EXISTS console_work_orders_site ON work_orders (site, opened_at);
CREATE INDEX IF NOT EXISTS console_work_orders_camera ON work_orders (camera, opened_at);
-- Dashboard counts and the overdue filter: open, overdue and due-soon orders counted from the index alone.
CREATE INDEX IF NOT EXISTS console_work_orders_due ON work_orders (status, due_ts, site);
-- Filtered by site and status together (a supervisor's "registered at my site"): the page's rows
-- in order from the index alone, instead of reading every order of the site to check its status.
CREATE INDEX IF NOT EXISTS console_work_orders_site_status ON work_orders (site, status, opened_at);
"""


def ensure_schema(db: Database) -> None:
    """Create the console's tables and indexes if missing (the store's migrations ran first)."""
    with db.atomic():
        db.executescript(_SCHEMA)
    ensure_order_counts(db)  # the list's total counts (central/store/order_counts.py)
