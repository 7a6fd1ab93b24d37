"""Legal holds: an auditor (or an admin) pins the evidence of a disputed order against retention.

    hold = place_hold(db, "WO-20261126-000001", reason="complaint 2026-118", actor="user:qian", audit=trail, now=t)
    release_hold(db, "WO-20261126-000001", reason="case settled", actor="user:qian", audit=trail, now=t)

An order has at most one active hold (a partial unique index says so too). A hold pins every file
of the order, including files it shares with other orders. Placing and releasing each need a
reason, are one transaction with their audit row (`order.hold`, `order.hold.release`, subject
`order:<id>`), and never change the order's status: a hold is about the evidence, not the case.
Holds are never deleted; a released one keeps who released it, when and why.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from sqlite_utils import Database

from central.caseflow.hooks import AuditHook, order_subject
from central.store.transactions import immediate
from central.timefmt import utc_iso

__all__ = [
    "HOLD_ACTION",
    "RELEASE_ACTION",
    "AlreadyHeld",
    "Hold",
    "HoldError",
    "NoSuchOrder",
    "NotHeld",
    "active_hold",
    "list_holds",
    "place_hold",
    "release_hold",
]

HOLD_ACTION = "order.hold"
RELEASE_ACTION = "order.hold.release"
MAX_REASON_CHARS = 2000
_COLUMNS = (
    "h.id, h.work_order_id, h.reason, h.placed_by, h.placed_at, h.released_by, h.released_at, h.release_reason, w.site"
)


class HoldError(ValueError):
    """A hold cannot be placed or released; the text says what to do instead."""


class NoSuchOrder(HoldError):
    pass


class AlreadyHeld(HoldError):
    pass


class NotHeld(HoldError):
    pass


@dataclass(frozen=True)
class Hold:
    id: int
    work_order_id: str
    reason: str
    placed_by: str
    placed_at: str
    released_by: str | None = None
    released_at: str | None = None
    release_reason: str | None = None
    site: str | None = None  # the order's site (who may see the hold is decided by it)

    @property
    def active(self) -> bool:
        return self.released_at is None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "active": self.active}


def _hold(row: Any) -> Hold:
    return Hold(
        id=int(row[0]),
        work_order_id=str(row[1]),
        reason=str(row[2]),
        placed_by=str(row[3]),
        placed_at=str(row[4]),
        released_by=row[5],
        released_at=row[6],
        release_reason=row[7],
        site=row[8],
    )


def _checked(reason: str, actor: str, what: str) -> str:
    if not actor.strip():
        raise HoldError(f"{what}: who does it (actor) must be given")
    text = reason.strip()
    if not text:
        raise HoldError(f"{what} needs a reason (the case, complaint or request it is for)")
    if len(text) > MAX_REASON_CHARS:
        raise HoldError(f"{what}: the reason is longer than {MAX_REASON_CHARS} characters")
    return text


def _order(db: Database, order_id: str) -> tuple[str, str]:
    row = db.execute("SELECT site, status FROM work_orders WHERE id = ?", [order_id]).fetchone()
    if row is None:
        raise NoSuchOrder(f"no work order {order_id!r}: check the id (`garbagewatch central orders` lists them)")
    return str(row[0]), str(row[1])


def active_hold(db: Database, order_id: str) -> Hold | None:
    """The order's active hold, if it has one."""
    row = db.execute(
        f"SELECT {_COLUMNS} FROM legal_holds h LEFT JOIN work_orders w ON w.id = h.work_order_id"
        " WHERE h.work_order_id = ? AND h.released_at IS NULL",
        [order_id],
    ).fetchone()
    return _hold(row) if row else None


def list_holds(db: Database, *, sites: frozenset[str] | None = None, include_released: bool = False) -> list[Hold]:
    """Holds on orders at these sites (None: every site), oldest first; active ones unless `include_released`."""
    where, params = [], []
    if not include_released:
        where.append("h.released_at IS NULL")
    if sites is not None:
        if not sites:
            return []
        where.append("w.site IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(sites)))
    sql = f"SELECT {_COLUMNS} FROM legal_holds h LEFT JOIN work_orders w ON w.id = h.work_order_id"
    sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY h.id"
    return [_hold(r) for r in db.execute(sql, params)]


def place_hold(db: Database, order_id: str, *, reason: str, actor: str, audit: AuditHook, now: float) -> Hold:
    """Pin the order's evidence; raise NoSuchOrder, AlreadyHeld or HoldError (no reason)."""
    text = _checked(reason, actor, "a legal hold")
    with immediate(db):
        site, status = _order(db, order_id)
        current = active_hold(db, order_id)
        if current is not None:
            raise AlreadyHeld(
                f"{order_id} is already on legal hold (placed {current.placed_at} by {current.placed_by}:"
                f" {current.reason!r}); release that hold first to place one with another reason"
            )
        stamp = utc_iso(now)
        cur = db.execute(
            "INSERT INTO legal_holds (work_order_id, reason, placed_by, placed_at) VALUES (?, ?, ?, ?)",
            [order_id, text, actor, stamp],
        )
        hold = Hold(int(cur.lastrowid or 0), order_id, text, actor, stamp, site=site)
        audit(actor, HOLD_ACTION, order_subject(order_id), text, {"hold_id": hold.id, "status": status})
    return hold


def release_hold(db: Database, order_id: str, *, reason: str, actor: str, audit: AuditHook, now: float) -> Hold:
    """End the order's active hold (its files fall under the retention rule again); raise
    NoSuchOrder, NotHeld or HoldError (no reason)."""
    text = _checked(reason, actor, "releasing a legal hold")
    with immediate(db):
        _, status = _order(db, order_id)
        current = active_hold(db, order_id)
        if current is None:
            raise NotHeld(
                f"{order_id} has no active legal hold, so there is nothing to release"
                " (`garbagewatch central holds` lists the active ones)"
            )
        stamp = utc_iso(now)
        db.execute(
            "UPDATE legal_holds SET released_by = ?, released_at = ?, release_reason = ? WHERE id = ?",
            [actor, stamp, text, current.id],
        )
        audit(
            actor,
            RELEASE_ACTION,
            order_subject(order_id),
            text,
            {"hold_id": current.id, "placed_by": current.placed_by, "placed_at": current.placed_at, "status": status},
        )
    return Hold(
        current.id,
        order_id,
        current.reason,
        current.placed_by,
        current.placed_at,
        released_by=actor,
        released_at=stamp,
        release_reason=text,
        site=current.site,
    )
