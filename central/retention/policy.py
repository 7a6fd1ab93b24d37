"""The retention rule: which stored evidence files are due for deletion now.

A file belongs to the orders that name it: through the messages attached to them (event_files
joined with order_events on message_id), as their snapshot or after-snapshot, as an Open311
report's photo, or as a photo a person attached at the console. A file is due when

- it is not purged yet, and a retention period (`evidence_days`) is configured;
- every order it belongs to is final (closed or rejected) and none has an active legal hold;
- the latest of those orders' final times (closed_at, rejected_at; updated_at should a final
  order lack its stamp) is more than `evidence_days` ago, or, for a file of no order, the time
  it was stored is.

A reopened order is no longer final, so its files are kept again without anything to undo.

The query walks evidence_files in sha256 order (keyset pages: `after`), and for each file looks
up its orders through indexes (migration 4): its cost is a few index lookups per file not yet
purged, and a page stops reading as soon as it has `limit` due files. The Open311 and console
tables are created by those parts, not by the store's migrations: a database without them has
no such files, and their lookups are left out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from central.caseflow.states import Status
from central.timefmt import utc_iso

__all__ = ["DAY_S", "FINAL_STATUSES", "DueFile", "cutoff_of", "due_files", "links_sql"]

DAY_S = 86400.0
FINAL_STATUSES = (Status.CLOSED.value, Status.REJECTED.value)
_FINAL_SQL = ", ".join(f"'{s}'" for s in FINAL_STATUSES)
# When an order became final; updated_at stands in for a stamp an old row may lack (never NULL).
_FINAL_AT = (
    "CASE w.status WHEN 'closed' THEN coalesce(w.closed_at, w.updated_at)"
    " WHEN 'rejected' THEN coalesce(w.rejected_at, w.updated_at) END"
)


@dataclass(frozen=True)
class DueFile:
    """A file the rule says to delete, and why."""

    sha256: str
    size: int
    media_type: str
    stored_at: str
    orders: tuple[str, ...]  # every order it belongs to (all final, none held)
    basis_order: str | None  # the order whose final time counts (the latest); None: no order
    basis_status: str | None  # closed | rejected
    basis_at: str  # that order's final time, or when the file was stored

    def reason(self, days: int) -> str:
        """The purge_reason: 'retention: 365 days after WO-20250102-000001 closed 2025-01-02T08:00:00.000Z'."""
        if self.basis_order is None:
            return f"retention: {days} days after it was stored {self.basis_at} (no work order)"
        return f"retention: {days} days after {self.basis_order} {self.basis_status} {self.basis_at}"


def cutoff_of(now: float, days: int) -> str:
    """The instant (RFC 3339 UTC text, compared as text) before which a file's basis time must lie."""
    return utc_iso(now - days * DAY_S)


def _tables(db: Database) -> set[str]:
    return {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def links_sql(db: Database, match: str) -> str:
    """SELECT (sha256, order_id) pairs of every way a file belongs to an order; `match` completes
    each arm's `<sha256 column> ...` condition ('= f.sha256', 'IN (SELECT ...)')."""
    arms = [
        "SELECT ef.sha256 AS sha256, oe.work_order_id AS order_id FROM event_files ef"
        f" JOIN order_events oe ON oe.message_id = ef.message_id WHERE ef.sha256 {match}",
        f"SELECT snapshot_sha256, id FROM work_orders WHERE snapshot_sha256 {match}",
        f"SELECT after_snapshot_sha256, id FROM work_orders WHERE after_snapshot_sha256 {match}",
    ]
    tables = _tables(db)
    if "open311_reports" in tables:
        arms.append(f"SELECT photo_sha256, order_id FROM open311_reports WHERE photo_sha256 {match}")
    if "console_order_photos" in tables:
        arms.append(f"SELECT sha256, order_id FROM console_order_photos WHERE sha256 {match}")
    return " UNION ALL ".join(arms)


def _due_sql(db: Database, where: str) -> str:
    # One scalar per file: its stored_at when it has no order, NULL while any of its orders is
    # not final or is held (NULL < x is not true: never due), else its orders' latest final time.
    basis = (
        "SELECT CASE WHEN count(*) = 0 THEN f.stored_at"
        f" WHEN max(w.status NOT IN ({_FINAL_SQL}) OR h.id IS NOT NULL) THEN NULL"
        f" ELSE max({_FINAL_AT}) END"
        f" FROM ({links_sql(db, '= f.sha256')}) l JOIN work_orders w ON w.id = l.order_id"
        " LEFT JOIN legal_holds h ON h.work_order_id = w.id AND h.released_at IS NULL"
    )
    return (
        f"SELECT f.sha256 FROM evidence_files f WHERE f.purged_at IS NULL AND {where}"
        f" AND ({basis}) < :cutoff ORDER BY f.sha256 LIMIT :limit"
    )


def due_files(
    db: Database,
    *,
    now: float,
    days: int | None,
    after: str = "",
    limit: int = 500,
    only: Sequence[str] | None = None,
) -> list[DueFile]:
    """Up to `limit` due files with sha256 > `after`, in sha256 order; `only`: among these files
    (the sweep's check of a page under the write lock). None at all when `days` is None."""
    if days is None or limit <= 0 or (only is not None and not only):
        return []
    params: dict[str, Any] = {"cutoff": cutoff_of(now, days), "limit": limit}
    if only is None:
        where = "f.sha256 > :after"
        params["after"] = after
    else:
        where = "f.sha256 IN (SELECT value FROM json_each(:only))"
        params["only"] = json.dumps(sorted(set(only)))
    shas = [str(r[0]) for r in db.execute(_due_sql(db, where), params)]
    return _describe(db, shas)


def _describe(db: Database, shas: list[str]) -> list[DueFile]:
    """The rows and orders of these files (a page at a time: two queries, not two per file)."""
    if not shas:
        return []
    page = json.dumps(shas)
    rows = {
        str(r[0]): r
        for r in db.execute(
            "SELECT sha256, size, media_type, stored_at FROM evidence_files"
            " WHERE sha256 IN (SELECT value FROM json_each(?))",
            [page],
        )
    }
    links: dict[str, dict[str, tuple[str, str]]] = {}  # sha256 -> order id -> (status, final time)
    match = "IN (SELECT value FROM json_each(:page))"
    for sha, order_id, status, final_at in db.execute(
        f"SELECT l.sha256, w.id, w.status, {_FINAL_AT} FROM ({links_sql(db, match)}) l"
        " JOIN work_orders w ON w.id = l.order_id",
        {"page": page},
    ):
        links.setdefault(str(sha), {})[str(order_id)] = (str(status), str(final_at))
    out = []
    for sha in shas:
        _, size, media_type, stored_at = rows[sha]
        orders = links.get(sha, {})
        basis_order, basis_status, basis_at = None, None, str(stored_at)
        if orders:
            # The latest final time counts; ties go to the larger id, so the choice is stable.
            basis_order, (basis_status, basis_at) = max(orders.items(), key=lambda kv: (kv[1][1], kv[0]))
        out.append(
            DueFile(
                sha256=sha,
                size=int(size),
                media_type=str(media_type),
                stored_at=str(stored_at),
                orders=tuple(sorted(orders)),
                basis_order=basis_order,
                basis_status=basis_status,
                basis_at=basis_at,
            )
        )
    return out
