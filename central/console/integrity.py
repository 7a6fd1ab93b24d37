"""Integrity as the pages show it: each evidence file against its sha256 and the device's
signature (or, for a file deleted under the retention policy, its audited purge), the order's
audit rows, and the audit chain against its signed checkpoints.

Recomputed from what is stored, never taken from a flag set at ingest: what the page says is
what the bytes on disk and the rows in the table say now.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlite_utils import Database

from central.audit.chain import AuditRow, row_sha256
from central.audit.checkpoints import PUBLIC_KEY_FILE, CheckpointError, load_public_key_of, stored_checkpoints
from central.audit.verify import SourcedCheckpoint, verify_audit
from central.devices.registry import DeviceRegistry
from central.evidence_store import ContentStore, sha256_of_file
from central.retention.purged import PURGE_ACTION, purge_of
from central.timefmt import Clock
from wire.errors import WireError
from wire.signing import verify_manifest

__all__ = ["ChainState", "ChainStatus", "ChainStatusCache", "FileIntegrity", "check_evidence", "check_order_rows"]

log = logging.getLogger("central.console")

ChainState = Literal["ok", "failed", "unchecked"]


@dataclass(frozen=True)
class FileIntegrity:
    ok: bool
    why: str  # what failed ('' when ok)
    purged_at: str | None = None  # deleted under the retention policy, as the audit trail records


def _purge_audited(db: Database, sha256: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM audit_log WHERE subject = ? AND action = ? LIMIT 1", [f"evidence:{sha256}", PURGE_ACTION]
    ).fetchone()
    return row is not None


def _signed_by_device(db: Database, sha256: str, size: int, registry: DeviceRegistry) -> str:
    """'' when every stored manifest that lists the file verifies with its device's enrolled key
    and lists this sha256 with this size; otherwise what is wrong."""
    rows = list(
        db.query(
            "SELECT e.message_id, e.device_id, e.manifest, e.signature, e.key_id FROM event_files f"
            " JOIN events e ON e.message_id = f.message_id WHERE f.sha256 = ? ORDER BY e.received_at",
            [sha256],
        )
    )
    if not rows:
        return "no signed manifest lists this file"
    for r in rows:
        trust = registry.trust(r["device_id"])
        key = trust.key(r["key_id"]) if trust is not None else None
        if key is None:
            return f"device {r['device_id']} has no enrolled key {r['key_id']}"
        try:
            manifest = json.loads(r["manifest"])
            good = verify_manifest(key.public_key, manifest, r["signature"])
        except (ValueError, WireError):
            good = False
        if not good:
            return f"the device signature of message {r['message_id'][:12]}... does not verify"
        listed = [f for f in manifest.get("files", []) if f.get("sha256") == sha256]
        if not listed or any(f.get("size") != size for f in listed):
            return f"message {r['message_id'][:12]}... does not list this file with this size"
    return ""


def check_evidence(
    db: Database, store: ContentStore, sha256: str, size: int | None, *, signed: bool, registry: DeviceRegistry
) -> FileIntegrity:
    """Hash the stored file; for device evidence also check the signed manifests that list it.

    A file the retention sweep purged is reported as purged (ok, with `purged_at`) when the audit
    trail records its deletion; a row marked purged without that record is a failure.
    """
    purge = purge_of(db, sha256)
    if purge is not None:
        if not _purge_audited(db, sha256):
            return FileIntegrity(False, f"marked purged, but the audit trail has no {PURGE_ACTION} row for it")
        return FileIntegrity(True, "", purged_at=purge.purged_at)
    path = store.path_for(sha256)
    try:
        actual, actual_size = sha256_of_file(path)
    except OSError as exc:
        return FileIntegrity(False, f"the file cannot be read: {exc.strerror or exc}")
    if actual != sha256:
        return FileIntegrity(False, f"its content hashes to {actual[:16]}..., not its sha256")
    if size is not None and actual_size != size:
        return FileIntegrity(False, f"{actual_size} bytes stored, {size} recorded")
    if signed:
        why = _signed_by_device(db, sha256, actual_size, registry)
        if why:
            return FileIntegrity(False, why)
    return FileIntegrity(True, "")


@dataclass(frozen=True)
class ChainStatus:
    state: ChainState
    detail: str


def check_order_rows(db: Database, rows: Sequence[AuditRow]) -> ChainStatus:
    """Each of the order's rows hashes to its sha256 and links to the row before it in the table."""
    prev_seqs = sorted({r.seq - 1 for r in rows if r.seq > 1})
    stored = {
        int(seq): str(sha)
        for seq, sha in db.execute(
            "SELECT seq, sha256 FROM audit_log WHERE seq IN (SELECT value FROM json_each(?))",
            [json.dumps(prev_seqs)],
        )
    }
    for r in rows:
        try:
            recomputed = row_sha256(
                seq=r.seq,
                at=r.at,
                actor=r.actor,
                action=r.action,
                subject=r.subject,
                reason=r.reason,
                detail=r.detail,
                prev_sha256=r.prev_sha256,
            )
        except WireError:
            recomputed = ""
        if recomputed != r.sha256:
            return ChainStatus("failed", f"row {r.seq} ({r.action}) does not hash to its sha256: it was edited")
        if r.seq > 1 and stored.get(r.seq - 1) != r.prev_sha256:
            return ChainStatus("failed", f"row {r.seq} does not link to row {r.seq - 1}: rows were edited or removed")
    return ChainStatus("ok", f"{len(rows)} rows of this order verify")


class ChainStatusCache:
    """The whole chain verified against the stored checkpoints, at most once per `ttl_s`.

    A walk of the whole chain costs time in proportion to its length, so pages share one result;
    the order page adds `check_order_rows` of its own rows at every view.
    """

    def __init__(self, data_dir: Path, ttl_s: float, clock: Clock) -> None:
        self._key_file = data_dir / PUBLIC_KEY_FILE
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, ChainStatus] | None = None

    def status(self, db: Database) -> ChainStatus:
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self._ttl_s:
                return self._cached[1]
            result = self._verify(db)
            self._cached = (now, result)
            return result

    def _verify(self, db: Database) -> ChainStatus:
        if not self._key_file.exists():
            return ChainStatus("unchecked", "the central has not signed a checkpoint yet (no audit key)")
        try:
            public = load_public_key_of(self._key_file)
        except CheckpointError as exc:
            log.error("console: cannot read the audit public key: %s", exc)
            return ChainStatus("failed", f"the audit public key cannot be read: {exc}")
        report = verify_audit(db, [SourcedCheckpoint(cp, "database") for cp in stored_checkpoints(db)], public)
        if report.ok:
            return ChainStatus("ok", report.summary())
        kinds = {p.kind for p in report.problems}
        if kinds == {"no_checkpoint"}:
            return ChainStatus("unchecked", f"{report.rows} rows link and hash correctly; no signed checkpoint yet")
        log.error("console: audit chain check failed: %s", "; ".join(p.message for p in report.problems[:5]))
        return ChainStatus("failed", "; ".join(p.message for p in report.problems[:3]))
