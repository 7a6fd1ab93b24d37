"""Schema migrations: numbered functions applied in order when a database is opened.

`schema_version` holds one row per applied migration. `migrate` takes SQLite's write lock first
(BEGIN IMMEDIATE), so the threads and processes that open the file at the same moment apply each
migration exactly once; each migration commits together with its row. Migration 1 is the schema
of the first release, written so that it also adopts a file created before versions were kept.
Add a migration by appending a function to MIGRATIONS (its schema statements go at the end of
central.store.schema_history); never change one that has shipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from central.store.schema_history import (
    V1_FIRST_RELEASE,
    V2_CASE_FLOW,
    V2_ORDER_COLUMNS,
    V3_OUTBOX,
    V4_RETENTION,
    V7_LEANER_INDEXES,
)
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


def _v1_first_release(db: Database) -> None:
    _run(db, V1_FIRST_RELEASE)
    # A file from before `missing` existed (CREATE TABLE IF NOT EXISTS leaves old tables alone).
    _add_columns(db, "event_files", [("missing", "INTEGER NOT NULL DEFAULT 0")])


# -- 2: the case flow ----------------------------------------------------------------------------


def _v2_case_flow(db: Database) -> None:
    _add_columns(db, "work_orders", V2_ORDER_COLUMNS)
    _run(db, V2_CASE_FLOW)
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
    _run(db, V3_OUTBOX)


# -- 4: retention of evidence, legal holds ----------------------------------------------------------


def _v4_retention(db: Database) -> None:
    # The row of a purged file stays: signed manifests and the audit trail still name its sha256.
    _add_columns(
        db,
        "evidence_files",
        [("purged_at", "TEXT"), ("purge_reason", "TEXT"), ("unlink_pending", "INTEGER NOT NULL DEFAULT 0")],
    )
    _run(db, V4_RETENTION)


# -- 5: who claimed an outbox message, and when --------------------------------------------------


def _v5_claim_owner(db: Database) -> None:
    # Several instances share the outbox: a notifier starting up may release only its own
    # claims, or those so old that their notifier must be gone (central.store.outbox.release_claims).
    _add_columns(db, "notifications", [("claimed_by", "TEXT"), ("claimed_at", "REAL")])


# -- 6: an outbox message's notices per kind ---------------------------------------------------------


def _v6_message_kinds(db: Database) -> None:
    # Grouping keeps the tally of a pending message (JSON: kind -> notices) so that adding to it
    # reads one row, not every item. NULL on older messages: their items are counted instead.
    _add_columns(db, "notifications", [("kinds", "TEXT")])


# -- 7: leaner indexes ------------------------------------------------------------------------------


def _v7_leaner_indexes(db: Database) -> None:
    _run(db, V7_LEANER_INDEXES)


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "first release: devices, events, evidence, work orders, outbox", _v1_first_release),
    (2, "case flow: statuses, deadlines, escalation, history, extensions, spots, cameras", _v2_case_flow),
    (3, "outbox per recipient with grouping", _v3_outbox),
    (4, "evidence retention: legal holds, purged files", _v4_retention),
    (5, "outbox claims name their notifier", _v5_claim_owner),
    (6, "outbox messages keep their notices per kind", _v6_message_kinds),
    (7, "partial index of repeat-limited notices; no audit index by actor", _v7_leaner_indexes),
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
