"""The central service: ingest (MQTT consumer), the escalation sweep, the notifier and the evidence
retention sweep, around one data directory."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType

from sqlite_utils import Database

from central.caseflow.flow import CaseFlow
from central.caseflow.hooks import AuditHook, no_audit
from central.caseflow.sweeper import Sweeper
from central.config import CentralConfig
from central.counters import Counters
from central.evidence_store import ContentStore
from central.ingest.consumer import MqttConsumer
from central.ingest.handler import IngestHandler
from central.notify.process import NotifierProcess
from central.notify.sender import AppriseSender, Sender
from central.notify.worker import NotificationWorker
from central.retention.sweeper import RetentionSweeper
from central.store.database import open_database
from central.store.devices import sync_devices
from central.store.wal_checkpointer import WalCheckpointer
from central.timefmt import Clock, system_clock

__all__ = ["CentralService"]

log = logging.getLogger("central")


class CentralService:
    """`start()` returns at once; the consumer connects (and reconnects) in the background.

    `sender` replaces the Apprise sender (the demo may print instead); `clock` drives every
    timestamp; `audit_for(db)` makes the audit hook for a thread's connection (ingest's, the
    sweep's), so that audit records commit with the changes they describe.

    Notifications go out from a child process (`notify.process`, central.notify.process) unless
    the caller passes a `sender` object or a `clock` of its own, which live in this process: then
    from a thread. `sender_factory`, a picklable callable, builds the child's sender instead of
    Apprise.
    """

    def __init__(
        self,
        config: CentralConfig,
        *,
        clock: Clock = system_clock,
        sender: Sender | None = None,
        sender_factory: Callable[[], Sender] | None = None,
        audit_for: Callable[[Database], AuditHook] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self._counters = Counters()
        self._sender = sender
        self._sender_factory = sender_factory
        self._audit_for = audit_for
        self._db: Database | None = None
        self._consumer: MqttConsumer | None = None
        self._notifier: NotificationWorker | NotifierProcess | None = None
        self._sweeper: Sweeper | None = None
        self._retention: RetentionSweeper | None = None
        self._checkpointer: WalCheckpointer | None = None
        # The case flow's entry points (people's actions, extensions) for an API in this process.
        self.case_flow = CaseFlow(config, clock=clock)

    @property
    def counters(self) -> dict[str, int]:
        """A snapshot of the counts: received, files_stored, events_filed, quarantined.<reason>, ..."""
        counts = self._counters.snapshot()
        if isinstance(self._notifier, NotifierProcess):
            for name, n in self._notifier.counts().items():
                counts[name] = counts.get(name, 0) + n
        return dict(sorted(counts.items()))

    def start(self) -> CentralService:
        cfg = self.config
        for folder in (cfg.data_dir, cfg.evidence_dir, cfg.incoming_dir, cfg.quarantine_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._db = open_database(cfg.db_path)
        sync_devices(self._db, cfg.devices)
        self._checkpointer = WalCheckpointer(cfg.db_path, self._counters)
        self._checkpointer.start()
        self._notifier = self._make_notifier()
        self._notifier.start()
        self._sweeper = Sweeper(
            cfg.db_path, self.case_flow, self._counters, on_notification=self._notifier.wake, audit_for=self._audit_for
        )
        self._sweeper.start()
        self._retention = RetentionSweeper(
            cfg.db_path,
            ContentStore(cfg.evidence_dir),
            cfg.retention,
            self._counters,
            self.clock,
            audit_for=self._audit_for,
        )
        self._retention.start()
        for gap in self.case_flow.gaps():
            log.warning("notifications: %s (only the notify.urls feeds will hear of it)", gap)
        ingest_audit = self._audit_for(self._db) if self._audit_for is not None else no_audit
        handler = IngestHandler(
            cfg,
            self._db,
            self._counters,
            self.clock,
            on_notification=self._notifier.wake,
            case_flow=CaseFlow(cfg, audit=ingest_audit, clock=self.clock),
        )
        self._consumer = MqttConsumer(cfg.broker, handler, self._counters)
        self._consumer.start()
        log.info(
            "central started: data in %s, broker %s:%d as %s%s, %d device(s), %d site(s), %d notification URL(s)",
            cfg.data_dir,
            cfg.broker.host,
            cfg.broker.port,
            cfg.broker.client_id,
            f" in shared group {cfg.broker.shared_group}" if cfg.broker.shared_group else "",
            len(cfg.devices),
            len(cfg.sites),
            len(cfg.notify.all_urls()),
        )
        return self

    def _make_notifier(self) -> NotificationWorker | NotifierProcess:
        cfg = self.config
        if cfg.notify.process and self._sender is None and self.clock is system_clock:
            return NotifierProcess(
                cfg.db_path,
                cfg.notify,
                evidence_dir=cfg.evidence_dir,
                sender_factory=self._sender_factory,
                owner=cfg.broker.client_id,  # unique among the instances sharing the outbox
            )
        sender = self._sender or (self._sender_factory or (lambda: AppriseSender(cfg.notify.all_urls())))()
        return NotificationWorker(
            cfg.db_path,
            cfg.notify,
            sender,
            self._counters,
            self.clock,
            evidence_dir=cfg.evidence_dir,
            owner=cfg.broker.client_id,
        )

    def sweep_now(self) -> None:
        """Run the deadline and camera sweep now rather than at its next tick."""
        if self._sweeper is not None:
            self._sweeper.wake()

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """True once connected and subscribed, and a notifier process (if any) has started."""
        deadline = time.monotonic() + timeout
        if self._consumer is None or not self._consumer.subscribed.wait(timeout):
            return False
        if isinstance(self._notifier, NotifierProcess):
            return self._notifier.wait_ready(max(0.0, deadline - time.monotonic()))
        return True

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.stop()
            self._consumer = None
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None
        if self._retention is not None:
            self._retention.stop()
            self._retention = None
        if self._notifier is not None:
            self._notifier.stop()
            self._notifier = None
        # Stopped once the writers are; SQLite checkpoints what is left when the last connection
        # to the file closes (the service's own, below, unless a CLI or API still has one open).
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._db is not None:
            self._db.close()
            self._db = None
        log.info("central stopped: %s", self._counters.snapshot())

    def __enter__(self) -> CentralService:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
