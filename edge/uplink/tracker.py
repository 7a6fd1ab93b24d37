"""When to (re)send which bundle, and which bundle an ack is about. No I/O: driven by a clock.

Rules:
- Bundles go oldest first. The messages of one event (confirmed, update, cleared) go one at a
  time: the next is sent only after the central acked (or rejected) the one before, so the central
  sees them in order and an ack without `kind` can only be about the one in flight.
- At most `max_inflight_bundles` events wait for their ack at once; a bundle not acked after
  `ack_timeout` is sent again (same topics, same bytes: the central is idempotent), backing off
  exponentially up to `max_resend_interval` so a central that is down is not flooded.
- After a reconnect, bundles already sent get a fresh `ack_timeout`: the broker may still deliver
  their acks from the persistent session before anything needs resending.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import wire
from edge.spool import PendingBundle

__all__ = ["BundleKey", "DeliveryTracker"]

BundleKey = tuple[str, str]  # (event_id, kind)


@dataclass
class _Flight:
    sent_at: float | None = None  # when the event message last went out; None: never in this process
    next_send_at: float = 0.0
    rounds: int = 0


class DeliveryTracker:
    def __init__(
        self,
        *,
        ack_timeout: float = 10.0,
        max_resend_interval: float = 300.0,
        max_inflight_bundles: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ack_timeout <= 0 or max_resend_interval < ack_timeout or max_inflight_bundles < 1:
            raise ValueError(
                "need ack_timeout > 0, max_resend_interval >= ack_timeout, max_inflight_bundles >= 1"
            )
        self.ack_timeout = ack_timeout
        self.max_resend_interval = max_resend_interval
        self.max_inflight_bundles = max_inflight_bundles
        self._clock = clock
        self._flights: dict[BundleKey, _Flight] = {}

    def due(self, pending: Sequence[PendingBundle]) -> list[PendingBundle]:
        """The bundles of `pending` (oldest first, as the spool lists them) to send now."""
        now = self._clock()
        keys = {b.key for b in pending}
        for gone in [k for k in self._flights if k not in keys]:
            del self._flights[gone]  # acked, rejected or dropped meanwhile
        waiting = sum(1 for f in self._flights.values() if f.sent_at is not None)
        seen_events: set[str] = set()
        out = []
        for bundle in pending:
            if bundle.event_id in seen_events:
                continue  # an older message of the same event is not acked yet
            seen_events.add(bundle.event_id)
            flight = self._flights.get(bundle.key)
            if flight is None or flight.sent_at is None:
                if waiting >= self.max_inflight_bundles:
                    continue
                if flight is None or now >= flight.next_send_at:
                    out.append(bundle)
                    waiting += 1
            elif now >= flight.next_send_at:
                out.append(bundle)
        return out

    def sent(self, key: BundleKey) -> None:
        """The bundle's event message went out (after its files): start waiting for the ack."""
        now = self._clock()
        flight = self._flights.setdefault(key, _Flight())
        flight.rounds += 1
        flight.sent_at = now
        flight.next_send_at = now + min(self.ack_timeout * 2 ** (flight.rounds - 1), self.max_resend_interval)

    def interrupted(self, key: BundleKey) -> None:
        """Sending stopped half-way (connection lost, stopping): send it again as soon as possible."""
        self._flights.setdefault(key, _Flight()).next_send_at = self._clock()

    def resend_now(self, key: BundleKey) -> None:
        """The central said files are missing: send what is not acked again, now."""
        flight = self._flights.setdefault(key, _Flight())
        flight.next_send_at = self._clock()

    def reconnected(self) -> None:
        now = self._clock()
        for flight in self._flights.values():
            if flight.sent_at is not None:
                flight.next_send_at = min(flight.next_send_at, now + self.ack_timeout)
                flight.rounds = 0

    def forget(self, key: BundleKey) -> None:
        self._flights.pop(key, None)

    def awaiting_ack(self) -> int:
        return sum(1 for f in self._flights.values() if f.sent_at is not None)

    def bundle_for(self, ack: wire.Ack, pending: Sequence[PendingBundle]) -> PendingBundle | None:
        """The pending bundle an event ack is about, or None (a duplicate, or an event already done)."""
        same_event = [b for b in pending if b.event_id == ack.ref]
        if ack.kind is not None:
            # Several 'update' messages of one event may be spooled: the one in flight is meant.
            same_event = [b for b in same_event if b.kind == ack.kind]
        # Without `kind` (an older central): the one message of this event in flight is the only
        # candidate, because messages of one event are sent one at a time; else the oldest.
        for bundle in same_event:
            flight = self._flights.get(bundle.key)
            if flight is not None and flight.sent_at is not None:
                return bundle
        return same_event[0] if same_event else None
