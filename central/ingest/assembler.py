"""Reassembly of file transfers on disk, idempotent and restart-safe.

A transfer is keyed by (device, sha256). Each segment is written at its offset into
incoming/<device>/<sha256>.part. Its byte range is kept in memory and made durable at a
checkpoint: the partial file is fsynced *before* the ranges are committed to the `transfers` row,
so after a crash the recorded ranges never claim bytes that are not on disk. Duplicate and
out-of-order segments are harmless. When every byte is there and the fin has arrived, the file's
size and sha256 are checked and it moves (fsynced) into the evidence store, or into quarantine
if the hash is wrong.

Why segments are not made durable one by one: nothing is promised per segment. The edge keeps a
file until the central's `file ok` ack, which comes only after the file is complete, fsynced in
the evidence store and committed. A crash loses at most the ranges since the last checkpoint;
the fin (redelivered by the broker, or resent by the edge after its ack timeout) then finds gaps
and answers `file missing`, and the edge sends the file again. Checkpoints happen at the fin and
every CHECKPOINT_BYTES, which bounds what a crash in the middle of a large file costs. (An fsync
plus a commit per 256 KiB segment used to be most of the central's ingest time.)

For the same reason the `transfers` rows (an init, a checkpoint's ranges) are committed without
waiting for the disk (`synchronous=NORMAL` for that commit): a power loss may roll them back,
which only makes the central claim fewer bytes than it holds. What precedes an ack (the evidence
row of a complete file, and the event's filing in the handler) is committed with the connection's
own setting (FULL), and that commit makes every earlier one durable too.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlite_utils import Database

from central.evidence_store import ContentStore, sha256_of_file
from central.ingest.partial_files import OpenPartials, PendingStore, TransferProgress, start_fsync
from central.ingest.ranges import Ranges, covers, gaps
from central.ingest.refusal import AckRef, Refusal
from central.ingest.transfers import FileResult, describe_gaps, new_transfer_row
from central.store.evidence import evidence_file, record_evidence_file
from central.timefmt import Clock, utc_iso
from wire.messages import MAX_SEGMENT_BYTES, FileInit
from wire.topics import Topic

# FileResult: re-exported, it is what FileAssembler answers (tests import it from here).
__all__ = ["CHECKPOINT_BYTES", "FileAssembler", "FileResult"]

CHECKPOINT_BYTES = 8 * 1024 * 1024
# Transfers kept in memory at most; beyond, checkpointed ones are forgotten (their rows are in
# the database) so that transfers an edge abandoned do not pile up.
_MAX_REMEMBERED = 4096

log = logging.getLogger("central.ingest")


class FileAssembler:
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
        self.db = db
        self.evidence = evidence
        self.quarantine = quarantine
        self.incoming_dir = incoming_dir
        self.max_file_bytes = max_file_bytes
        self.clock = clock
        self._progress: dict[tuple[str, str], TransferProgress] = {}
        self._names_to_sync: list[Path] = []  # stored files whose folder is not fsynced yet
        self._folders: set[Path] = set()  # incoming/<device> folders known to exist
        self._completing: dict[str, PendingStore] = {}  # verified files waiting for their fsync, by sha256
        self._completion_failure: Exception | None = None
        self._open = OpenPartials()  # only this class's own on_segment writes through it
        self.relaxed = False  # set by the consumer while its batch runs with synchronous=NORMAL

    # -- paths and rows ---------------------------------------------------------------------------

    def _partial_path(self, device: str, sha256: str) -> Path:
        # Both parts were checked by wire.parse_topic: an id and 64 hex digits.
        return self.incoming_dir / device / f"{sha256}.part"

    def _progress_of(self, device: str, sha256: str) -> TransferProgress | None:
        """The transfer in memory, or loaded from its row (after a restart); None when there is none."""
        progress = self._progress.get((device, sha256))
        if progress is not None:
            return progress
        cursor = self.db.conn.execute("SELECT * FROM transfers WHERE device_id = ? AND sha256 = ?", [device, sha256])
        found = cursor.fetchone()
        if found is None:
            return None
        progress = TransferProgress.from_row(dict(zip([c[0] for c in cursor.description], found, strict=True)))
        self._remember(device, sha256, progress)
        return progress

    def _remember(self, device: str, sha256: str, progress: TransferProgress) -> None:
        if len(self._progress) >= _MAX_REMEMBERED:
            for key in [k for k, p in self._progress.items() if p.bytes_since_checkpoint == 0]:
                del self._progress[key]
        self._progress[(device, sha256)] = progress

    def _transfer(self, device: str, sha256: str) -> dict[str, Any] | None:
        progress = self._progress_of(device, sha256)
        return progress.row if progress is not None else None

    @contextlib.contextmanager
    def _no_wait_for_disk(self) -> Iterator[None]:
        """Commits inside are durable at the next FULL commit, or lost to a power cut (see the module doc)."""
        if self.db.conn.in_transaction or self.relaxed:
            # Inside a transaction the setting cannot change: the caller's holds. `relaxed`: the
            # consumer's batch set NORMAL already (three statements saved per init and checkpoint).
            yield
            return
        previous = int(self.db.execute("PRAGMA synchronous").fetchone()[0])
        self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self.db.execute(f"PRAGMA synchronous={previous}")

    def _checkpoint(self, device: str, sha256: str, progress: TransferProgress, *, fin_seen: bool = False) -> None:
        """fsync the partial file, then commit the ranges it holds (and, if given, that the fin came)."""
        partial = self._partial_path(device, sha256)
        ranges: Ranges = progress.ranges
        if ranges and partial.exists():
            self._open.fsync(partial)  # the bytes are durable before the ranges that claim them are committed
        else:
            ranges = progress.ranges = []  # the file is gone: none of it is there
        sets = "ranges = ?, updated_at = ?" + (", fin_seen = 1" if fin_seen else "")
        with self._no_wait_for_disk():
            self.db.execute(
                f"UPDATE transfers SET {sets} WHERE device_id = ? AND sha256 = ?",
                [json.dumps(ranges), utc_iso(self.clock()), device, sha256],
            )
        progress.checkpointed(fin_seen)

    def take_stored(self) -> list[Path]:
        """The files stored since the last call, whose folders `sync_folders` must fsync before their acks."""
        stored, self._names_to_sync = self._names_to_sync, []
        return stored

    def sync_folders(self, stored: list[Path]) -> None:
        """fsync the folders holding `stored` (any thread: it touches no state of the assembler).

        After the first fsync the file system's journal usually has nothing left to write for the others.
        """
        for path in {p.parent: p for p in stored}.values():
            self.evidence.sync_folder(path)

    def flush_pending(self) -> list[tuple[str, str, FileResult | Refusal]]:
        """End of a batch: nothing to do alone (SharedFileAssembler commits the batch's ranges here)."""
        return []

    def note_filed(self, sha256s: list[str]) -> None:
        """An event citing these stored files was filed: nothing to do alone (see SharedFileAssembler)."""

    def checkpoint_all(self) -> None:
        """Make every written range durable: on a clean stop, so a restart need not ask for it again."""
        self.finish_completing()
        for (device, sha256), progress in list(self._progress.items()):
            if progress.bytes_since_checkpoint:
                self._checkpoint(device, sha256, progress)
        self._open.close_all()

    def _drop_transfer(self, device: str, sha256: str) -> None:
        self._open.forget(self._partial_path(device, sha256))
        self._progress.pop((device, sha256), None)
        self.db.execute("DELETE FROM transfers WHERE device_id = ? AND sha256 = ?", [device, sha256])

    def _stored(self, sha256: str) -> bool:
        row = evidence_file(self.db, sha256)
        return row is not None and self.evidence.has(sha256, int(row["size"]))

    def _quarantine_partial(self, device: str, sha256: str) -> str | None:
        """Keep what was received of a refused file, under its actual hash; return that hash."""
        partial = self._partial_path(device, sha256)
        self._open.forget(partial)  # it moves
        if not partial.exists():
            return None
        actual, _ = sha256_of_file(partial)
        self.quarantine.adopt(partial, actual)
        return actual

    # -- the three messages of a transfer ---------------------------------------------------------

    def on_init(self, topic: Topic, payload: bytes) -> FileResult | None:
        assert topic.file_sha256 is not None and topic.site is not None and topic.camera is not None
        sha = topic.file_sha256
        self.finish_completing(sha)  # its fsync may still run: wait for it, then look
        ref: AckRef = ("file", sha)
        try:
            init = FileInit.model_validate_json(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise Refusal(
                "invalid_init", f"file init is not valid: {where}: {first['msg']}", ack=ref
            ) from None
        if init.sha256 != sha:
            raise Refusal(
                "init_mismatch", f"init announces sha256 {init.sha256} on the topic of {sha}", ack=ref
            )
        if init.size > self.max_file_bytes:
            raise Refusal(
                "file_too_large", f"{init.size} bytes is over the limit of {self.max_file_bytes}", ack=ref
            )

        now = self.clock()
        if self.evidence.has(sha, init.size):
            # Already stored (a resend, or a crash between storing and recording): make sure the row exists.
            record_evidence_file(
                self.db,
                sha256=sha,
                size=init.size,
                media_type=init.media_type,
                path=self.evidence.relative_path(sha),
                device_id=topic.device,
                event_id=init.event_id,
                role=init.role,
                name=init.name,
                now=now,
            )
            return FileResult(sha, "ok", duplicate=True)

        existing = self._transfer(topic.device, sha)
        if existing is not None:
            if int(existing["size"]) != init.size or existing["media_type"] != init.media_type:
                raise Refusal(
                    "init_conflict",
                    f"init says {init.size} bytes of {init.media_type}, the transfer in progress says "
                    f"{existing['size']} bytes of {existing['media_type']}",
                )
            return None  # a repeated init: the transfer goes on
        with self._no_wait_for_disk():
            self._insert_transfer(topic, init, now)
        return None

    def _insert_transfer(self, topic: Topic, init: FileInit, now: float) -> None:
        row = new_transfer_row(topic, init, now)
        # Plain SQL: sqlite-utils' insert() looks the table up first, a cost paid for every file.
        self.db.execute(
            f"INSERT INTO transfers ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", list(row.values())
        )
        self._remember(topic.device, init.sha256, TransferProgress(row, []))

    def on_segment(self, topic: Topic, payload: bytes) -> FileResult | None:
        assert topic.file_sha256 is not None and topic.offset is not None
        sha, offset = topic.file_sha256, topic.offset
        self.finish_completing(sha)  # a late segment must not land in a file being stored
        progress = self._progress_of(topic.device, sha)
        if progress is None:
            if self._stored(sha):
                return FileResult(sha, "ok", duplicate=True)
            raise Refusal(
                "segment_without_init", f"segment at offset {offset} of file {sha}: no init received"
            )
        row = progress.row
        size = int(row["size"])
        if not payload:
            raise Refusal("empty_segment", f"segment at offset {offset} of file {sha} is empty")
        if len(payload) > MAX_SEGMENT_BYTES:
            raise Refusal("segment_too_large", f"segment of {len(payload)} bytes is over {MAX_SEGMENT_BYTES}")
        end = offset + len(payload)
        if end > size:
            raise Refusal(
                "segment_beyond_size",
                f"segment {offset}-{end} of file {sha} lies beyond its announced size {size}",
            )
        if (topic.site, topic.camera) != (row["site"], row["camera"]):
            raise Refusal("topic_mismatch", f"segment of file {sha} on another camera's topic than its init")

        partial = progress.partial_path
        if partial is None:  # the transfer's first segment since its init (or a restart)
            path = self._partial_path(topic.device, sha)
            if path.parent not in self._folders:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._folders.add(path.parent)
            partial = progress.partial_path = str(path)
        self._open.write(partial, offset, payload)  # fsynced at the next checkpoint
        progress.wrote(offset, payload)
        if row["fin_seen"] and covers(progress.ranges, size):
            return self._complete(topic.device, sha, size, progress)
        if progress.bytes_since_checkpoint >= CHECKPOINT_BYTES:
            self._checkpoint(topic.device, sha, progress)
        return None

    def on_fin(self, topic: Topic, *, retry: bool = False) -> FileResult | None:
        """`retry`: the same fin again after NotYet (only SharedFileAssembler raises it)."""
        assert topic.file_sha256 is not None and topic.size is not None
        sha = topic.file_sha256
        self.finish_completing(sha)
        progress = self._progress_of(topic.device, sha)
        if progress is None:
            if self._stored(sha):
                return FileResult(sha, "ok", duplicate=True)
            return FileResult(sha, "missing", "no transfer of this file in progress: send init and segments")
        size = int(progress.row["size"])
        if topic.size != size:
            saved = self._quarantine_partial(topic.device, sha)
            self._drop_transfer(topic.device, sha)
            raise Refusal(
                "file_size_mismatch",
                f"fin says {topic.size} bytes, the init said {size}",
                ack=("file", sha),
                saved_sha256=saved,
            )
        if covers(progress.ranges, size):
            return self._complete(topic.device, sha, size, progress)
        ranges = progress.ranges
        self._checkpoint(topic.device, sha, progress, fin_seen=True)
        return FileResult(sha, "missing", describe_gaps(gaps(ranges, size)))

    def _complete(self, device: str, sha: str, size: int, progress: TransferProgress) -> FileResult:
        row = progress.row
        partial = self._partial_path(device, sha)
        self._open.forget(partial)  # it moves into the store or quarantine
        if not partial.exists():
            self._drop_transfer(device, sha)
            log.error("partial file %s vanished before it was complete; asking the edge to resend", partial)
            return FileResult(sha, "missing", "the central lost the partial file: send it again")
        hashed = progress.sha256_of_all(size)
        if hashed is not None and partial.stat().st_size == size:
            actual, actual_size = hashed, size  # hashed as the segments came, in order
        else:
            actual, actual_size = sha256_of_file(partial)
        if actual != sha or actual_size != size:
            self.quarantine.adopt(partial, actual)
            self._drop_transfer(device, sha)
            raise Refusal(
                "file_hash_mismatch",
                f"file {sha}: the {actual_size} bytes received hash to {actual}",
                ack=("file", sha),
                saved_sha256=actual,
            )
        if self.relaxed:
            # Inside the consumer's batch: the fsync runs on a helper while the next messages are
            # handled; the rest waits for it (finish_completing). Nothing is acked before that.
            self._completing[sha] = PendingStore(device, size, row, start_fsync(partial))
            return FileResult(sha, "ok")
        self._store(device, sha, size, row)
        return FileResult(sha, "ok")

    def _store(self, device: str, sha: str, size: int, row: dict[str, Any], *, fsynced: bool = False) -> None:
        """Move the verified partial file into the evidence store and record it."""
        partial = self._partial_path(device, sha)
        self._names_to_sync.append(self.evidence.adopt(partial, sha, sync_dir=False, fsynced=fsynced))
        with self.db.atomic():
            record_evidence_file(
                self.db,
                sha256=sha,
                size=size,
                media_type=row["media_type"],
                path=self.evidence.relative_path(sha),
                device_id=device,
                event_id=row["event_id"],
                role=row["role"],
                name=row["name"],
                now=self.clock(),
            )
            self._drop_transfer(device, sha)

    def finish_completing(self, sha: str | None = None) -> None:
        """Store the verified files whose fsync was started (only `sha`'s, if given); never raises.

        A failure is kept for `raise_completion_failure`: the file's `ok` ack is already in the
        batch's outgoing list, so the whole batch must fail (no acks; the edges resend).
        """
        shas = list(self._completing) if sha is None else [sha] if sha in self._completing else []
        for each in shas:
            c = self._completing.pop(each)
            try:
                c.fsynced.result()  # the helper's fsync: not repeated by adopt
                self._store(c.device, each, c.size, c.row, fsynced=True)
            except Exception as exc:
                log.error("could not store file %s: %s: %s", each, type(exc).__name__, exc)
                self._completion_failure = self._completion_failure or exc

    def raise_completion_failure(self) -> None:
        """End of the batch: store what is left, and raise if any file of the batch failed to."""
        self.finish_completing()
        failure, self._completion_failure = self._completion_failure, None
        if failure is not None:
            raise failure
