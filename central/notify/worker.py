"""The notifier thread: sends due outbox messages, retries with exponential backoff, records every attempt.

It has its own database connection and never blocks ingest; ingest and the sweep only call
`wake()`. A message is claimed ('sending') before it is sent and settled after, so it goes out
once however long a notification service is down; only a crash between the send and its record
can send one twice (the claim is released at the next start).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from central.config import NotifyConfig
from central.evidence_store import ContentStore
from central.notify.sender import DeliveryError, Sender
from central.periodic import CounterSink, EventLike, PeriodicJob, PeriodicThread
from central.store.outbox import claim_notification, due_notifications, record_attempt, release_claims
from central.timefmt import Clock, system_clock

__all__ = ["COUNTER_NAMES", "CounterSink", "EventLike", "NotificationWorker", "retry_delay"]

log = logging.getLogger("central.notify")

# How often a running notifier looks for claims another instance left behind when it died.
_RELEASE_EVERY_S = 60.0

# Every count the worker keeps (central.notify.process shares exactly these with its parent).
# notifier_errors: passes that failed as a whole (the database locked or gone), tried again.
COUNTER_NAMES = ("notifications_sent", "notification_retries", "notifications_failed", "notifier_errors")


def retry_delay(attempts: int, first_retry_s: float, max_retry_s: float) -> float:
    """Seconds to wait after the `attempts`-th failure: first, 2x, 4x, ... capped."""
    return float(min(max_retry_s, first_retry_s * 2 ** max(0, attempts - 1)))


class NotificationWorker(PeriodicJob):
    def __init__(
        self,
        db_path: Path,
        settings: NotifyConfig,
        sender: Sender,
        counters: CounterSink,
        clock: Clock = system_clock,
        evidence_dir: Path | None = None,
        *,
        wake: EventLike | None = None,
        stop: EventLike | None = None,
        owner: str = "notifier",
    ) -> None:
        """`owner`: this notifier's name in the outbox's claims, unique among the central
        instances sharing the database (the service passes its broker client_id)."""
        self.db_path = db_path
        self.owner = owner
        self.evidence = ContentStore(evidence_dir) if evidence_dir is not None else None
        self.settings = settings
        self.sender = sender
        self.counters = counters
        self.clock = clock
        # One pass at start, then whenever woken or every poll_s; a failed pass is logged, counted
        # and tried again at the next one.
        self._periodic = PeriodicThread(
            "central-notify", db_path, settings.poll_s, self._rounds_for,
            counters=counters, error_counter="notifier_errors", log=log, wake=wake, stop=stop,
        )  # fmt: skip

    def deliver_due(self, db: Database) -> int:
        """One pass over the due notifications; return how many were attempted."""
        rows = due_notifications(db, self.clock())
        for due in rows:
            if not self._periodic.running:
                break
            row = claim_notification(db, int(due["id"]), owner=self.owner, now=self.clock())
            if row is None:
                continue
            error: str | None = None
            retry = True
            try:
                files = self._attachments(row)
                if files:
                    self.sender.send(row["channel"], row["title"], row["body"], files)
                else:
                    self.sender.send(row["channel"], row["title"], row["body"])
            except DeliveryError as exc:
                error, retry = str(exc), exc.retry
            except Exception as exc:  # a plugin bug must not kill the notifier
                error = f"{type(exc).__name__}: {exc}"
            attempts = int(row["attempts"]) + 1
            retry_in = None
            if error is not None and retry and attempts < self.settings.max_attempts:
                retry_in = retry_delay(attempts, self.settings.first_retry_s, self.settings.max_retry_s)
            status = record_attempt(db, row, ok=error is None, error=error, now=self.clock(), retry_in=retry_in)
            if status == "sent":
                self.counters.inc("notifications_sent")
                log.info("notified channel %s about %s (%s)", row["channel"], row["work_order_id"], row["kind"])
            elif status == "pending":
                self.counters.inc("notification_retries")
                log.warning(
                    "notification %s for %s failed (attempt %d), retry in %.0f s: %s",
                    row["id"],
                    row["work_order_id"],
                    attempts,
                    retry_in,
                    error,
                )
            else:
                self.counters.inc("notifications_failed")
                log.error(
                    "notification %s for %s failed for good after %d attempts: %s",
                    row["id"],
                    row["work_order_id"],
                    attempts,
                    error,
                )
        return len(rows)

    def release_stale_claims(self, db: Database) -> int:
        """Put back to pending this notifier's own leftover claims and anyone's stale ones."""
        released = release_claims(db, owner=self.owner, now=self.clock(), lease_s=self.settings.claim_lease_s)
        if released:
            log.warning("%d notification(s) left 'sending' by a stopped notifier go out again", released)
        return released

    def _attachments(self, row: dict[str, Any]) -> list[Path]:
        """The stored evidence files the message may carry; a missing one is left out, not fatal."""
        if self.evidence is None:
            return []
        files = []
        for sha in json.loads(row.get("attachments") or "[]"):
            try:
                if self.evidence.has(sha):
                    files.append(self.evidence.path_for(sha))
            except Exception:  # not a sha256: the row was edited by hand; send without it
                log.warning("notification %s: attachment %r is not a stored evidence file", row["id"], sha)
        return files

    def run(self) -> None:
        """Run the loop in the calling thread until stopped (the notifier process's main)."""
        self._periodic.run()

    def _rounds_for(self, db: Database) -> Callable[[], None]:
        # The notifier's commits (claims, attempts) need not wait for the disk: a claim lost to a
        # power cut leaves the message pending, which is what the restart's release_stale_claims
        # makes of an own claim anyway, and a lost record only sends that one message again (as
        # a crash between a send and its record already can). Ingest fsyncs the same WAL after
        # every batch, which makes these commits durable within moments. Saves two fsyncs a message.
        db.execute("PRAGMA synchronous=NORMAL")
        released_at = float("-inf")

        def one_pass() -> None:
            nonlocal released_at
            if self.clock() - released_at >= _RELEASE_EVERY_S:
                # At start (this notifier's own claims: it stopped between a send and its
                # record), then now and then (claims of an instance that died, once stale).
                released_at = self.clock()
                self.release_stale_claims(db)
            self.deliver_due(db)

        return one_pass
