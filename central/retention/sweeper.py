"""The retention sweep on a timer: a thread with its own database connection, every retention.sweep_s.

It sweeps once at start (so the leftovers of a sweep a crash interrupted go at once), then every
`sweep_s`. An error is logged in one line and counted (`retention_errors`); the thread carries on.
Deletions are always audited: without an `audit_for`, the sweeper writes to the audit trail itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from central.audit.chain import AuditTrail
from central.audit.schema import ensure_schema as ensure_audit_schema
from central.caseflow.hooks import AuditHook
from central.config import RetentionConfig
from central.counters import Counters
from central.evidence_store import ContentStore
from central.periodic import PeriodicJob, PeriodicThread
from central.retention.sweep import SweepResult, sweep
from central.timefmt import Clock

__all__ = ["RetentionSweeper"]

log = logging.getLogger("central.retention")


class RetentionSweeper(PeriodicJob):
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
        self._periodic = PeriodicThread(
            "central-retention", db_path, self.interval_s, self._rounds_for,
            counters=counters, error_counter="retention_errors", log=log,
        )  # fmt: skip
        self.sweeps = 0  # finished sweeps (tests poll it)

    def run_once(self, db: Database, audit: AuditHook) -> SweepResult:
        running = self._periodic
        result = sweep(db, self.store, self.config, self.clock(), audit=audit, keep_going=lambda: running.running)
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

    def _hook(self, db: Database) -> AuditHook:
        if self._audit_for is not None:
            return self._audit_for(db)
        ensure_audit_schema(db)
        return AuditTrail(db)

    def _rounds_for(self, db: Database) -> Callable[[], None]:
        audit = self._hook(db)

        def one_round() -> None:
            self.run_once(db, audit)
            self.sweeps += 1

        return one_round
