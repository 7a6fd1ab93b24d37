"""Which evidence files the retention sweep purged, when and why (what readers show instead of a file).

The row of a purged file stays in evidence_files with purged_at and purge_reason set: signed
manifests and the audit trail still name its sha256. A file stored again later is not purged
any more (central.store.evidence.record_evidence_file clears both).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlite_utils import Database

__all__ = ["PURGE_ACTION", "Purge", "purge_of", "purged_files"]

PURGE_ACTION = "evidence.purge"  # the audit action of one deleted file (subject evidence:<sha256>)


@dataclass(frozen=True)
class Purge:
    sha256: str
    purged_at: str  # RFC 3339 UTC
    reason: str

    @property
    def day(self) -> str:
        """'2026-11-26': the UTC day, as pages and messages show it."""
        return self.purged_at[:10]


def purged_files(db: Database, sha256s: Iterable[str]) -> dict[str, Purge]:
    """The purged ones among these files, by sha256."""
    wanted = sorted(set(sha256s))
    if not wanted:
        return {}
    rows = db.execute(
        "SELECT sha256, purged_at, purge_reason FROM evidence_files"
        " WHERE sha256 IN (SELECT value FROM json_each(?)) AND purged_at IS NOT NULL",
        [json.dumps(wanted)],
    )
    return {str(sha): Purge(str(sha), str(at), str(reason or "")) for sha, at, reason in rows}


def purge_of(db: Database, sha256: str) -> Purge | None:
    return purged_files(db, [sha256]).get(sha256)
