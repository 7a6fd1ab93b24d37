"""The spool: evidence bundles kept on disk until the central acks them.

SQLite (WAL, synchronous=FULL) holds the bundles and the file index; file bytes live under
`files/<sha256>` (the name is a checked sha256, never anything from outside). A bundle is put
files first, each durable, then its row in one transaction: a crash can leave an orphan file
(removed when the spool next opens) but never a bundle pointing at a file that is not there.

Nothing is deleted before the central's ack, except by the quota. Over quota the spool drops the
oldest clips first, then the oldest snapshots, and whole events only last. A dropped file stays
listed in its signed manifest (the signature covers the list, so it cannot change): the event is
still sent, with the file named in the message's unsigned `dropped` list, and the central files it
with that file recorded as missing. That trade-off keeps the record that something happened, with
the evidence that fitted, instead of silently losing the event.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from pydantic import ValidationError

import wire
from edge.spool.durable import write_durably
from edge.spool.records import SCHEMA, BundleState, FileState, PendingBundle, SpoolFile, SpoolStats
from wire.ids import check_sha256

__all__ = ["Spool"]

log = logging.getLogger(__name__)


class Spool:
    """Thread-safe; one process owns a spool directory at a time (it cleans up after crashes when opened)."""

    def __init__(self, path: Path, quota_bytes: int = 2 * 1024**3, *, clock: Callable[[], float] = time.time):
        if quota_bytes <= 0:
            raise ValueError("quota_bytes must be positive")
        self.path = Path(path)
        self.quota_bytes = quota_bytes
        self._clock = clock
        self._files_dir = self.path / "files"
        self._files_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path / "spool.sqlite3", isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an acked-by-us bundle must survive a power cut
        self._db.executescript(SCHEMA)
        self._recover()

    # -- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _blob(self, sha256: str) -> Path:
        return self._files_dir / check_sha256(sha256)

    def _delete_blob(self, sha256: str) -> None:
        self._blob(sha256).unlink(missing_ok=True)

    def _recover(self) -> None:
        """After a crash: remove temporary and orphan files; mark pending files that vanished as dropped."""
        with self._lock:
            pending = {r[0] for r in self._db.execute("SELECT sha256 FROM files WHERE state = 'pending'")}
            for entry in self._files_dir.iterdir():
                if entry.name not in pending:
                    log.info("spool: removing %s (temporary, orphaned or already acked)", entry.name)
                    entry.unlink(missing_ok=True)
            for sha in sorted(pending):
                if not self._blob(sha).is_file():
                    log.warning("spool: file %s is missing on disk; its event will be sent without it", sha)
                    self._set_file_state(sha, "dropped", "missing on disk when the spool opened")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing ------------------------------------------------------------------------------

    def put(self, message: wire.EventMessage, files: Sequence[tuple[wire.FileRef, bytes | Path]]) -> bool:
        """Store a bundle durably; False (and nothing changes) when this event and kind are already here.

        Every file the manifest lists must be given, unless the spool already holds or delivered it.
        Raises ValueError when a file's content does not match its FileRef or the manifest.
        """
        manifest = message.manifest
        # The spool's key for this message: an event has one 'confirmed' and one 'cleared', but
        # may have several 'update's, each its own message (told apart by their time).
        slot = manifest.kind if manifest.kind != "update" else f"update@{manifest.at}"
        listed = {f.sha256: f for f in manifest.files}
        given: dict[str, tuple[wire.FileRef, bytes | Path]] = {}
        for ref, content in files:
            if ref.sha256 not in listed:
                raise ValueError(
                    f"event {manifest.event_id}: file {ref.name} ({ref.sha256}) is not in the manifest"
                )
            given[ref.sha256] = (ref, content)
        with self._lock:
            if self._bundle_state(manifest.event_id, slot) is not None:
                log.info("spool: event %s/%s is already spooled", manifest.event_id, slot)
                return False
            known = {sha: self._file_state(sha) for sha in listed}
            to_write = [sha for sha, state in known.items() if state not in ("pending", "acked")]
            absent = [sha for sha in to_write if sha not in given]
            if absent:
                raise ValueError(f"event {manifest.event_id}: no content given for files {absent}")
            message_json = message.model_dump_json()
            need = len(message_json) + sum(listed[sha].size for sha in to_write)
            # Make room by dropping older files only; events go only after this one is in (below).
            self._enforce_quota(extra=need, drop_events=False)
        # Files first, outside the lock (a 50 MB fsync must not stall the uplink's acks).
        for sha in to_write:
            ref, content = given[sha]
            write_durably(self._blob(sha), content, sha256=sha, size=ref.size)
        now = self._clock()
        with self._tx() as db:
            if self._bundle_state(manifest.event_id, slot) is not None:
                return False  # a concurrent put of the same bundle won
            for sha, ref in listed.items():
                # Only a file written just now may become pending again: one skipped because it
                # was held may have been dropped meanwhile, and must not point at nothing.
                on_conflict = (
                    " ON CONFLICT (sha256) DO UPDATE SET state = 'pending', reason = ''"
                    if sha in to_write
                    else " ON CONFLICT (sha256) DO NOTHING"
                )
                db.execute(
                    "INSERT INTO files (sha256, path, size, role, media_type, created)"
                    " VALUES (?, ?, ?, ?, ?, ?)" + on_conflict,
                    (sha, f"files/{sha}", ref.size, ref.role, ref.media_type, now),
                )
                db.execute(
                    "INSERT OR IGNORE INTO bundle_files VALUES (?, ?, ?)",
                    (manifest.event_id, slot, sha),
                )
            db.execute(
                "INSERT INTO bundles (event_id, kind, device_id, site, camera, message, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    manifest.event_id,
                    slot,
                    manifest.device_id,
                    manifest.site,
                    manifest.camera,
                    message_json,
                    now,
                ),
            )
        self._enforce_quota()
        return True

    # -- reading ------------------------------------------------------------------------------

    def _bundle_state(self, event_id: str, kind: str) -> str | None:
        row = self._db.execute(
            "SELECT state FROM bundles WHERE event_id = ? AND kind = ?", (event_id, kind)
        ).fetchone()
        return None if row is None else str(row[0])

    def _file_state(self, sha256: str) -> str | None:
        row = self._db.execute("SELECT state FROM files WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else str(row[0])

    def bundle_state(self, event_id: str, kind: str) -> BundleState | None:
        with self._lock:
            return cast(BundleState | None, self._bundle_state(event_id, kind))

    def file_state(self, sha256: str) -> FileState | None:
        with self._lock:
            return cast(FileState | None, self._file_state(sha256))

    def pending(self, limit: int | None = None) -> list[PendingBundle]:
        """Bundles not yet acked, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, kind, created, attempts, message FROM bundles WHERE state = 'pending'"
                " ORDER BY created, rowid LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
            states = {
                r[0]: r[1]
                for r in self._db.execute(
                    "SELECT f.sha256, f.state FROM files f JOIN bundle_files l ON l.sha256 = f.sha256"
                    " JOIN bundles b ON b.event_id = l.event_id AND b.kind = l.kind WHERE b.state = 'pending'"
                )
            }
        out = []
        for row in rows:
            try:
                message = wire.EventMessage.model_validate_json(row["message"])
            except ValidationError as exc:
                # Only a damaged database gets here (put stores validated messages): set it aside
                # once, so it neither blocks the bundles behind it nor floods the log.
                log.error("spool: stored event %s/%s is unreadable: %s", row["event_id"], row["kind"], exc)
                self._finish_bundle(row["event_id"], row["kind"], "rejected", "stored message unreadable")
                continue
            files = tuple(
                SpoolFile(ref, cast(FileState, states.get(ref.sha256, "dropped")))
                for ref in message.manifest.files
            )
            out.append(
                PendingBundle(
                    row["event_id"],
                    row["kind"],
                    row["created"],
                    row["attempts"],
                    message,
                    row["message"],
                    files,
                )
            )
        return out

    def file_path(self, sha256: str) -> Path | None:
        """Where a pending file's bytes are; None when the spool does not hold them (acked, dropped...)."""
        with self._lock:
            if self._file_state(sha256) != "pending":
                return None
            return self._blob(sha256)

    def stats(self) -> SpoolStats:
        with self._lock:
            db = self._db
            counts = {r[0]: r[1] for r in db.execute("SELECT state, COUNT(*) FROM bundles GROUP BY state")}
            file_counts = {r[0]: r[1] for r in db.execute("SELECT state, COUNT(*) FROM files GROUP BY state")}
            used = self._used_bytes()
        return SpoolStats(
            pending_bundles=counts.get("pending", 0),
            pending_files=file_counts.get("pending", 0),
            used_bytes=used,
            quota_bytes=self.quota_bytes,
            dropped_files=file_counts.get("dropped", 0),
            dropped_bundles=counts.get("dropped", 0),
            rejected_bundles=counts.get("rejected", 0),
        )

    # -- acks ---------------------------------------------------------------------------------

    def _set_file_state(self, sha256: str, state: FileState, reason: str = "") -> bool:
        with self._tx() as db:
            changed = db.execute(
                "UPDATE files SET state = ?, reason = ? WHERE sha256 = ? AND state = 'pending'",
                (state, reason, sha256),
            ).rowcount
        # The row changes first: a crash in between leaves an orphan file, which _recover removes.
        if changed:
            self._delete_blob(sha256)
        return bool(changed)

    def mark_file_acked(self, sha256: str) -> bool:
        """The central stored and verified this file: its bytes can go. False when it was not pending."""
        return self._set_file_state(sha256, "acked")

    def mark_file_lost(self, sha256: str, reason: str) -> bool:
        """The file's bytes cannot be read any more: stop trying; its event goes without it."""
        log.warning("spool: file %s is lost: %s", sha256, reason)
        return self._set_file_state(sha256, "dropped", reason)

    def mark_file_rejected(self, sha256: str, reason: str) -> bool:
        """The central refused this file for good: stop sending it."""
        return self._set_file_state(sha256, "rejected", reason)

    def _finish_bundle(self, event_id: str, kind: str, state: BundleState, reason: str) -> bool:
        with self._tx() as db:
            changed = db.execute(
                "UPDATE bundles SET state = ?, reason = ?, finished = ? WHERE event_id = ? AND kind = ?"
                " AND state = 'pending'",
                (state, reason, self._clock(), event_id, kind),
            ).rowcount
            if not changed:
                return False
            # Acked: the central holds every file of the event (files are known by sha256, as file acks
            # are), so none is sent again. Otherwise only the files no other pending bundle needs go.
            others = (
                ""
                if state == "acked"
                else " AND NOT EXISTS (SELECT 1 FROM bundle_files o JOIN bundles b"
                " ON b.event_id = o.event_id AND b.kind = o.kind"
                " WHERE o.sha256 = f.sha256 AND b.state = 'pending')"
            )
            done = [
                r[0]
                for r in db.execute(
                    "SELECT f.sha256 FROM files f JOIN bundle_files l ON l.sha256 = f.sha256"
                    " WHERE l.event_id = ? AND l.kind = ? AND f.state = 'pending'" + others,
                    (event_id, kind),
                )
            ]
            file_state = "acked" if state == "acked" else "dropped"
            db.executemany(
                "UPDATE files SET state = ?, reason = ? WHERE sha256 = ?",
                [(file_state, reason, s) for s in done],
            )
        for sha in done:
            self._delete_blob(sha)
        return True

    def mark_event_acked(self, event_id: str, kind: str) -> bool:
        """The central filed this event: the bundle is done. False when it was not pending."""
        return self._finish_bundle(event_id, kind, "acked", "")

    def mark_rejected(self, event_id: str, kind: str, reason: str) -> bool:
        """The central refused this event for good (or it cannot be completed): stop sending it."""
        return self._finish_bundle(event_id, kind, "rejected", reason)

    def note_attempt(self, event_id: str, kind: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE bundles SET attempts = attempts + 1 WHERE event_id = ? AND kind = ?", (event_id, kind)
            )

    def purge_finished(self, older_than: float) -> int:
        """Forget acked, rejected and dropped bundles finished before `older_than` (epoch seconds)."""
        with self._tx() as db:
            gone = db.execute(
                "DELETE FROM bundles WHERE state != 'pending' AND finished < ?", (older_than,)
            ).rowcount
            db.execute(
                "DELETE FROM bundle_files WHERE NOT EXISTS (SELECT 1 FROM bundles b"
                " WHERE b.event_id = bundle_files.event_id AND b.kind = bundle_files.kind)"
            )
            db.execute(
                "DELETE FROM files WHERE state != 'pending'"
                " AND NOT EXISTS (SELECT 1 FROM bundle_files l WHERE l.sha256 = files.sha256)"
            )
        return int(gone)

    # -- quota --------------------------------------------------------------------------------

    def _used_bytes(self) -> int:
        files = self._db.execute(
            "SELECT COALESCE(SUM(size), 0) FROM files WHERE state = 'pending'"
        ).fetchone()[0]
        messages = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(message)), 0) FROM bundles WHERE state = 'pending'"
        ).fetchone()[0]
        return int(files) + int(messages)

    def _oldest_file(self, clips: bool) -> sqlite3.Row | None:
        role = "role = 'clip'" if clips else "role != 'clip'"
        row: sqlite3.Row | None = self._db.execute(
            f"SELECT sha256, size, role FROM files WHERE state = 'pending' AND {role}"
            " ORDER BY created, rowid LIMIT 1"
        ).fetchone()
        return row

    def _enforce_quota(self, extra: int = 0, drop_events: bool = True) -> None:
        """Drop the oldest clips, then snapshots, then events, until `extra` more bytes fit."""
        with self._lock:
            while (used := self._used_bytes()) + extra > self.quota_bytes:
                victim = self._oldest_file(clips=True) or self._oldest_file(clips=False)
                if victim is not None:
                    self._set_file_state(victim["sha256"], "dropped", "spool quota")
                    log.warning(
                        "spool over quota (%d + %d > %d bytes): dropped %s %s (%d bytes), its event is kept",
                        used,
                        extra,
                        self.quota_bytes,
                        victim["role"],
                        victim["sha256"],
                        victim["size"],
                    )
                    continue
                if not drop_events:
                    return
                oldest = self._db.execute(
                    "SELECT event_id, kind FROM bundles WHERE state = 'pending'"
                    " ORDER BY created, rowid LIMIT 1"
                ).fetchone()
                if oldest is None:
                    return  # nothing left to drop: the new bundle alone is over the quota
                self._finish_bundle(oldest["event_id"], oldest["kind"], "dropped", "spool quota")
                log.warning(
                    "spool over quota (%d + %d > %d bytes): dropped event %s/%s",
                    used,
                    extra,
                    self.quota_bytes,
                    oldest["event_id"],
                    oldest["kind"],
                )
