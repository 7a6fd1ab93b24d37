"""The one SQLite file: opened in WAL mode, brought to the current schema by migrations.

Each thread opens its own connection (the ingest thread, the notifier, the sweep, a CLI);
sqlite-utils' `db.atomic()` makes one transaction of several writes (nested blocks become
savepoints), `central.store.transactions.immediate` one that reads and then writes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from central.store.migrations import migrate

__all__ = ["BACKSTOP_PAGES", "ensure_schema", "open_database"]

# The service checkpoints the WAL on a thread of its own (central.store.wal_checkpointer); a
# connection does it inside its own COMMIT only past this many pages (64 MB), as a backstop.
BACKSTOP_PAGES = 16384


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
    db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    ensure_schema(db)
    return db


def ensure_schema(db: Database) -> int:
    """Apply the migrations the file lacks; return the schema version."""
    return migrate(db)
