"""One retention sweep: delete the evidence files the rule says are due, each deletion audited.

Per page of `retention.batch` due files:

1. read the page (central.retention.policy, no lock held);
2. in one BEGIN IMMEDIATE transaction: check the page against the rule again (a hold placed or
   an order reopened since the read keeps its files), mark the rows purged (purged_at,
   purge_reason) and append one audit row per file (`evidence.purge`, subject
   `evidence:<sha256>`, detail: sha256, size, orders); commit;
3. only then unlink the files, and fsync their folders.

Commit-then-unlink: a crash between 2 and 3 leaves rows marked purged whose files still exist,
never a file deleted without its row and audit record. The commit also marks the rows
`unlink_pending`, cleared once their files are gone; every sweep begins by unlinking the files of
the rows still marked (an index of those few rows, not a stat of every purged file). The rows
are never deleted: signed manifests and the audit trail still name the sha256.

Known limit: content stored again (a device re-sends it) in the moment between a page's commit
and its unlink can lose its file while its row says it is back. The row is read again just
before the unlink, which narrows that window to the unlink itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from central.caseflow.hooks import AuditHook
from central.config import RetentionConfig
from central.evidence_store import ContentStore
from central.retention.policy import DueFile, due_files
from central.retention.purged import PURGE_ACTION, purged_files
from central.store.transactions import immediate
from central.timefmt import utc_iso

__all__ = ["ACTOR", "SweepPlan", "SweepResult", "leftover_files", "plan", "sweep"]

log = logging.getLogger("central.retention")

ACTOR = "system:retention"
_LEFTOVER_PAGE = 5000


@dataclass
class SweepResult:
    purged: int = 0  # rows marked purged (and audited) by this sweep
    bytes: int = 0  # bytes of the files this sweep unlinked (its own and leftovers)
    errors: int = 0  # files that could not be unlinked (tried again by the next sweep), folders not synced
    leftovers: int = 0  # files of rows purged earlier (a crash after the commit) unlinked now
    transactions: int = 0


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep would do now (the CLI's --dry-run): nothing is written or deleted."""

    due: list[DueFile] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # purged rows whose files are still on disk


def _purged_pages(db: Database) -> Iterator[list[str]]:
    """sha256s of the purged rows whose files may still be on disk, a page at a time (no read
    stays open while files are touched)."""
    after = ""
    while True:
        page = [
            str(r[0])
            for r in db.execute(
                "SELECT sha256 FROM evidence_files WHERE unlink_pending = 1 AND sha256 > ? ORDER BY sha256 LIMIT ?",
                [after, _LEFTOVER_PAGE],
            )
        ]
        if not page:
            return
        yield page
        after = page[-1]


def leftover_files(db: Database, store: ContentStore) -> list[str]:
    """Files whose rows are marked purged but that are still on disk."""
    return [sha for page in _purged_pages(db) for sha in page if store.has(sha)]


def _unlink(db: Database, store: ContentStore, sizes: dict[str, int], result: SweepResult) -> int:
    """Unlink the files whose rows are still purged (read again now); return how many were there."""
    still = purged_files(db, sizes)  # a file stored again since is back: its row is not purged
    removed = 0
    done: list[str] = []
    folders: dict[Path, str] = {}
    for sha in sorted(still):
        try:
            gone = store.remove(sha, sync_dir=False)
        except OSError as exc:
            result.errors += 1
            log.error("retention: cannot unlink evidence %s (tried again next sweep): %s", sha, exc.strerror or exc)
            continue
        if gone:
            removed += 1
            result.bytes += sizes[sha]
            folders.setdefault(store.path_for(sha).parent, sha)
        done.append(sha)
    synced = True
    for folder, sha in folders.items():
        try:
            store.sync_folder(store.path_for(sha))
        except OSError as exc:
            result.errors += 1
            synced = False
            log.error("retention: cannot fsync %s: %s", folder, exc.strerror or exc)
    if done and synced:
        # Gone for good: the next sweep need not look at them again. (Lost in a crash, this
        # update only makes that sweep find the files already gone.)
        db.conn.executemany("UPDATE evidence_files SET unlink_pending = 0 WHERE sha256 = ?", [(s,) for s in done])
        db.conn.commit()
    return removed


def _remove_leftovers(db: Database, store: ContentStore, result: SweepResult) -> None:
    for page in _purged_pages(db):
        sizes: dict[str, int] = {}
        for sha in page:
            try:
                sizes[sha] = store.path_for(sha).stat().st_size
            except FileNotFoundError:
                sizes[sha] = 0  # gone already: only its mark is left to clear
        result.leftovers += _unlink(db, store, sizes, result)


def _audit_all(audit: AuditHook, entries: list[tuple[str, str, str, str, dict[str, Any]]]) -> None:
    append_many = getattr(audit, "append_many", None)
    if callable(append_many):  # central.audit.AuditTrail: one chained batch for the page
        append_many(entries)
    else:
        for entry in entries:
            audit(*entry)


def _purge_page(
    db: Database, page: list[DueFile], days: int, now: float, audit: AuditHook, actor: str
) -> list[DueFile]:
    """Mark the page's still-due files purged and audit each, in one transaction; return them."""
    stamp = utc_iso(now)
    with immediate(db):
        due = due_files(db, now=now, days=days, only=[f.sha256 for f in page], limit=len(page))
        db.conn.executemany(
            "UPDATE evidence_files SET purged_at = ?, purge_reason = ?, unlink_pending = 1"
            " WHERE sha256 = ? AND purged_at IS NULL",
            [(stamp, f.reason(days), f.sha256) for f in due],
        )
        entries = [
            (
                actor,
                PURGE_ACTION,
                f"evidence:{f.sha256}",
                f.reason(days),
                {
                    "sha256": f.sha256,
                    "size": f.size,
                    "media_type": f.media_type,
                    "orders": list(f.orders),
                    "evidence_days": days,
                    "stored_at": f.stored_at,
                },
            )
            for f in due
        ]
        _audit_all(audit, entries)
    return due


def sweep(
    db: Database,
    store: ContentStore,
    config: RetentionConfig,
    now: float,
    *,
    audit: AuditHook,
    actor: str = ACTOR,
    keep_going: Callable[[], bool] | None = None,
) -> SweepResult:
    """One sweep: the leftovers of an interrupted sweep, then every due file, a page at a time.

    `actor` names who deleted (the service's `system:retention`; `cli:<login>` for a sweep run
    by hand). `keep_going()` False stops between pages (the service is stopping).
    """
    result = SweepResult()
    _remove_leftovers(db, store, result)
    days = config.evidence_days
    if days is None:
        return result
    after = ""
    while keep_going is None or keep_going():
        page = due_files(db, now=now, days=days, after=after, limit=config.batch)
        if not page:
            break
        after = page[-1].sha256
        due = _purge_page(db, page, days, now, audit, actor)
        result.transactions += 1
        result.purged += len(due)
        _unlink(db, store, {f.sha256: f.size for f in due}, result)
        if due:
            log.info("retention: purged %d evidence file(s) (%s)", len(due), due[0].reason(days))
        if len(page) < config.batch:
            break
    return result


def plan(db: Database, store: ContentStore, config: RetentionConfig, now: float) -> SweepPlan:
    """What `sweep` would delete now, without writing or deleting anything."""
    due: list[DueFile] = []
    days = config.evidence_days
    if days is not None:
        after = ""
        while page := due_files(db, now=now, days=days, after=after, limit=config.batch):
            due.extend(page)
            after = page[-1].sha256
    return SweepPlan(due, leftover_files(db, store))
