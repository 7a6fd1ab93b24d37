"""Reassembly when several central instances share one broker, one database and one data directory.

With `broker.shared_group` the broker spreads one transfer's init, segments and fin over the
instances, so no instance may keep a transfer's progress to itself between messages:

- Every segment is written at its offset into the one partial file (incoming/ is shared), and
  at the end of each batch, *before* the batch's PUBACKs, the partial file is fdatasync'ed and
  the ranges written are merged into the `transfers` row inside BEGIN IMMEDIATE (the write
  lock orders the instances, so a merge never loses another instance's ranges). What the broker
  forgets is therefore always durable and visible to every other instance.
- Whoever makes the row cover every byte while the fin is recorded (the fin's own instance, or
  the instance committing the last segments after it) completes the file in that transaction:
  it hashes the file as it is on disk (no instance saw every segment, so there is no in-memory
  hash), moves it into the evidence store and deletes the row. Only that instance acks `file ok`.
- Another instance may not have committed yet what a message needs: an init (for a segment),
  the last segments (for a fin). Then NotYet: the consumer keeps the message unacked and retries
  it; only after its grace period does it get the answer an instance alone would give
  (`file missing`, after which the edge sends the file again).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from central.evidence_store import ContentStore, sha256_of_file
from central.ingest.assembler import FileAssembler
from central.ingest.partial_files import write_segment
from central.ingest.ranges import Ranges, add_range, covers, gaps
from central.ingest.refusal import NotYet, Refusal
from central.ingest.transfers import FileResult, describe_gaps, new_transfer_row
from central.store.transactions import immediate
from central.timefmt import Clock, utc_iso
from wire.messages import MAX_SEGMENT_BYTES, FileInit
from wire.topics import Topic

__all__ = ["SharedFileAssembler"]

log = logging.getLogger("central.ingest")

_Key = tuple[str, str]  # (device, sha256)
_MAX_REMEMBERED = 4096


def _fdatasync(path: Path) -> bool:
    """fdatasync `path`; False when it is gone (another instance completed the file meanwhile)."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return False
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)
    return True


class SharedFileAssembler(FileAssembler):
    def __init__(
        self,
        db: Database,
        evidence: ContentStore,
        quarantine: ContentStore,
        incoming_dir: Path,
        *,
        max_file_bytes: int,
        clock: Clock,
    ) -> None:
        super().__init__(db, evidence, quarantine, incoming_dir, max_file_bytes=max_file_bytes, clock=clock)
        # A transfer's announced metadata never changes while its row exists: cached to check segments.
        self._meta: dict[_Key, dict[str, Any]] = {}
        self._pending: dict[_Key, Ranges] = {}  # written in this batch, not yet merged into the row

    # -- rows -------------------------------------------------------------------------------------

    def _read_row(self, device: str, sha256: str) -> dict[str, Any] | None:
        cursor = self.db.conn.execute("SELECT * FROM transfers WHERE device_id = ? AND sha256 = ?", [device, sha256])
        found = cursor.fetchone()
        return None if found is None else dict(zip([c[0] for c in cursor.description], found, strict=True))

    def _meta_of(self, device: str, sha256: str) -> dict[str, Any] | None:
        meta = self._meta.get((device, sha256))
        if meta is None:
            meta = self._read_row(device, sha256)
            if meta is None:
                return None
            if len(self._meta) >= _MAX_REMEMBERED:
                self._meta.clear()
            self._meta[(device, sha256)] = meta
        return meta

    def _transfer(self, device: str, sha256: str) -> dict[str, Any] | None:
        return self._meta_of(device, sha256)

    def _insert_transfer(self, topic: Topic, init: FileInit, now: float) -> None:
        row = new_transfer_row(topic, init, now)
        # OR IGNORE: another instance may insert the same init at the same moment; on_init's
        # caller compared the metadata already, and a conflicting row is caught by the next message.
        self.db.execute(
            f"INSERT OR IGNORE INTO transfers ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
            list(row.values()),
        )

    def _drop_transfer(self, device: str, sha256: str) -> None:
        self._meta.pop((device, sha256), None)
        self._pending.pop((device, sha256), None)
        super()._drop_transfer(device, sha256)

    # -- segments and fins ------------------------------------------------------------------------

    def on_segment(self, topic: Topic, payload: bytes) -> FileResult | None:
        assert topic.file_sha256 is not None and topic.offset is not None
        sha, offset = topic.file_sha256, topic.offset
        meta = self._meta_of(topic.device, sha)
        if meta is None:
            if self._stored(sha):
                return FileResult(sha, "ok", duplicate=True)
            no_init = Refusal("segment_without_init", f"segment at offset {offset} of file {sha}: no init received")
            raise NotYet(f"the init of file {sha} is not committed yet", fallback=no_init)
        size = int(meta["size"])
        if not payload:
            raise Refusal("empty_segment", f"segment at offset {offset} of file {sha} is empty")
        if len(payload) > MAX_SEGMENT_BYTES:
            raise Refusal("segment_too_large", f"segment of {len(payload)} bytes is over {MAX_SEGMENT_BYTES}")
        end = offset + len(payload)
        if end > size:
            raise Refusal(
                "segment_beyond_size", f"segment {offset}-{end} of file {sha} lies beyond its announced size {size}"
            )
        if (topic.site, topic.camera) != (meta["site"], meta["camera"]):
            raise Refusal("topic_mismatch", f"segment of file {sha} on another camera's topic than its init")
        partial = self._partial_path(topic.device, sha)
        if partial.parent not in self._folders:
            partial.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(partial.parent)
        write_segment(partial, offset, payload)
        key = (topic.device, sha)
        self._pending[key] = add_range(self._pending.get(key, []), offset, end)
        return None  # merged into the row, and maybe completed, at the end of the batch

    def on_fin(self, topic: Topic, *, retry: bool = False) -> FileResult | None:
        assert topic.file_sha256 is not None and topic.size is not None
        sha = topic.file_sha256
        # After a NotYet, a file found stored was completed (and acked) by whoever committed its last bytes.
        stored_ack = None if retry else FileResult(sha, "ok", duplicate=True)
        meta = self._meta_of(topic.device, sha)
        if meta is None:
            if self._stored(sha):
                return stored_ack
            raise NotYet(
                f"no transfer of file {sha} committed yet",
                fallback=FileResult(sha, "missing", "no transfer of this file in progress: send init and segments"),
            )
        size = int(meta["size"])
        if topic.size != size:
            saved = self._quarantine_partial(topic.device, sha)
            self._drop_transfer(topic.device, sha)
            raise Refusal(
                "file_size_mismatch",
                f"fin says {topic.size} bytes, the init said {size}",
                ack=("file", sha),
                saved_sha256=saved,
            )
        outcome = self._merge(topic.device, sha, fin=True)
        if isinstance(outcome, FileResult):
            return outcome
        if outcome is None:  # the row is gone: completed by another instance, or dropped
            if self._stored(sha):
                return stored_ack
            return FileResult(sha, "missing", "no transfer of this file in progress: send init and segments")
        raise NotYet(
            f"file {sha}: waiting for other instances' segments",
            fallback=FileResult(sha, "missing", describe_gaps(gaps(outcome, size))),
        )

    # -- the end of a batch -----------------------------------------------------------------------

    def flush_pending(self) -> list[tuple[str, str, FileResult | Refusal]]:
        """Merge every range written in this batch into its row; return the files this completed."""
        done: list[tuple[str, str, FileResult | Refusal]] = []
        for device, sha in list(self._pending):
            try:
                outcome = self._merge(device, sha, fin=False)
            except Refusal as refusal:
                done.append((device, sha, refusal))
                continue
            if isinstance(outcome, FileResult):
                done.append((device, sha, outcome))
        return done

    def checkpoint_all(self) -> None:
        self.flush_pending()

    def note_filed(self, sha256s: list[str]) -> None:
        """Another instance may have stored these files moments ago: make their names durable before
        this instance's `event ok` too (cheap when that instance has already done it)."""
        self._names_to_sync.extend(self.evidence.path_for(sha) for sha in sha256s)

    def _merge(self, device: str, sha: str, *, fin: bool) -> FileResult | Ranges | None:
        """Merge this batch's ranges (and the fin) into the row; complete the file when that covers it.

        Returns the completed file's result, else the ranges now recorded, or None when the row is gone.
        """
        key = (device, sha)
        pending = self._pending.pop(key, [])
        partial = self._partial_path(device, sha)
        if pending and not _fdatasync(partial):
            pending = []  # the file was completed and moved meanwhile: these were duplicates
        refusal: Refusal | None = None
        with immediate(self.db):
            row = self._read_row(device, sha)
            if row is None:
                self._meta.pop(key, None)
                if pending and self._stored(sha):
                    partial.unlink(missing_ok=True)  # a late duplicate made a new partial file
                return None
            ranges: Ranges = [(int(s), int(e)) for s, e in json.loads(row["ranges"])]
            for start, end in pending:
                ranges = add_range(ranges, start, end)
            fin_seen = bool(row["fin_seen"]) or fin
            if fin_seen and covers(ranges, int(row["size"])):
                result, refusal = self._complete_locked(device, sha, row)
            else:
                self.db.execute(
                    "UPDATE transfers SET ranges = ?, fin_seen = ?, updated_at = ? WHERE device_id = ? AND sha256 = ?",
                    [json.dumps(ranges), int(fin_seen), utc_iso(self.clock()), device, sha],
                )
                return ranges
        if refusal is not None:
            raise refusal  # after the commit: the partial is in quarantine and the row is gone
        return result

    def _complete_locked(self, device: str, sha: str, row: dict[str, Any]) -> tuple[FileResult, Refusal | None]:
        """Inside the write lock: check the whole file as it is on disk, store it, delete the row."""
        size = int(row["size"])
        partial = self._partial_path(device, sha)
        if not partial.exists():
            self._drop_transfer(device, sha)
            log.error("partial file %s vanished before it was complete; asking the edge to resend", partial)
            return FileResult(sha, "missing", "the central lost the partial file: send it again"), None
        actual, actual_size = sha256_of_file(partial)
        if actual != sha or actual_size != size:
            self.quarantine.adopt(partial, actual)
            self._drop_transfer(device, sha)
            refusal = Refusal(
                "file_hash_mismatch",
                f"file {sha}: the {actual_size} bytes received hash to {actual}",
                ack=("file", sha),
                saved_sha256=actual,
            )
            return FileResult(sha, "missing"), refusal
        self._store(device, sha, size, row)  # a savepoint inside this instance's write lock
        return FileResult(sha, "ok"), None
