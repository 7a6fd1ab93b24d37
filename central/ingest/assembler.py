"""Reassembly of file transfers on disk, idempotent and restart-safe.

A transfer is keyed by (device, sha256). Each segment is written at its offset into
incoming/<device>/<sha256>.part and fsynced *before* its byte range is committed to the
`transfers` row, so after a crash the recorded ranges never claim bytes that are not on disk;
the broker redelivers whatever the central had not acknowledged. Duplicate and out-of-order
segments are harmless. When every byte is there and the fin has arrived, the file's size and
sha256 are checked and it moves into the evidence store, or into quarantine if the hash is wrong.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from sqlite_utils import Database

from central.evidence_store import ContentStore, sha256_of_file
from central.ingest.ranges import Ranges, add_range, covers, gaps
from central.ingest.refusal import AckRef, Refusal
from central.store.evidence import evidence_file, record_evidence_file
from central.timefmt import Clock, utc_iso
from wire.messages import MAX_SEGMENT_BYTES, FileInit
from wire.topics import Topic

__all__ = ["FileAssembler", "FileResult"]

log = logging.getLogger("central.ingest")


@dataclass(frozen=True)
class FileResult:
    """What to tell the edge about one file: stored ('ok') or still needed ('missing')."""

    sha256: str
    status: Literal["ok", "missing"]
    reason: str = ""
    duplicate: bool = False


def _describe_gaps(missing: Ranges, limit: int = 3) -> str:
    parts = [f"{s}-{e}" for s, e in missing[:limit]]
    more = f" and {len(missing) - limit} more" if len(missing) > limit else ""
    return "bytes " + ", ".join(parts) + more + " not received"


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

    # -- paths and rows ---------------------------------------------------------------------------

    def _partial_path(self, device: str, sha256: str) -> Path:
        # Both parts were checked by wire.parse_topic: an id and 64 hex digits.
        return self.incoming_dir / device / f"{sha256}.part"

    def _transfer(self, device: str, sha256: str) -> dict[str, Any] | None:
        rows = list(
            self.db.query("SELECT * FROM transfers WHERE device_id = ? AND sha256 = ?", [device, sha256])
        )
        return rows[0] if rows else None

    def _drop_transfer(self, device: str, sha256: str) -> None:
        self.db.execute("DELETE FROM transfers WHERE device_id = ? AND sha256 = ?", [device, sha256])

    def _stored(self, sha256: str) -> bool:
        row = evidence_file(self.db, sha256)
        return row is not None and self.evidence.has(sha256, int(row["size"]))

    def _quarantine_partial(self, device: str, sha256: str) -> str | None:
        """Keep what was received of a refused file, under its actual hash; return that hash."""
        partial = self._partial_path(device, sha256)
        if not partial.exists():
            return None
        actual, _ = sha256_of_file(partial)
        self.quarantine.adopt(partial, actual)
        return actual

    # -- the three messages of a transfer ---------------------------------------------------------

    def on_init(self, topic: Topic, payload: bytes) -> FileResult | None:
        assert topic.file_sha256 is not None and topic.site is not None and topic.camera is not None
        sha = topic.file_sha256
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
        self.db.table("transfers").insert(
            {
                "device_id": topic.device,
                "sha256": sha,
                "site": topic.site,
                "camera": topic.camera,
                "event_id": init.event_id,
                "role": init.role,
                "name": init.name,
                "media_type": init.media_type,
                "size": init.size,
                "ranges": "[]",
                "fin_seen": 0,
                "started_at": utc_iso(now),
                "updated_at": utc_iso(now),
            }
        )
        return None

    def on_segment(self, topic: Topic, payload: bytes) -> FileResult | None:
        assert topic.file_sha256 is not None and topic.offset is not None
        sha, offset = topic.file_sha256, topic.offset
        row = self._transfer(topic.device, sha)
        if row is None:
            if self._stored(sha):
                return FileResult(sha, "ok", duplicate=True)
            raise Refusal(
                "segment_without_init", f"segment at offset {offset} of file {sha}: no init received"
            )
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

        partial = self._partial_path(topic.device, sha)
        partial.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, payload, offset)
            os.fsync(fd)  # the bytes are durable before the range that claims them is committed
        finally:
            os.close(fd)
        ranges = add_range([(int(s), int(e)) for s, e in json.loads(row["ranges"])], offset, end)
        self.db.execute(
            "UPDATE transfers SET ranges = ?, updated_at = ? WHERE device_id = ? AND sha256 = ?",
            [json.dumps(ranges), utc_iso(self.clock()), topic.device, sha],
        )
        if row["fin_seen"] and covers(ranges, size):
            return self._complete(topic.device, sha, size, row)
        return None

    def on_fin(self, topic: Topic) -> FileResult:
        assert topic.file_sha256 is not None and topic.size is not None
        sha = topic.file_sha256
        row = self._transfer(topic.device, sha)
        if row is None:
            if self._stored(sha):
                return FileResult(sha, "ok", duplicate=True)
            return FileResult(sha, "missing", "no transfer of this file in progress: send init and segments")
        size = int(row["size"])
        if topic.size != size:
            saved = self._quarantine_partial(topic.device, sha)
            self._drop_transfer(topic.device, sha)
            raise Refusal(
                "file_size_mismatch",
                f"fin says {topic.size} bytes, the init said {size}",
                ack=("file", sha),
                saved_sha256=saved,
            )
        ranges: Ranges = [(int(s), int(e)) for s, e in json.loads(row["ranges"])]
        if covers(ranges, size):
            return self._complete(topic.device, sha, size, row)
        self.db.execute(
            "UPDATE transfers SET fin_seen = 1, updated_at = ? WHERE device_id = ? AND sha256 = ?",
            [utc_iso(self.clock()), topic.device, sha],
        )
        return FileResult(sha, "missing", _describe_gaps(gaps(ranges, size)))

    def _complete(self, device: str, sha: str, size: int, row: dict[str, Any]) -> FileResult:
        partial = self._partial_path(device, sha)
        if not partial.exists():
            self._drop_transfer(device, sha)
            log.error("partial file %s vanished before it was complete; asking the edge to resend", partial)
            return FileResult(sha, "missing", "the central lost the partial file: send it again")
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
        self.evidence.adopt(partial, sha)
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
        return FileResult(sha, "ok")
