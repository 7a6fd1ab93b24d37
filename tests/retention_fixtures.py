"""Test helper (not a test module): a central's database and evidence store with the real case flow
and the real audit trail on a hand clock, for the retention tests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caseflow_fixtures import Clock, make_config
from sqlite_utils import Database

import wire
from central.api.context import ensure_api_schema
from central.audit.chain import AuditTrail
from central.audit.checkpoints import CHECKPOINT_FILE, append_checkpoint_file, issue_checkpoint, load_or_create_key
from central.caseflow.flow import CaseFlow
from central.cli import main as central_main
from central.config import CentralConfig, RetentionConfig
from central.console.schema import ensure_schema as ensure_console_schema
from central.evidence_store import ContentStore
from central.retention.sweep import SweepResult, sweep
from central.store import immediate
from central.store.database import open_database
from central.store.evidence import evidence_file, record_evidence_file
from central.timefmt import utc_iso
from wire.signing import canonical_json

DAY = 86400.0


def jpeg_bytes(name: str) -> bytes:
    """Distinct bytes per name (what they are does not matter to retention)."""
    return b"\xff\xd8\xff" + hashlib.sha256(name.encode()).digest() * 4


@dataclass
class Archive:
    """A central's database and evidence store, with the case flow and the audit trail on one clock."""

    config: CentralConfig
    clock: Clock
    trail: AuditTrail
    flow: CaseFlow
    store: ContentStore

    @classmethod
    def open(cls, tmp_path: Path, clock: Clock, days: int | None) -> Archive:
        """A fresh data directory under tmp_path; close() its database when done."""
        config = make_config(tmp_path, retention=RetentionConfig(evidence_days=days))
        db = open_database(config.db_path)
        ensure_api_schema(db)  # the audit trail's tables and the Open311 reports
        ensure_console_schema(db)  # photos attached at the console
        trail = AuditTrail(db, clock)
        return cls(config, clock, trail, CaseFlow(config, audit=trail, clock=clock), ContentStore(config.evidence_dir))

    @property
    def db(self) -> Database:
        return self.trail.db

    def store_file(self, data: bytes, *, role: str = "snapshot", event_id: str = "-") -> str:
        """Bytes into the store and their row, as ingest does; the sha256."""
        sha = self.store.put_bytes(data)
        record_evidence_file(
            self.db,
            sha256=sha,
            size=len(data),
            media_type="image/jpeg",
            path=self.store.relative_path(sha),
            device_id="box-1",
            event_id=event_id,
            role=role,
            name=f"{role}.jpg",
            now=self.clock(),
        )
        return sha

    def camera_order(self, zone: str, *files: bytes) -> tuple[str, list[str]]:
        """A camera event with these files, filed as the ingest files it: (its order, the files' sha256s)."""
        event_id = wire.new_event_id(self.clock())
        shas = [self.store_file(data, event_id=event_id) for data in files]
        manifest = wire.Manifest(
            event_id=event_id,
            kind="confirmed",
            device_id="box-1",
            site="site-a",
            camera="cam-1",
            zone=zone,
            first_seen=utc_iso(self.clock() - 30),
            at=utc_iso(self.clock()),
            clock_synced=True,
            frame_size=(1280, 720),
            detections=[wire.DetectionRecord(class_name="bag", confidence=0.9, box=(0, 0, 5, 5))],
            model=wire.ModelRef(name="m", sha256="0" * 64),
            files=[
                wire.FileRef(role="snapshot", name=f"snapshot-{n}.jpg", media_type="image/jpeg", size=len(d), sha256=s)
                for n, (d, s) in enumerate(zip(files, shas, strict=True))
            ],
        )
        text = canonical_json(manifest.model_dump(mode="json")).decode()
        with immediate(self.db):
            filing, _ = self.flow.file_event(
                self.db, manifest, manifest_json=text, signature="s" * 88, key_id="ed25519:x", received_at=self.clock()
            )
        assert filing.work_order_id is not None
        return filing.work_order_id, shas

    def close(self, order_id: str) -> None:
        self.flow.act(self.db, order_id, "verify", actor="user:li")
        self.flow.act(self.db, order_id, "close", actor="user:li")

    def sweep(self, **config: Any) -> SweepResult:
        retention = self.config.retention.model_copy(update=config)
        return sweep(self.db, self.store, retention, self.clock(), audit=self.trail)

    def on_disk(self, sha: str) -> bool:
        return self.store.has(sha)

    def row(self, sha: str) -> dict[str, Any]:
        row = evidence_file(self.db, sha)
        assert row is not None
        return row

    def purge_rows(self) -> list[dict[str, Any]]:
        return [
            {**r, "detail": json.loads(r["detail"])}
            for r in self.db.query("SELECT * FROM audit_log WHERE action = 'evidence.purge' ORDER BY seq")
        ]

    def audit_chain_verifies(self, tmp_path: Path) -> bool:
        """`garbagewatch central verify-audit` on this data directory, after a fresh signed checkpoint."""
        cp = issue_checkpoint(self.db, load_or_create_key(self.config.data_dir), self.clock())
        append_checkpoint_file(self.config.data_dir / CHECKPOINT_FILE, cp)
        config = tmp_path / "central.yaml"
        config.write_text(f"data_dir: {self.config.data_dir}\n")
        return central_main(["verify-audit", "--config", str(config)]) == 0
