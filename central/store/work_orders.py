"""Filing a verified event message: its row, its files, and the work order it opens, joins, reopens or closes.

One exposure event (event_id) sends several signed messages: confirmed, updates, cleared. Each is
filed once, under its message_id (the sha256 of the signed manifest bytes). The rules:
- a message of an event that already belongs to an order joins that order (a late update
  joins its closed order without reopening it);
- otherwise confirmed and update join the open order (any status of OPEN_STATUSES) of the same
  spot (device, site, camera, zone);
- with no open order at the spot, garbage there is new or back: back within `reopen_window_s` of
  the spot's last order closing, that order is reopened; otherwise a new order is filed as
  `registered` (立案), linked to the spot's previous order, and the spot's recurrence count
  goes up when that one had been closed;
- cleared (the spot seen clean, with its after-snapshot) moves the order to `verified` and then
  `closed`, with that message as the evidence, unless another event of the order is still
  active; an order resolved by hand waits in `resolved` for exactly this; with no order the
  message is filed without one;
- garbage the camera still sees (an update, or a new event) `resolve_grace_s` after an order
  was resolved by hand reopens it.
The caller runs `file_event` inside `db.atomic()` with anything else that must commit with it.
A message may be filed without some of its files when the edge declared them dropped (its spool
gave them up after signing); their event_files rows say `missing = 1`.
The reads (work_order, list_work_orders, order_history, ...) live in central.store.order_reads and
are re-exported here for the callers that import them from this module.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlite_utils import Database

from central.caseflow.hooks import AuditHook, no_audit, order_subject
from central.caseflow.rules import CaseRules, Place
from central.caseflow.states import TRANSITIONS, Action, Status, transition
from central.store.order_changes import Change, apply_transition, clock_fields, record_history
from central.store.order_reads import (
    OPEN,
    filed_message,
    hotspots,
    list_work_orders,
    message_id,
    messages_of_event,
    new_work_order_id,
    open_order_at,
    order_evidence,
    order_history,
    order_of_event,
    spot_at,
    work_order,
)
from central.timefmt import utc_iso
from wire.messages import Manifest
from wire.timefmt import parse_ts

__all__ = [
    "OPEN",
    "Filing",
    "file_event",
    "filed_message",
    "hotspots",
    "list_work_orders",
    "message_id",
    "messages_of_event",
    "new_work_order_id",
    "order_evidence",
    "order_history",
    "work_order",
]

_PHOTO_ROLES = ("snapshot_boxes", "snapshot")
_AFTER_ROLES = ("after_snapshot", "snapshot")


@cache
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _insert(db: Database, table: str, row: Mapping[str, Any]) -> None:
    """A plain INSERT of one row (names from this module only). sqlite-utils' `table.insert` would
    add a savepoint and two reads of sqlite_master per row: a fifth of filing an event's statements."""
    db.execute(_insert_sql(table, tuple(row)), list(row.values()))


@dataclass(frozen=True)
class Filing:
    work_order_id: str | None
    opened: bool = False
    closed: bool = False
    reopened: bool = False
    changes: tuple[Change, ...] = field(default=(), compare=False)


# -- the filing rules --------------------------------------------------------------------------------


def _file_of(m: Manifest, roles: tuple[str, ...], missing: Collection[str]) -> str | None:
    for role in roles:
        for f in m.files:
            if f.role == role and f.sha256 not in missing:
                return f.sha256
    return None


def _observed_at(m: Manifest, received_at: float) -> float:
    """When the edge saw it, if its clock is trusted; else when it arrived."""
    if m.clock_synced:
        try:
            return parse_ts(m.at)
        except ValueError:
            pass
    return received_at


@dataclass(frozen=True)
class _Context:
    m: Manifest
    msg_id: str
    now: float
    rules: CaseRules
    place: Place
    missing: Collection[str]
    audit: AuditHook

    @property
    def actor(self) -> str:
        return f"camera:{self.m.device_id}/{self.m.camera}"


def _open_new(db: Database, c: _Context, previous: dict[str, Any] | None, spot: dict[str, Any] | None) -> Change:
    m, now, rules = c.m, c.now, c.rules
    t = transition(None, Action.REGISTER, c.actor)
    order_id = new_work_order_id(db, now)
    came_back = previous is not None and previous["status"] in (Status.VERIFIED, Status.CLOSED)
    recurrence = int(spot["recurrences"]) + 1 if spot is not None and came_back else 0
    limit = rules.limit_for(rules.event_code)
    stamp = utc_iso(now)
    row: dict[str, Any] = {
        "id": order_id,
        "event_code": rules.event_code,
        "device_id": m.device_id,
        "site": m.site,
        "camera": m.camera,
        "zone": m.zone,
        "status": t.to_status.value,
        "opened_at": stamp,
        "opened_ts": now,
        "registered_at": stamp,
        "verified_at": None,
        "closed_at": None,
        "updated_at": stamp,
        "first_event_id": m.event_id,
        "last_event_id": m.event_id,
        "event_count": 0,
        "detections": len(m.detections),
        "source": "camera",
        "lat": c.place.lat,
        "lon": c.place.lon,
        "address": c.place.address,
        "recurrence": recurrence,
        "linked_order_id": previous["id"] if previous is not None else None,
        "snapshot_sha256": _file_of(m, _PHOTO_ROLES, c.missing),
        **clock_fields(clock_start=now, limit_s=limit, extension_s=0.0, rules=rules, now=now),
    }
    _insert(db, "work_orders", row)
    db.execute(
        "INSERT INTO spots (device_id, site, camera, zone, orders, recurrences, last_order_id, first_at, last_at)"
        " VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?) ON CONFLICT (device_id, site, camera, zone) DO UPDATE SET"
        " orders = orders + 1, recurrences = excluded.recurrences, last_order_id = excluded.last_order_id,"
        " last_at = excluded.last_at",
        [
            m.device_id,
            m.site,
            m.camera,
            m.zone,
            recurrence or (spot or {}).get("recurrences", 0),
            order_id,
            stamp,
            stamp,
        ],
    )
    facts = {
        "from": None,
        "to": t.to_status.value,
        "event_id": m.event_id,
        "message_id": c.msg_id,
        "due_at": row["due_at"],
        "linked_order_id": row["linked_order_id"],
        "recurrence": recurrence,
    }
    record_history(
        db,
        order_id,
        at=now,
        actor=c.actor,
        action=t.action.value,
        from_status=None,
        to_status=t.to_status.value,
        reason="",
        detail=facts,
    )
    c.audit(c.actor, f"order.{t.action.value}", order_subject(order_id), "", facts)
    return Change(order_id, t.action, None, t.to_status, c.actor, "", now)


def _join(db: Database, order_id: str, c: _Context) -> None:
    db.execute(
        "UPDATE work_orders SET last_event_id = ?, event_count = event_count + 1, detections = ?,"
        " snapshot_sha256 = coalesce(snapshot_sha256, ?), updated_at = ? WHERE id = ?",
        [c.m.event_id, len(c.m.detections), _file_of(c.m, _PHOTO_ROLES, c.missing), utc_iso(c.now), order_id],
    )


def _others_active(db: Database, order: dict[str, Any], event_id: str) -> bool:
    """Another event attached since the order's clock started that has not been cleared yet."""
    row = db.execute(
        "SELECT 1 FROM order_events o WHERE o.work_order_id = ? AND o.event_id != ? AND o.attached_at >= ?"
        " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = o.event_id AND e.kind = 'cleared') LIMIT 1",
        [order["id"], event_id, utc_iso(float(order["clock_start_ts"] or 0.0))],
    ).fetchone()
    return row is not None


def _seen_clean(db: Database, order: dict[str, Any], c: _Context) -> Filing:
    status = Status(order["status"])
    if (status, Action.VERIFY) not in TRANSITIONS or _others_active(db, order, c.m.event_id):
        return Filing(order["id"])
    after = _file_of(c.m, _AFTER_ROLES, c.missing)
    evidence = {"message_id": c.msg_id, "event_id": c.m.event_id, "after_snapshot": after}
    verified = apply_transition(
        db,
        order,
        Action.VERIFY,
        actor=c.actor,
        reason="the camera sees the spot clean",
        now=c.now,
        rules=c.rules,
        audit=c.audit,
        fields={"after_snapshot_sha256": after},
        detail=evidence,
    )
    closed = apply_transition(
        db,
        {**order, "status": verified.to_status.value},
        Action.CLOSE,
        actor=c.actor,
        reason="closed with the camera's after-snapshot",
        now=c.now,
        rules=c.rules,
        audit=c.audit,
        detail=evidence,
    )
    return Filing(order["id"], closed=True, changes=(verified, closed))


def _reopen(db: Database, order: dict[str, Any], c: _Context, reason: str) -> Filing:
    change = apply_transition(
        db,
        order,
        Action.REOPEN,
        actor=c.actor,
        reason=reason,
        now=c.now,
        rules=c.rules,
        audit=c.audit,
        detail={"message_id": c.msg_id, "event_id": c.m.event_id},
    )
    return Filing(order["id"], reopened=True, changes=(change,))


def _still_there(order: dict[str, Any], c: _Context, received_at: float) -> bool:
    """Garbage seen well after a person said it was resolved: the camera disagrees."""
    resolved = order.get("resolved_ts")
    return (
        order["status"] == Status.RESOLVED
        and resolved is not None
        and _observed_at(c.m, received_at) > float(resolved) + c.rules.resolve_grace_s
    )


def _choose_order(db: Database, c: _Context) -> Filing:
    m, now = c.m, c.now
    order = order_of_event(db, m.event_id) or open_order_at(db, m)
    if order is not None:
        _join(db, order["id"], c)
        if m.kind == "cleared":
            return _seen_clean(db, order, c)
        if _still_there(order, c, now):
            return _reopen(db, order, c, "the camera still sees garbage after it was resolved")
        return Filing(order["id"])
    if m.kind == "cleared":
        return Filing(None)
    spot = spot_at(db, m)
    previous = None if spot is None else work_order(db, spot["last_order_id"])
    if previous is not None and _comes_back_to(previous, c):
        db.execute(
            "UPDATE spots SET recurrences = recurrences + 1, last_at = ? WHERE device_id = ? AND site = ?"
            " AND camera = ? AND zone = ?",
            [utc_iso(now), m.device_id, m.site, m.camera, m.zone],
        )
        db.execute("UPDATE work_orders SET recurrence = recurrence + 1 WHERE id = ?", [previous["id"]])
        since_min = (now - float(previous["closed_ts"] or now)) / 60
        filing = _reopen(db, previous, c, f"garbage back {since_min:.0f} min after the order was closed")
        _join(db, previous["id"], c)
        return filing
    change = _open_new(db, c, previous, spot)
    _join(db, change.order_id, c)
    return Filing(change.order_id, opened=True, changes=(change,))


def _comes_back_to(previous: dict[str, Any], c: _Context) -> bool:
    """Garbage back at a spot reopens its last order: verified (not closed yet), or closed within the window."""
    if c.rules.reopen_window_s <= 0:
        return False
    if previous["status"] == Status.VERIFIED:
        return True
    closed = previous.get("closed_ts")
    return (
        previous["status"] == Status.CLOSED and closed is not None and c.now - float(closed) <= c.rules.reopen_window_s
    )


def file_event(
    db: Database,
    manifest: Manifest,
    *,
    manifest_json: str,
    signature: str,
    key_id: str,
    received_at: float,
    event_code: str = "0102",
    deadline_hours: float = 4.0,
    rules: CaseRules | None = None,
    place: Place | None = None,
    missing: Collection[str] = (),
    audit: AuditHook = no_audit,
) -> Filing:
    """Insert the message and apply the work order rules. Call only for a message not filed yet.

    `rules` are the site's (central.caseflow.Rulebook); without them, `event_code` and
    `deadline_hours` (on a wall clock, no reopening) stand in. `missing`: sha256s of the
    manifest's files filed as missing (declared dropped by the edge). `audit` hears every
    status change.
    """
    m = manifest
    msg_id = message_id(manifest_json)
    _insert(
        db,
        "events",
        {
            "message_id": msg_id,
            "event_id": m.event_id,
            "device_id": m.device_id,
            "site": m.site,
            "camera": m.camera,
            "zone": m.zone,
            "kind": m.kind,
            "first_seen": m.first_seen,
            "at": m.at,
            "clock_synced": int(m.clock_synced),
            "detections": len(m.detections),
            "manifest": manifest_json,
            "signature": signature,
            "key_id": key_id,
            "received_at": utc_iso(received_at),
            "work_order_id": None,
        },
    )
    db.conn.executemany(
        "INSERT INTO event_files (message_id, event_id, sha256, role, name, missing) VALUES (?, ?, ?, ?, ?, ?)",
        [(msg_id, m.event_id, f.sha256, f.role, f.name, int(f.sha256 in missing)) for f in m.files],
    )
    rules = rules or CaseRules(event_code=event_code, limit_s=deadline_hours * 3600.0)
    context = _Context(m, msg_id, received_at, rules, place or Place(), frozenset(missing), audit)
    filing = _choose_order(db, context)
    if filing.work_order_id is not None:
        db.execute(
            "INSERT INTO order_events (work_order_id, message_id, event_id, kind, attached_at) VALUES (?, ?, ?, ?, ?)",
            [filing.work_order_id, msg_id, m.event_id, m.kind, utc_iso(received_at)],
        )
        db.execute("UPDATE events SET work_order_id = ? WHERE message_id = ?", [filing.work_order_id, msg_id])
    return filing
