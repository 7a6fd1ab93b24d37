"""The retention sweep on a timer: a thread with its own database connection, every retention.sweep_s.

It sweeps once at start (so the leftovers of a sweep a crash interrupted go at once), then every
`sweep_s`. An error is logged in one line and counted (`retention_errors`); the thread carries on.
Deletions are always audited: without an `audit_for`, the sweeper writes to the audit trail itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from central.audit.chain import AuditTrail
from central.audit.schema import ensure_schema as ensure_audit_schema
from central.caseflow.hooks import AuditHook
from central.config import RetentionConfig
from central.counters import Counters
from central.evidence_store import ContentStore
from central.retention.sweep import SweepResult, sweep
from central.store.database import open_database
from central.timefmt import Clock

__all__ = ["RetentionSweeper"]

log = logging.getLogger("central.retention")


class RetentionSweeper:
    def __init__(
        self,
        db_path: Path,
        store: ContentStore,
        config: RetentionConfig,
        counters: Counters,
        clock: Clock,
        *,
        audit_for: Callable[[Database], AuditHook] | None = None,
    ) -> None:
        self.db_path = db_path
        self.store = store
        self.config = config
        self.counters = counters
        self.clock = clock
        self.interval_s = config.sweep_s
        self._audit_for = audit_for
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.sweeps = 0  # finished sweeps (tests poll it)

    def run_once(self, db: Database, audit: AuditHook) -> SweepResult:
        result = sweep(db, self.store, self.config, self.clock(), audit=audit, keep_going=self._running)
        if result.purged:
            self.counters.inc("evidence_purged", result.purged)
        if result.errors:
            self.counters.inc("retention_errors", result.errors)
        if result.purged or result.leftovers or result.errors:
            log.info(
                "retention sweep: %d file(s) purged, %d leftover(s) removed, %d byte(s) freed, %d error(s)",
                result.purged,
                result.leftovers,
                result.bytes,
                result.errors,
            )
        return result

    def wake(self) -> None:
        """Sweep now rather than at the next tick."""
        self._wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="central-retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _running(self) -> bool:
        return not self._stop.is_set()

    def _hook(self, db: Database) -> AuditHook:
        if self._audit_for is not None:
            return self._audit_for(db)
        ensure_audit_schema(db)
        return AuditTrail(db)

    def _run(self) -> None:
        db: Database | None = None
        audit: AuditHook | None = None
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    if db is None:
                        db = open_database(self.db_path)
                    if audit is None:
                        audit = self._hook(db)
                    self.run_once(db, audit)
                    self.sweeps += 1
                except Exception as exc:  # a locked file, a full disk: log, count, try again next time
                    self.counters.inc("retention_errors")
                    log.error(
                        "retention sweep failed, next try in %.0f s: %s: %s", self.interval_s, type(exc).__name__, exc
                    )
                self._wake.wait(self.interval_s)
        finally:
            if db is not None:
                db.close()
