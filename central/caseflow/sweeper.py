"""The sweep on a timer: a thread with its own database connection, every escalation.sweep_s."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from central.caseflow.flow import CaseFlow
from central.caseflow.hooks import AuditHook
from central.caseflow.sweep import SweepResult, sweep
from central.counters import Counters
from central.periodic import PeriodicJob, PeriodicThread

__all__ = ["Sweeper"]

log = logging.getLogger("central.caseflow")


class Sweeper(PeriodicJob):
    """`audit_for(db)` makes the audit hook for the sweeper's own connection (None: the flow's)."""

    def __init__(
        self,
        db_path: Path,
        flow: CaseFlow,
        counters: Counters,
        *,
        on_notification: Callable[[], None] | None = None,
        audit_for: Callable[[Database], AuditHook] | None = None,
    ) -> None:
        self.db_path = db_path
        self.flow = flow
        self.counters = counters
        self.interval_s = flow.config.escalation.sweep_s
        self._on_notification = on_notification
        self._audit_for = audit_for
        self._periodic = PeriodicThread(
            "central-sweep", db_path, self.interval_s, self._rounds_for,
            counters=counters, error_counter="sweep_errors", log=log,
        )

    def run_once(self, db: Database, audit: AuditHook | None = None) -> SweepResult:
        result = sweep(db, self.flow, self.flow.clock(), audit=audit)
        if result.steps:
            self.counters.inc("escalation_steps", result.steps)
        if result.cameras:
            self.counters.inc("cameras_reported_offline", result.cameras)
        if result.notices and self._on_notification is not None:
            self._on_notification()
        if result.steps or result.cameras:
            # How long the sweep held SQLite's write lock at most: ingest and the console wait that long.
            log.info(
                "sweep: %d escalation step(s), %d camera(s) reported offline, in %d transaction(s),"
                " the longest holding the write lock %.0f ms",
                result.steps,
                result.cameras,
                result.transactions,
                result.longest_hold_s * 1000,
            )
        return result

    def _rounds_for(self, db: Database) -> Callable[[], None]:
        audit = self._audit_for(db) if self._audit_for is not None else None

        def one_round() -> None:
            self.run_once(db, audit)

        return one_round
