"""Filing one signed event message: verify it, find its files, file it once, say what to answer.

The handler (central.ingest.handler) routes every message kind and turns results into acks and
refusals; an event is the one kind whose handling is a procedure of its own: the signature check,
the duplicate check (again under the write lock, since another central instance may file the same
message meanwhile), the lookup of the files it cites, the edge's declared drops, and the filing by
the case flow inside BEGIN IMMEDIATE. It lives here, apart from the routing, so that the filing
rules read in one place. A Refusal or NotYet raised here reaches the handler unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from sqlite_utils import Database

from central.caseflow.flow import CaseFlow
from central.counters import Counters
from central.devices.registry import DeviceTrust
from central.evidence_store import ContentStore
from central.ingest.assembler import FileAssembler
from central.ingest.refusal import NotYet, Refusal
from central.ingest.verify import VerifiedEvent, verify_event
from central.store.evidence import evidence_file
from central.store.transactions import immediate
from central.store.work_orders import filed_message, message_id
from central.timefmt import Clock
from wire.messages import Ack
from wire.topics import Topic

__all__ = ["EventFiler", "FiledEvent"]

log = logging.getLogger("central.ingest")


@dataclass(frozen=True)
class FiledEvent:
    """The ack to send for an event message, and whether its filing queued notices."""

    ack: Ack
    notices: bool = False  # the notifier is to be woken once the commit is durable


class EventFiler:
    def __init__(
        self,
        db: Database,
        counters: Counters,
        clock: Clock,
        evidence: ContentStore,
        assembler: FileAssembler,
        case_flow: CaseFlow,
        *,
        shared: bool,
    ) -> None:
        self.db = db
        self.counters = counters
        self.clock = clock
        self.evidence = evidence
        self.assembler = assembler
        self.case_flow = case_flow
        self.shared = shared  # several central instances (broker.shared_group)

    def file(self, t: Topic, payload: bytes, device: DeviceTrust | None, *, patient: bool) -> FiledEvent:
        """Verify and file the event; `patient`: missing files may still come from another instance (NotYet)."""
        v = verify_event(t, payload, device)
        m = v.message.manifest
        msg_id = message_id(v.manifest_json)

        def ack(status: Literal["ok", "missing"], *, notices: bool = False, **extra: Any) -> FiledEvent:
            return FiledEvent(Ack(ref_type="event", ref=m.event_id, kind=m.kind, status=status, **extra), notices)

        previous = filed_message(self.db, msg_id)
        if previous is not None:
            # The same signed message again (a redelivery, or the edge resending after a lost ack).
            self.counters.inc("event_duplicates")
            return ack("ok", work_order=previous["work_order_id"])
        self.assembler.finish_completing()  # the files whose fsync still runs are looked up next
        absent = self._missing_files(v)
        # The edge's unsigned claim that it gave some files up: taken only for files the manifest
        # lists (wire.EventMessage checks that) and the store does not hold (a held one is filed).
        declared = set(v.message.dropped)
        dropped = [sha for sha in absent if sha in declared]
        missing = [sha for sha in absent if sha not in declared]
        if missing and self.shared and patient:
            # Another instance may be completing them right now: look again shortly.
            raise NotYet(f"event {m.event_id} waits for {len(missing)} file(s)", fallback=None)
        if missing:
            self.counters.inc("events_missing_files")
            log.info("event %s (%s) from %s waits for %d file(s)", m.event_id, m.kind, t.device, len(missing))
            return ack("missing", reason=f"{len(missing)} file(s) not received yet", missing=missing)
        now = self.clock()
        # IMMEDIATE: take the write lock before reading, so a commit by the notifier or the sweep
        # in between cannot fail this transaction (a deferred one cannot upgrade its snapshot).
        with immediate(self.db):
            # Checked again under the write lock: another central instance may have filed this
            # very message since the check above (the transaction decides who files it).
            previous = filed_message(self.db, msg_id)
            if previous is not None:
                self.counters.inc("event_duplicates")
                return ack("ok", work_order=previous["work_order_id"])
            filing, notices = self.case_flow.file_event(
                self.db,
                m,
                manifest_json=v.manifest_json,
                signature=v.message.signature,
                key_id=v.message.key_id,
                received_at=now,
                missing=dropped,
            )
        self.counters.inc("events_filed")
        if self.shared:
            self.assembler.note_filed([f.sha256 for f in m.files if f.sha256 not in dropped])
        if filing.opened:
            self.counters.inc("work_orders_opened")
        if filing.closed:
            self.counters.inc("work_orders_closed")
        if filing.reopened:
            self.counters.inc("work_orders_reopened")
        log.info(
            "filed %s event %s from %s/%s/%s zone %s -> %s",
            m.kind,
            m.event_id,
            m.device_id,
            m.site,
            m.camera,
            m.zone,
            filing.work_order_id or "no work order",
        )
        if dropped:
            self.counters.inc("events_filed_with_dropped_files")
            self.counters.inc("evidence_files_dropped", len(dropped))
            log.warning(
                "event %s (%s) from %s filed without %d file(s) the edge dropped: %s",
                m.event_id,
                m.kind,
                t.device,
                len(dropped),
                ", ".join(dropped),
            )
        reason = f"filed without {len(dropped)} file(s) the edge dropped" if dropped else ""
        return ack("ok", notices=bool(notices), work_order=filing.work_order_id, reason=reason)

    def _missing_files(self, v: VerifiedEvent) -> list[str]:
        missing: list[str] = []
        for f in v.message.manifest.files:
            row = evidence_file(self.db, f.sha256)
            if row is not None and int(row["size"]) != f.size:
                raise Refusal(
                    "file_size_mismatch",
                    f"manifest says file {f.sha256} has {f.size} bytes, the stored file has {row['size']}",
                    ack=("event", v.message.manifest.event_id),
                    kind=v.message.manifest.kind,
                )
            if row is None or not self.evidence.has(f.sha256, f.size):
                missing.append(f.sha256)
        return missing
