"""Tables of users, their sites and API tokens (created idempotently; see `ensure_schema`).

Tokens are stored only as the sha256 of the token text; the text is shown once, at creation.
"""

from __future__ import annotations

from sqlite_utils import Database

from central.store.transactions import immediate

__all__ = ["create_tables", "ensure_schema"]

_STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    display_name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL,                -- admin | supervisor | auditor | integration
    password_hash TEXT NOT NULL,       -- argon2id encoded: parameters, salt and hash
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS user_sites (
    username TEXT NOT NULL REFERENCES users (username),
    site TEXT NOT NULL,
    PRIMARY KEY (username, site)
)""",
    """CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,               -- 12 hex digits, also inside the token text (gwt_<id>_<secret>)
    name TEXT NOT NULL UNIQUE,         -- what it is for: 'hotline-12345', 'residents-form'
    token_sha256 TEXT NOT NULL UNIQUE, -- sha256 hex of the whole token text
    role TEXT NOT NULL,
    username TEXT,                     -- a person's token acts as that person (and stops with them)
    sites TEXT,                        -- JSON list of sites; NULL: every site (the user's, for a person's token)
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    expires_at REAL,                   -- POSIX seconds; NULL: does not expire
    revoked_at TEXT,
    revoked_by TEXT,
    last_used_at REAL
)""",
)


def create_tables(db: Database) -> None:
    """Create the tables if missing, one statement at a time (executescript would commit a
    caller's transaction), so that this also runs as a numbered migration (central/store/migrations.py)."""
    for statement in _STATEMENTS:
        db.execute(statement)


def ensure_schema(db: Database) -> None:
    """Create the auth tables if missing. Safe to call at every start and from every connection."""
    with immediate(db):
        create_tables(db)
