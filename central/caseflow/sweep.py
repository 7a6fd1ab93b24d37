"""The sweep: deadlines and escalation for the orders whose next check has come, and offline cameras.

Each order stores when it next needs looking at (`next_escalation_at`: its reminder, its next
ladder level, its next repeat; NULL while its clock is stopped). The sweep reads only the rows
at or before now, through a partial index on that column, so its cost follows what is due, not
how many orders are open. For each it plans (central.caseflow.ladder.plan) what to send, queues
those notices to the ladder's roles at the order's site, records the step in the order's
history, calls the audit hook and stores the new state and next check, in batches of 1000
orders, one transaction each (a burst does not hold the write lock long enough to stall
ingest). Cameras offline for longer than `escalation.camera_offline_s` are reported to their
site's responsible person, once per outage.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from central.caseflow.flow import CaseFlow
from central.caseflow.hooks import AuditHook
from central.caseflow.ladder import EscalationState, plan
from central.caseflow.states import CLOCK_RUNNING, Status
from central.notify.grouping import Notice
from central.notify.messages import camera_offline_message, order_message
from central.notify.recipients import Target
from central.store.transactions import immediate
from central.timefmt import utc_iso

__all__ = ["SweepResult", "sweep", "sweep_cameras", "sweep_orders"]

log = logging.getLogger("central.caseflow")

ACTOR = "system:escalation"
_RETRY_S = 3600.0

_DUE_ORDERS = (
    "SELECT id, event_code, site, camera, zone, address, lat, lon, status, due_at, due_ts, clock_start_ts,"
    " escalation_level, reminded, escalation_repeats, assignee, snapshot_sha256 FROM work_orders"
    " WHERE next_escalation_at <= ? ORDER BY next_escalation_at LIMIT ?"
)


@dataclass
class SweepResult:
    orders: int = 0  # orders looked at
    steps: int = 0  # reminders and escalations taken
    notices: int = 0  # notices queued (per channel)
    cameras: int = 0  # offline cameras reported

    def __iadd__(self, other: SweepResult) -> SweepResult:
        self.orders += other.orders
        self.steps += other.steps
        self.notices += other.notices
        self.cameras += other.cameras
        return self


def sweep(
    db: Database, flow: CaseFlow, now: float, *, batch: int = 1000, audit: AuditHook | None = None
) -> SweepResult:
    """One full pass: every due order, then the cameras."""
    result = sweep_orders(db, flow, now, batch=batch, audit=audit)
    result += sweep_cameras(db, flow, now)
    return result


def sweep_orders(
    db: Database, flow: CaseFlow, now: float, *, batch: int = 1000, audit: AuditHook | None = None
) -> SweepResult:
    result = SweepResult()
    while True:
        with immediate(db):
            rows = list(db.query(_DUE_ORDERS, [now, batch]))
            part = _escalate(db, flow, rows, now, audit or flow.audit)
        result += part
        if len(rows) < batch:
            return result


def _escalate(db: Database, flow: CaseFlow, rows: list[dict[str, Any]], now: float, audit: AuditHook) -> SweepResult:
    stamp = utc_iso(now)
    console = flow.config.notify.console_url
    updates: list[tuple[Any, ...]] = []
    history: list[tuple[Any, ...]] = []
    deliveries: list[tuple[Notice, Target]] = []
    audience: dict[tuple[str, tuple[str, ...], str | None], list[Target]] = {}  # (site, roles, assignee)
    steps = 0
    for row in rows:
        if Status(row["status"]) not in CLOCK_RUNNING or row["due_ts"] is None:
            updates.append(
                (row["escalation_level"], row["reminded"], row["escalation_repeats"], None, stamp, row["id"])
            )
            continue
        rules = flow.rules.for_site(row["site"])
        state = EscalationState(int(row["escalation_level"]), bool(row["reminded"]), int(row["escalation_repeats"]))
        try:
            p = plan(
                due=float(row["due_ts"]),
                clock_start=float(row["clock_start_ts"]),
                state=state,
                now=now,
                policy=rules.escalation,
                calendar=rules.calendar,
            )
        except (TypeError, ValueError) as exc:
            # One order that cannot be planned must not stop the others: look again in an hour.
            log.error("order %s: cannot plan its escalation, next try in 1 h: %s", row["id"], exc)
            updates.append((state.level, int(state.reminded), state.repeats, now + _RETRY_S, stamp, row["id"]))
            continue
        updates.append((p.state.level, int(p.state.reminded), p.state.repeats, p.next_at, stamp, row["id"]))
        if not p.steps:
            continue
        for step in p.steps:
            roles = [step.role] if step.role else flow.config.notify.route(step.kind)
            title, body = order_message(step.kind, row, console, level=step.level)
            notice = Notice(
                kind=step.kind,
                key=f"{row['id']}|{step.kind}{step.level}@{step.at:.0f}",
                site=row["site"],
                subject=row["id"],
                order_id=row["id"],
                title=title,
                body=body,
                snapshot=row["snapshot_sha256"],
            )
            who = (row["site"], tuple(roles), row["assignee"])
            targets = audience.get(who)
            if targets is None:
                targets = audience[who] = flow.recipients.targets(roles, rules.roles, row["assignee"])
            deliveries.extend((notice, t) for t in targets)
        # One history row and one audit call per order and sweep, however many levels it climbed.
        steps += len(p.steps)
        taken = [{"kind": s.kind, "level": s.level, "role": s.role} for s in p.steps]
        facts = {"steps": taken, "due_at": row["due_at"], "level": p.state.level}
        reason = ", ".join(_describe(s.kind, s.level) for s in p.steps)
        history.append((row["id"], stamp, ACTOR, "escalate", row["status"], row["status"], reason, json.dumps(facts)))
        audit(ACTOR, "order.escalate", row["id"], reason, facts)
    db.conn.executemany(
        "UPDATE work_orders SET escalation_level = ?, reminded = ?, escalation_repeats = ?, next_escalation_at = ?,"
        " updated_at = ? WHERE id = ?",
        updates,
    )
    db.conn.executemany(
        "INSERT INTO order_history (work_order_id, at, actor, action, from_status, to_status, reason, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        history,
    )
    notices = flow.enqueue(db, deliveries, now)
    return SweepResult(orders=len(rows), steps=steps, notices=notices)


def _describe(kind: str, level: int) -> str:
    return f"{kind.replace('_', ' ')} (level {level})" if level else "due soon"


def sweep_cameras(db: Database, flow: CaseFlow, now: float) -> SweepResult:
    """Report each camera offline for longer than escalation.camera_offline_s, once per outage."""
    limit = flow.config.escalation.camera_offline_s
    with immediate(db):
        rows = db.execute(
            "SELECT c.device_id, c.camera, c.since, d.site FROM cameras c"
            " LEFT JOIN devices d ON d.device_id = c.device_id"
            " WHERE c.online = 0 AND c.offline_notified = 0 AND c.since <= ?",
            [now - limit],
        ).fetchall()
        deliveries: list[tuple[Notice, Target]] = []
        for device_id, camera, since, site in rows:
            site = site or _site_of_camera(db, device_id, camera)
            rules = flow.rules.for_site(site)
            subject = f"camera:{device_id}/{camera}"
            title, body = camera_offline_message(
                device_id=device_id,
                camera=camera,
                site=site,
                since=utc_iso(since),
                minutes=(now - float(since)) / 60,
                console_url=flow.config.notify.console_url,
            )
            notice = Notice(
                kind="camera_offline",
                key=f"{subject}|offline@{float(since):.0f}",
                site=site,
                subject=subject,
                order_id="",
                title=title,
                body=body,
            )
            targets = flow.recipients.targets(flow.config.notify.route("camera_offline"), rules.roles)
            deliveries.extend((notice, t) for t in targets)
            log.warning(
                "camera %s of %s (site %s) offline since %s: telling the site",
                camera,
                device_id,
                site or "?",
                utc_iso(since),
            )
        db.conn.executemany(
            "UPDATE cameras SET offline_notified = 1 WHERE device_id = ? AND camera = ?",
            [(d, c) for d, c, _, _ in rows],
        )
        notices = flow.enqueue(db, deliveries, now)
    return SweepResult(cameras=len(rows), notices=notices)


def _site_of_camera(db: Database, device_id: str, camera: str) -> str:
    """A device configured without a site: the site its camera last reported garbage at."""
    row = db.execute(
        "SELECT site FROM spots WHERE device_id = ? AND camera = ? ORDER BY last_at DESC LIMIT 1", [device_id, camera]
    ).fetchone()
    return str(row[0]) if row else ""
