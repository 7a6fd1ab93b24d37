"""One incoming MQTT message in, the acks to send out. Independent of the MQTT client.

`handle` never raises: bad input becomes a Refusal (quarantine row, counter, one log line and,
when the device is known, a 'rejected' ack); an unexpected error is handled the same way under
the reason 'internal_error'. Acks are returned only after the database committed. An event
message is verified and filed by central.ingest.event_filing; this module routes and answers.

With `broker.shared_group` (several central instances) the consumer calls `handle_or_defer`:
a message that needs what another instance has not committed yet (NotYet) is answered None,
and the consumer tries it again until its grace period is over (central.ingest.shared_assembly).
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from sqlite_utils import Database

from central.caseflow.flow import CaseFlow
from central.config import CentralConfig
from central.counters import Counters
from central.devices.registry import DeviceRegistry, DeviceTrust
from central.evidence_store import ContentStore
from central.ingest.assembler import FileAssembler
from central.ingest.event_filing import EventFiler
from central.ingest.refusal import NotYet, Refusal
from central.ingest.shared_assembly import SharedFileAssembler
from central.ingest.transfers import FileResult
from central.ingest.verify import parse_json_object
from central.store.devices import record_stats, record_status
from central.store.quarantine import record_quarantine
from central.timefmt import Clock
from wire.errors import WireError
from wire.messages import Ack, Availability, Stats
from wire.topics import Topic, TopicKind, ack_topic, parse_topic

__all__ = ["IngestHandler", "Outgoing"]

log = logging.getLogger("central.ingest")

# The counter each kind of message received counts in (names built once, not per message).
_RECEIVED_COUNTER = {kind: f"received.{kind.value}" for kind in TopicKind}


@dataclass(frozen=True)
class Outgoing:
    topic: str
    payload: bytes


class IngestHandler:
    def __init__(
        self,
        config: CentralConfig,
        db: Database,
        counters: Counters,
        clock: Clock,
        on_notification: Callable[[], None] | None = None,
        case_flow: CaseFlow | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.counters = counters
        self.clock = clock
        self.evidence = ContentStore(config.evidence_dir)
        self.quarantine_store = ContentStore(config.quarantine_dir)
        self.shared = config.broker.shared_group is not None
        self.assembler = (SharedFileAssembler if self.shared else FileAssembler)(
            db,
            self.evidence,
            self.quarantine_store,
            config.incoming_dir,
            max_file_bytes=config.limits.max_file_bytes,
            clock=clock,
        )
        # The filing rules, deadlines and who hears of it (central.caseflow).
        self.case_flow = case_flow or CaseFlow(config, clock=clock)
        # Verifying and filing event messages (central.ingest.event_filing). It holds these very
        # objects (connection, evidence store, assembler, case flow): replace none of them later.
        self.event_filer = EventFiler(
            db, counters, clock, self.evidence, self.assembler, self.case_flow, shared=self.shared
        )
        # Enrolled keys, read for every message: the CLI may enrol or revoke while we run.
        self.devices = DeviceRegistry(db, clock)
        self.devices.sync_config(config.devices)
        self._on_notification = on_notification  # wakes the notifier after a commit that queued messages
        self._notify_pending = False
        # Batches handled but not yet durable: (stored files whose folders need an fsync, notify?).
        self._sealed: deque[tuple[list[Path], bool]] = deque()
        self._patient = False  # NotYet defers the message (True) or gets its fallback answer (False)
        self._retry = False  # the message was deferred before
        # Each device's trust, read once per batch: a key enrolled or revoked meanwhile counts from
        # the next batch on (milliseconds later). Saves a statement per message.
        self._trust_this_batch: dict[str, DeviceTrust | None] = {}

    # -- entry point ------------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes, *, defer: bool = False) -> list[Outgoing]:
        """Handle one message; return the acks to publish, which may go out at once.

        `defer=True` (the consumer's group commit): the caller calls `end_of_batch()` after the
        batch's last message, makes the batch's commits durable, and then calls `after_commit()`
        before it publishes any of the acks.
        """
        out = self._handle(topic, payload) or []  # not patient: never deferred
        if not defer:
            out.extend(self.end_of_batch())
            self.after_commit()
        return out

    def handle_or_defer(self, topic: str, payload: bytes, *, patient: bool, retry: bool) -> list[Outgoing] | None:
        """The consumer's entry point: like handle(defer=True), or None to try again later (see the module doc).

        `patient`: the message may still wait; `retry`: it waited before.
        """
        self._patient, self._retry = patient, retry
        try:
            return self._handle(topic, payload)
        finally:
            self._patient = self._retry = False

    def end_of_batch(self) -> list[Outgoing]:
        """Before the batch's commits are made durable: commit what the assembler holds for the batch.

        Several instances: this batch's ranges, and the files they complete (acked here).
        """
        self._trust_this_batch.clear()
        self.assembler.raise_completion_failure()  # a file acked 'ok' was not stored: fail the batch
        out: list[Outgoing] = []
        for device, sha, result in self.assembler.flush_pending():
            if isinstance(result, Refusal):
                out.extend(self._refuse(result, f"(file {sha} of {device})", device, b""))
            else:
                out.extend(self._file_ack(device, result))
        return out

    def seal_batch(self) -> None:
        """The batch's commits are done (not yet durable): set aside what its `after_commit` must do.

        The consumer's pipeline calls this on the ingest thread, then `after_commit()` on its
        durability thread once the WAL is fsynced, while the ingest thread goes on with the next
        batch. Sealed batches are finished in order, one `after_commit()` each.
        """
        self._sealed.append((self.assembler.take_stored(), self._notify_pending))
        self._notify_pending = False

    def discard_sealed(self) -> None:
        """The oldest sealed batch could not be made durable: nothing of it is synced or notified."""
        if self._sealed:
            self._sealed.popleft()

    def after_commit(self) -> None:
        """Finish what waits for durable commits: make stored files' names durable, wake the notifier.

        Applies to the oldest batch sealed by `seal_batch` (sealing the current one first if none is).
        Touches no database connection, so it may run on another thread than the handling.
        """
        if not self._sealed:
            self.seal_batch()
        stored, notify = self._sealed.popleft()
        self.assembler.sync_folders(stored)
        if notify and self._on_notification is not None:
            self._on_notification()

    def _handle(self, topic: str, payload: bytes) -> list[Outgoing] | None:
        if not self._retry:
            self.counters.inc("received")
        try:
            t = parse_topic(topic)
        except WireError as exc:
            return self._refuse(Refusal("bad_topic", str(exc)), topic, None, payload)
        try:
            return self._dispatch(t, payload)
        except NotYet as wait:  # raised only while patient
            self.counters.inc("deferred")
            log.debug("deferred %s: %s", topic, wait.detail)
            return None
        except Refusal as refusal:
            return self._refuse(refusal, topic, t.device, payload)
        except Exception as exc:
            # A bug or a full disk: keep the payload and go on serving everything else.
            log.debug("internal error on %s", topic, exc_info=True)
            internal = Refusal("internal_error", f"{type(exc).__name__}: {exc}")
            return self._refuse(internal, topic, t.device, payload)

    def _dispatch(self, t: Topic, payload: bytes) -> list[Outgoing]:
        if not self._retry:
            self.counters.inc(_RECEIVED_COUNTER[t.kind])
        known = self._trust(t.device)
        if t.kind is TopicKind.EVENT:
            return self._event(t, payload, known)
        if known is None:
            raise Refusal("unknown_device", f"device {t.device!r} is not enrolled")
        if known.revoked:
            raise Refusal("revoked_key", f"every key of device {t.device!r} is revoked")
        if t.kind is TopicKind.STATUS:
            self._status(t, payload)
            return []
        if t.kind is TopicKind.STATS:
            self._stats(t, payload)
            return []
        if t.kind is TopicKind.ACK:
            raise Refusal("bad_topic", "the ack topic is central -> edge only")
        if not known.allows_site(t.site):
            raise Refusal(
                "site_not_allowed", f"device {t.device!r} belongs to site(s) {known.sites}, not {t.site!r}"
            )
        try:
            if t.kind is TopicKind.FILE_INIT:
                result = self.assembler.on_init(t, payload)
            elif t.kind is TopicKind.FILE_SEGMENT:
                result = self.assembler.on_segment(t, payload)
                if result is not None and result.duplicate:
                    self.counters.inc("segment_duplicates")
                    return []  # one ack per file, not one per late segment
            else:
                result = self.assembler.on_fin(t, retry=self._retry)
        except NotYet as wait:
            if self._patient:
                raise
            if isinstance(wait.fallback, Refusal):
                raise wait.fallback from None
            assert isinstance(wait.fallback, FileResult)
            result = wait.fallback
        return self._file_ack(t.device, result)

    def _file_ack(self, device: str, result: FileResult | None) -> list[Outgoing]:
        if result is None:
            return []
        if result.status == "ok":
            self.counters.inc("file_duplicates" if result.duplicate else "files_stored")
        else:
            self.counters.inc("files_incomplete")
            log.info("file %s from %s not complete yet: %s", result.sha256, device, result.reason)
        return [
            self._ack(
                device,
                Ack(
                    ref_type="file",
                    ref=result.sha256,
                    status=result.status,
                    reason=result.reason,
                    missing=[result.sha256] if result.status == "missing" else [],
                ),
            )
        ]

    def _trust(self, device: str) -> DeviceTrust | None:
        if device not in self._trust_this_batch:
            if len(self._trust_this_batch) >= 64:  # a batch of made-up device ids
                self._trust_this_batch.clear()
            self._trust_this_batch[device] = self.devices.trust(device)
        return self._trust_this_batch[device]

    # -- per kind ---------------------------------------------------------------------------------

    def _status(self, t: Topic, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained message
        body = parse_json_object(payload, "status")
        try:
            status = Availability.model_validate(body)
        except ValidationError as exc:
            raise Refusal("invalid_status", f"status breaks the contract: {exc.errors()[0]['msg']}") from None
        record_status(self.db, t.device, status, self.clock())

    def _stats(self, t: Topic, payload: bytes) -> None:
        body = parse_json_object(payload, "stats")
        try:
            stats = Stats.model_validate(body)
        except ValidationError as exc:
            raise Refusal("invalid_stats", f"stats break the contract: {exc.errors()[0]['msg']}") from None
        record_stats(self.db, t.device, stats, self.clock())

    def _event(self, t: Topic, payload: bytes, device: DeviceTrust | None) -> list[Outgoing]:
        filed = self.event_filer.file(t, payload, device, patient=self._patient)
        if filed.notices:
            self._notify_pending = True  # woken in after_commit: the notifier must see the commit
        return [self._ack(t.device, filed.ack)]

    # -- replies and refusals ---------------------------------------------------------------------

    def _ack(self, device: str, ack: Ack) -> Outgoing:
        self.counters.inc(f"acks.{ack.status}")
        return Outgoing(ack_topic(device), ack.model_dump_json().encode())

    def _refuse(self, refusal: Refusal, topic: str, device: str | None, payload: bytes) -> list[Outgoing]:
        self.counters.inc("quarantined")
        self.counters.inc(f"quarantined.{refusal.reason}")
        log.warning(
            "refused %s: %s [topic %s, %d bytes]", refusal.reason, refusal.detail, topic[:300], len(payload)
        )
        payload_sha = refusal.saved_sha256 or hashlib.sha256(payload).hexdigest()
        saved = refusal.saved_sha256 is not None
        try:
            if not saved and 0 < len(payload) <= self.config.limits.quarantine_payload_bytes:
                self.quarantine_store.put_bytes(payload)
                saved = True
            record_quarantine(
                self.db,
                reason=refusal.reason,
                detail=refusal.detail,
                topic=topic,
                device_id=device,
                payload_sha256=payload_sha,
                payload_bytes=len(payload),
                saved=saved,
                now=self.clock(),
            )
        except Exception as exc:  # the log line above is then the only record; keep serving
            self.counters.inc("quarantine_write_errors")
            log.error("could not record the refusal of %s: %s: %s", topic[:300], type(exc).__name__, exc)
        known = device is not None and self.devices.trust(device) is not None
        if refusal.ack is None or not known:
            return []
        assert device is not None
        ref_type, ref = refusal.ack
        kind = refusal.kind if ref_type == "event" else None
        return [
            self._ack(
                device, Ack(ref_type=ref_type, ref=ref, kind=kind, status="rejected", reason=refusal.detail)
            )
        ]
