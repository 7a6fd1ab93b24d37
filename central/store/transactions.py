"""Write transactions that take SQLite's write lock up front.

sqlite-utils' `db.atomic()` begins a deferred transaction: it reads under a snapshot and asks for
the write lock at its first write. In WAL mode that upgrade fails at once (SQLITE_BUSY, no
waiting) when another connection committed since the snapshot was taken. A transaction that
reads and then writes (the sweep, the notifier's claim, a person's action) therefore begins
with BEGIN IMMEDIATE: it waits for the lock (busy_timeout) and then reads the latest data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlite_utils import Database

__all__ = ["immediate"]


@contextmanager
def immediate(db: Database) -> Iterator[Database]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an exception); inside a transaction, a savepoint."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
