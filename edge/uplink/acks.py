"""Applying the central's acks: what each `wire.Ack` does to the spool and the delivery tracker.

paho's network thread parses an ack and drops it in this handler's inbox (`receive`); the uplink's
worker thread drains the inbox (`handle_received`) between sends, marking files and events acked
or rejected in the spool, or scheduling a resend. It is separate from the MQTT transport in
`edge.uplink.mqtt` because it is pure delivery policy, with no paho in it: it decides from the
spool's state and from what the last event message declared dropped, which it also remembers.
"""

from __future__ import annotations

import logging
import queue
from collections import Counter

import wire
from edge.spool import PendingBundle, Spool
from edge.uplink.tracker import BundleKey, DeliveryTracker

__all__ = ["GIVEN_UP", "AckHandler"]

log = logging.getLogger(__name__)

# Spool file states of files that will never be sent (None: the spool has no such file): the
# event message declares them dropped.
GIVEN_UP: frozenset[str | None] = frozenset({"dropped", "rejected", None})


class AckHandler:
    """Applies acks from the central to `spool` and `tracker`, counting them in `counters`."""

    def __init__(self, spool: Spool, tracker: DeliveryTracker, counters: Counter[str]) -> None:
        self.spool = spool
        self.tracker = tracker
        self.counters = counters
        self._inbox: queue.Queue[wire.Ack] = queue.Queue()
        # What the last event message of a bundle declared dropped (worker thread only).
        self._declared_dropped: dict[BundleKey, frozenset[str]] = {}

    def receive(self, ack: wire.Ack) -> None:
        """Queue an ack for the worker thread (called from paho's network thread)."""
        self._inbox.put(ack)

    def declared_dropped(self, key: BundleKey, dropped: frozenset[str]) -> None:
        """Remember that the event message just sent for `key` declared `dropped` (worker thread)."""
        self._declared_dropped[key] = dropped

    def forget_finished(self, listed: set[BundleKey]) -> None:
        """Forget the declarations of bundles not in `listed` that are no longer pending."""
        for key in [k for k in self._declared_dropped if k not in listed]:
            if self.spool.bundle_state(*key) != "pending":
                del self._declared_dropped[key]  # dropped by the quota or finished meanwhile

    def handle_received(self) -> None:
        """Apply every ack received so far (worker thread)."""
        pending: list[PendingBundle] | None = None
        while True:
            try:
                ack = self._inbox.get_nowait()
            except queue.Empty:
                return
            if ack.ref_type == "file":
                self._handle_file_ack(ack)
                pending = None
                continue
            if pending is None:
                pending = self.spool.pending()
            self._handle_event_ack(ack, pending)
            pending = None

    def _handle_file_ack(self, ack: wire.Ack) -> None:
        self.counters[f"file_acks_{ack.status}"] += 1
        if ack.status == "ok":
            self.spool.mark_file_acked(ack.ref)
        elif ack.status == "rejected":
            log.warning("uplink: the central rejected file %s: %s", ack.ref, ack.reason)
            self.spool.mark_file_rejected(ack.ref, ack.reason)
        else:
            for bundle in self.spool.pending():
                if any(f.sha256 == ack.ref for f in bundle.files):
                    self.tracker.resend_now(bundle.key)

    def _handle_event_ack(self, ack: wire.Ack, pending: list[PendingBundle]) -> None:
        self.counters[f"event_acks_{ack.status}"] += 1
        bundle = self.tracker.bundle_for(ack, pending)
        if bundle is None:
            log.debug("uplink: ack for event %s matches nothing pending (a duplicate)", ack.ref)
            self.counters["unmatched_acks"] += 1
            return
        if ack.status == "ok":
            self.spool.mark_event_acked(*bundle.key)
            self._forget(bundle.key)
            log.info(
                "uplink: event %s/%s delivered (work order %s)%s",
                bundle.event_id,
                bundle.kind,
                ack.work_order,
                f": {ack.reason}" if ack.reason else "",
            )
        elif ack.status == "rejected":
            log.warning(
                "uplink: the central rejected event %s/%s: %s", bundle.event_id, bundle.kind, ack.reason
            )
            self.spool.mark_rejected(*bundle.key, ack.reason)
            self._forget(bundle.key)
        else:
            gone = [sha for sha in ack.missing if self.spool.file_state(sha) != "pending"]
            declared = self._declared_dropped.get(bundle.key, frozenset())
            undeclared = [
                sha for sha in gone if sha not in declared and self.spool.file_state(sha) in GIVEN_UP
            ]
            if gone and len(undeclared) < len(gone):
                # Acked and deleted, or declared dropped and still asked for (a central that does
                # not take the claim): nothing more can be sent.
                reason = f"the central misses files the spool no longer holds: {', '.join(gone)}"
                log.warning(
                    "uplink: event %s/%s cannot be completed: %s", bundle.event_id, bundle.kind, reason
                )
                self.spool.mark_rejected(*bundle.key, reason)
                self._forget(bundle.key)
            else:
                # Files still held go again; files given up since the last send are declared then.
                self.tracker.resend_now(bundle.key)

    def _forget(self, key: BundleKey) -> None:
        self.tracker.forget(key)
        self._declared_dropped.pop(key, None)
