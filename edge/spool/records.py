"""What the spool stores and hands out: the SQLite schema and the typed records read from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import wire

__all__ = ["SCHEMA", "BundleState", "FileState", "PendingBundle", "SpoolFile", "SpoolStats"]

BundleState = Literal["pending", "acked", "rejected", "dropped"]
FileState = Literal["pending", "acked", "rejected", "dropped"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS bundles (
    event_id  TEXT NOT NULL,
    kind      TEXT NOT NULL,  -- the slot: confirmed, cleared, or update@<at> (an event has many updates)
    device_id TEXT NOT NULL,
    site      TEXT NOT NULL,
    camera    TEXT NOT NULL,
    message   TEXT NOT NULL,
    created   REAL NOT NULL,
    state     TEXT NOT NULL DEFAULT 'pending',
    reason    TEXT NOT NULL DEFAULT '',
    attempts  INTEGER NOT NULL DEFAULT 0,
    finished  REAL,
    PRIMARY KEY (event_id, kind)
);
CREATE INDEX IF NOT EXISTS bundles_by_state ON bundles (state, created);
-- state: pending (bytes on disk, to send), acked (the central has it; bytes deleted),
-- rejected (the central refused it), dropped (deleted by the quota before it was sent).
CREATE TABLE IF NOT EXISTS files (
    sha256     TEXT PRIMARY KEY,
    path       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    role       TEXT NOT NULL,
    media_type TEXT NOT NULL,
    created    REAL NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending',
    reason     TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS bundle_files (
    event_id TEXT NOT NULL,
    kind     TEXT NOT NULL,
    sha256   TEXT NOT NULL,
    PRIMARY KEY (event_id, kind, sha256)
);
CREATE INDEX IF NOT EXISTS bundle_files_by_sha ON bundle_files (sha256);
"""


@dataclass(frozen=True)
class SpoolFile:
    ref: wire.FileRef
    state: FileState

    @property
    def sha256(self) -> str:
        return self.ref.sha256


@dataclass(frozen=True)
class PendingBundle:
    event_id: str
    slot: str  # the spool's key within the event: the kind, or 'update@<at>' (an event has many updates)
    created: float
    attempts: int
    message: wire.EventMessage
    message_json: str  # exactly what was stored: what goes on the wire
    files: tuple[SpoolFile, ...]

    @property
    def kind(self) -> str:
        return self.message.manifest.kind

    @property
    def key(self) -> tuple[str, str]:
        return (self.event_id, self.slot)

    @property
    def unsent_files(self) -> tuple[SpoolFile, ...]:
        """Files still to transfer: stored and not yet acked by the central."""
        return tuple(f for f in self.files if f.state == "pending")


@dataclass(frozen=True)
class SpoolStats:
    pending_bundles: int
    pending_files: int
    used_bytes: int  # pending file bytes plus pending messages: what the quota counts
    quota_bytes: int
    dropped_files: int
    dropped_bundles: int
    rejected_bundles: int

    @property
    def dropped(self) -> int:
        return self.dropped_files + self.dropped_bundles
