"""SQLite's WAL checkpoints on a thread of their own, off every writer's commit.

A checkpoint copies the pages committed to the -wal file back into the database file and fsyncs
it. Left to SQLite, the connection whose COMMIT takes the WAL past 1000 pages does that inside the
COMMIT: an ingest batch waiting to send its acks, or the deadline sweep in a burst, pays for
everybody's writes (the 15:00 burst of bench.deadline_sweep writes 47 MB of WAL and spent about
150 ms of its 1.1 s in four such checkpoints).

The service runs `WalCheckpointer` instead: every `interval_s` (1 s) a PASSIVE checkpoint on its
own connection. A PASSIVE checkpoint takes no lock that a writer or reader waits for, copies what
no reader still needs, and costs nothing when there is nothing new. Every connection
(`open_database`) keeps SQLite's automatic checkpoint as a backstop at BACKSTOP_PAGES, so that if
this thread falls behind or is not running (a CLI command on its own), the WAL still cannot grow
without bound. Under sustained writes it is that backstop that starts the WAL over (SQLite does
so only when a writer finds every frame copied back, and a busy writer has always committed more
since this thread's last checkpoint); its checkpoint then copies only the last second's frames,
and the -wal file stays at about BACKSTOP_PAGES pages (docs/central.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from central.periodic import CounterSink, PeriodicJob, PeriodicThread

__all__ = ["WalCheckpointer"]

log = logging.getLogger("central.store")

INTERVAL_S = 1.0


class WalCheckpointer(PeriodicJob):
    """A PASSIVE checkpoint of `db_path`'s WAL every `interval_s`.

    Counts `wal_checkpoints` (checkpoints that found frames to copy back) and
    `wal_checkpoint_errors` (rounds that failed: logged in one line; the next round tries again).
    """

    def __init__(self, db_path: Path, counters: CounterSink, *, interval_s: float = INTERVAL_S) -> None:
        self.db_path = db_path
        self.counters = counters
        self._backfilled = -1  # frames the WAL held, all copied back, at the last round (-1: none yet)
        self._periodic = PeriodicThread(
            "central-wal-checkpoint", db_path, interval_s, self._rounds_for,
            counters=counters, error_counter="wal_checkpoint_errors", log=log,
        )  # fmt: skip

    def run_once(self, db: Database) -> bool:
        """Checkpoint now; True if there were frames the last round had not copied back."""
        busy, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames <= 0 or (copied == frames == self._backfilled):
            return False  # no WAL, or nothing written since the last round
        self._backfilled = frames if copied == frames else -1
        self.counters.inc("wal_checkpoints")
        log.debug("WAL checkpoint: %d of %d frame(s) copied back%s", copied, frames, " (busy)" if busy else "")
        return True

    def _rounds_for(self, db: Database) -> Callable[[], None]:
        def one_round() -> None:
            self.run_once(db)

        return one_round
