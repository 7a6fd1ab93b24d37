"""Group commit on SQLite's WAL: commits that do not wait for the disk, then one fsync for them all.

The consumer's ingest thread commits each message of a batch inside `commits_not_waiting`
(synchronous=NORMAL: the commit is appended to the -wal file without an fsync), and its
durability thread then calls `fsync_wal` once for the whole batch before any of the batch's acks
go out (central.ingest.consumer). The deadline sweep commits its transactions the same way and
lets each one's fsync run (`FsyncAhead`) while it plans the next (central.caseflow.sweep). These
helpers hold the durability argument on their own and touch only SQLite and the file system;
bench.ingest_cpu uses them as they are to drive the ingest handler without a broker.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from sqlite_utils import Database

__all__ = ["FsyncAhead", "commits_not_waiting", "fsync_wal", "wal_path"]


def wal_path(db: Database) -> str | None:
    """The -wal file whose fsync makes the connection's synchronous=NORMAL commits durable; None without WAL."""
    if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        return None
    path = next(str(r[2]) for r in db.execute("PRAGMA database_list") if r[1] == "main")
    return f"{path}-wal"


@contextlib.contextmanager
def commits_not_waiting(db: Database, wal: str | None) -> Iterator[bool]:
    """Commits inside do not wait for the disk (`fsync_wal` afterwards makes them durable).

    In WAL mode a commit appends to the -wal file; synchronous=NORMAL only skips its fsync. Without
    WAL (never the case for the central's file) the commits keep the connection's own setting.
    """
    if wal is None:
        yield False
        return
    previous = int(db.execute("PRAGMA synchronous").fetchone()[0])
    db.execute("PRAGMA synchronous=NORMAL")
    try:
        yield True  # True: commits inside do not wait for the disk
    finally:
        db.execute(f"PRAGMA synchronous={previous}")


def fsync_wal(wal: str | None) -> None:
    """Make every commit written to the WAL so far durable (any thread: it uses no connection).

    A commit made after this call started may be covered too; one made before always is. If a
    checkpoint removed or restarted the WAL meanwhile, it fsynced the main file first.
    """
    if wal is None:
        return
    try:
        fd = os.open(wal, os.O_RDONLY)
    except FileNotFoundError:
        return  # checkpointed and removed: the main file was fsynced by the checkpoint
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FsyncAhead:
    """fsyncs of the WAL on a helper thread while the caller goes on; `finish()` makes all durable.

    For a caller that commits several transactions inside `commits_not_waiting` and must not
    return before they are durable, but need not wait for each: `start()` after a commit begins
    its fsync (unless one is still running: the next fsync covers both), `finish()` waits for it
    and fsyncs once more, so that every commit made before `finish()` is durable when it returns.
    """

    def __init__(self, wal: str | None) -> None:
        self.wal = wal
        self._thread: threading.Thread | None = None
        self._error: OSError | None = None

    def start(self) -> None:
        if self.wal is None or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._fsync, name="central-fsync-ahead", daemon=True)
        self._thread.start()

    def finish(self) -> None:
        """Every commit made so far is durable once this returns; raises the helper's error, if any."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        fsync_wal(self.wal)
        if self._error is not None:  # the last fsync succeeded, but a failed one may have lost pages
            error, self._error = self._error, None
            raise error

    def _fsync(self) -> None:
        try:
            fsync_wal(self.wal)
        except OSError as exc:
            self._error = exc
