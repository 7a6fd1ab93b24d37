"""The audit tables (created idempotently; see `ensure_schema`)."""

from __future__ import annotations

from sqlite_utils import Database

from central.store.transactions import immediate

__all__ = ["create_tables", "ensure_schema"]

_STATEMENTS = (
    # Append-only. seq runs 1, 2, 3, ... without gaps; each row carries the sha256 of the row before
    # (prev_sha256; 64 zeros for the first) and its own sha256 over its canonical JSON, so editing
    # or deleting any row breaks the chain from there on, and signed checkpoints of the head catch
    # a rewritten chain or a truncated tail.
    """CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,              -- RFC 8785 JSON text ('null' when none)
    prev_sha256 TEXT NOT NULL,
    sha256 TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS audit_log_subject ON audit_log (subject, seq)",
    # The signed checkpoints as issued (also in data_dir/audit-checkpoints.jsonl and retained on MQTT).
    """CREATE TABLE IF NOT EXISTS audit_checkpoints (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    count INTEGER NOT NULL,
    head_sha256 TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
)""",
)


def create_tables(db: Database) -> None:
    """Create the tables if missing, one statement at a time (executescript would commit a
    caller's transaction), so that this also runs as a numbered migration (central/store/migrations.py)."""
    for statement in _STATEMENTS:
        db.execute(statement)


def ensure_schema(db: Database) -> None:
    """Create the audit tables if missing. Safe to call at every start and from every connection."""
    with immediate(db):
        create_tables(db)
