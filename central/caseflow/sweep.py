"""The sweep: deadlines and escalation for the orders whose next check has come, and offline cameras.

Each order stores when it next needs looking at (`next_escalation_at`: its reminder, its next
ladder level, its next repeat; NULL while its clock is stopped). The sweep reads only the rows
at or before now, through a partial index on that column, so its cost follows what is due, not
how many orders are open. For each it plans (central.caseflow.ladder.plan) what to send, and
stores the new state and next check; the notices to the ladder's roles at the order's site, one
history row per order and one audit entry per order are gathered and written together at the
end of the transaction: history in one statement, audit through the hook's `append_many` when it
has one (central.audit.AuditTrail does: one chained batch), notices grouped per recipient and
site before any outbox row is written (central.notify.grouping: one message per recipient, site
and transaction, still one item per order and channel, so the message lists every order and a
notice is queued once).

A transaction reads the due orders `batch` at a time and stops reading once what it planned and
what it will take to write it add up to `hold_s` of holding the write lock (the writing is timed
in each transaction, to size the next): a burst of thousands of due orders commits about every
`hold_s` (0.25 s), so ingest waits about that long at most, and notices of one recipient and site are
grouped over as many orders as fit.
The transactions commit without waiting for the disk (synchronous=NORMAL, as ingest's do), and
each one's fsync of the WAL runs on a helper thread while the next one plans
(central.store.durability.FsyncAhead); the sweep returns only once all of them are durable. A
power cut in between loses only the sweep's latest steps, which the next sweep takes again: if
the notifier had already sent one of their notices, that notice goes out twice, the same
window the notifier itself has between a send and its record (central.notify.worker).
Cameras offline for longer than `escalation.camera_offline_s` are reported to their site's
responsible person, once per outage.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from central.caseflow.flow import CaseFlow
from central.caseflow.hooks import AuditHook, order_subject
from central.caseflow.ladder import EscalationPlan, MemoCalendar, PlanMemo
from central.caseflow.rules import CaseRules
from central.caseflow.states import CLOCK_RUNNING
from central.notify.grouping import Notice
from central.notify.messages import camera_offline_message, order_message
from central.notify.recipients import Target
from central.store.durability import FsyncAhead, commits_not_waiting, wal_path
from central.store.transactions import immediate
from central.timefmt import utc_iso

__all__ = ["SweepResult", "sweep", "sweep_cameras", "sweep_orders"]

log = logging.getLogger("central.caseflow")

ACTOR = "system:escalation"
_RETRY_S = 3600.0
HOLD_S = 0.25  # how long one transaction of the sweep may keep the write lock, about

_COLUMNS = (
    "id, event_code, site, camera, zone, address, lat, lon, status, due_at, due_ts, clock_start_ts,"
    " escalation_level, reminded, escalation_repeats, assignee, snapshot_sha256"
)
_NAMES = tuple(c.strip() for c in _COLUMNS.split(","))
_DUE_ORDERS = (
    f"SELECT rowid, {_COLUMNS} FROM work_orders WHERE next_escalation_at <= ? ORDER BY next_escalation_at LIMIT ?"
)
# rowid: read and written in the same transaction, so it still names the row (no second index lookup).
_STORE_STATE = (
    "UPDATE work_orders SET escalation_level = ?, reminded = ?, escalation_repeats = ?, next_escalation_at = ?,"
    " updated_at = ? WHERE rowid = ?"
)
_ADD_HISTORY = (
    "INSERT INTO order_history (work_order_id, at, actor, action, from_status, to_status, reason, detail)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

AuditEntry = tuple[str, str, str, str, dict[str, Any]]
_CLOCK_RUNNING = frozenset(s.value for s in CLOCK_RUNNING)  # compared with the stored text, no Status() per row


@dataclass
class SweepResult:
    orders: int = 0  # orders looked at
    steps: int = 0  # reminders and escalations taken
    notices: int = 0  # notices queued (per channel)
    cameras: int = 0  # offline cameras reported
    transactions: int = 0  # write transactions the orders took
    longest_hold_s: float = 0.0  # the longest of them, from BEGIN IMMEDIATE to the end of COMMIT

    def __iadd__(self, other: SweepResult) -> SweepResult:
        self.orders += other.orders
        self.steps += other.steps
        self.notices += other.notices
        self.cameras += other.cameras
        self.transactions += other.transactions
        self.longest_hold_s = max(self.longest_hold_s, other.longest_hold_s)
        return self


def sweep(
    db: Database,
    flow: CaseFlow,
    now: float,
    *,
    batch: int = 250,
    hold_s: float = HOLD_S,
    audit: AuditHook | None = None,
) -> SweepResult:
    """One full pass: every due order, then the cameras."""
    result = sweep_orders(db, flow, now, batch=batch, hold_s=hold_s, audit=audit)
    result += sweep_cameras(db, flow, now)
    return result


def sweep_orders(
    db: Database,
    flow: CaseFlow,
    now: float,
    *,
    batch: int = 250,
    hold_s: float = HOLD_S,
    audit: AuditHook | None = None,
) -> SweepResult:
    result = SweepResult()
    escalator = _Escalator(flow, now)
    hook = audit or flow.audit
    write_ratio = 2.0  # the end of a transaction (history, audit, notices, commit) per unit of planning
    # Inside a caller's transaction there is nothing to make durable here: the caller commits.
    wal = None if db.conn.in_transaction else wal_path(db)
    durable = FsyncAhead(wal)
    more = True
    with commits_not_waiting(db, wal):
        try:
            while more:
                escalator.begin()
                with immediate(db):
                    began = time.perf_counter()
                    while True:
                        rows = db.execute(_DUE_ORDERS, [now, batch]).fetchall()
                        db.conn.executemany(_STORE_STATE, escalator.plan_rows(rows))
                        result.orders += len(rows)
                        more = len(rows) == batch
                        planned = time.perf_counter() - began
                        if not more or planned * (1.0 + write_ratio) >= hold_s:
                            break
                    result.notices += escalator.write(db, hook)
                ended = time.perf_counter()
                if more:
                    durable.start()  # this commit goes to disk while the next transaction plans
                # Measured, not guessed: the next transaction plans only what it can also write in time.
                write_ratio = (ended - began - planned) / max(planned, 1e-6)
                result.transactions += 1
                result.longest_hold_s = max(result.longest_hold_s, ended - began)
                result.steps += escalator.steps
        finally:
            durable.finish()  # every transaction committed above is durable before the sweep returns
    return result


class _Escalator:
    """One sweep's plans, and what its open transaction writes when it ends.

    Site rules, routes and recipients are looked up once per sweep, and the ladder's times once
    per due time (orders filed overnight all fall due at the same instant). So are the facts an
    order's history row and audit entry record: orders that took the same steps towards the
    same due time share one facts object and its JSON (AuditTrail serialises it once per batch).
    """

    def __init__(self, flow: CaseFlow, now: float) -> None:
        self.flow = flow
        self.now = now
        self.stamp = utc_iso(now)
        self.console = flow.config.notify.console_url
        self._rules: dict[str, tuple[CaseRules, PlanMemo]] = {}
        self._calendars: dict[int, MemoCalendar] = {}
        self._planners: dict[tuple[int, int], PlanMemo] = {}
        self._routes: dict[str, tuple[str, ...]] = {}
        self._audience: dict[tuple[str, tuple[str, ...], str | None], list[Target]] = {}
        self._facts: dict[tuple[int, str], _Facts] = {}
        self.begin()

    def begin(self) -> None:
        self.history: list[tuple[Any, ...]] = []
        self.audit: list[AuditEntry] = []
        self.deliveries: list[tuple[Notice, Target]] = []
        self.steps = 0

    def plan_rows(self, rows: list[Any]) -> list[tuple[Any, ...]]:
        """Plan each (rowid, *_NAMES) row; return the new states to store, gather the rest."""
        stamp = self.stamp
        updates: list[tuple[Any, ...]] = []
        for r in rows:
            rowid, order_id, status, due_ts = r[0], r[1], r[9], r[11]
            if due_ts is None or status not in _CLOCK_RUNNING:
                updates.append((r[13], r[14], r[15], None, stamp, rowid))  # its clock stopped: no next check
                continue
            level, reminded, repeats = int(r[13]), bool(r[14]), int(r[15])
            rules, planner = self._site(r[3])
            try:
                p = planner.plan(
                    due=float(due_ts), clock_start=float(r[12]), level=level, reminded=reminded, repeats=repeats
                )
            except (TypeError, ValueError) as exc:
                # One order that cannot be planned must not stop the others: look again in an hour.
                log.error("order %s: cannot plan its escalation, next try in 1 h: %s", order_id, exc)
                updates.append((level, int(reminded), repeats, self.now + _RETRY_S, stamp, rowid))
                continue
            updates.append((p.state.level, int(p.state.reminded), p.state.repeats, p.next_at, stamp, rowid))
            if p.steps:
                self._escalate(dict(zip(_NAMES, r[1:], strict=True)), rules, p)
        return updates

    def _site(self, site: str) -> tuple[CaseRules, PlanMemo]:
        found = self._rules.get(site)
        if found is None:
            rules = self.flow.rules.for_site(site)
            # Sites of one city share its calendar and ladder objects, and so their memos.
            memo = self._calendars.get(id(rules.calendar))
            if memo is None:
                memo = self._calendars[id(rules.calendar)] = MemoCalendar(rules.calendar)
            key = (id(rules.escalation), id(rules.calendar))
            planner = self._planners.get(key)
            if planner is None:
                planner = self._planners[key] = PlanMemo(rules.escalation, memo, self.now)
            found = self._rules[site] = (rules, planner)
        return found

    def _escalate(self, order: dict[str, Any], rules: CaseRules, p: EscalationPlan) -> None:
        order_id, site, assignee = order["id"], order["site"], order["assignee"]
        for step in p.steps:
            roles = (step.role,) if step.role else self._route(step.kind)
            who = (site, roles, assignee)
            targets = self._audience.get(who)
            if targets is None:
                targets = self._audience[who] = self.flow.recipients.targets(roles, rules.roles, assignee)
            if not targets:
                continue
            title, body = order_message(step.kind, order, self.console, level=step.level)
            notice = Notice(
                kind=step.kind,
                key=f"{order_id}|{step.kind}{step.level}@{step.at:.0f}",
                site=site,
                subject=order_id,
                order_id=order_id,
                title=title,
                body=body,
                snapshot=order["snapshot_sha256"],
            )
            self.deliveries.extend((notice, t) for t in targets)
        # One history row and one audit entry per order and sweep, however many levels it climbed.
        self.steps += len(p.steps)
        # Plans are shared (PlanMemo keeps each for the whole sweep), so a plan's id names its steps.
        key = (id(p), order["due_at"])
        f = self._facts.get(key)
        if f is None:
            f = self._facts[key] = _Facts.of(p, order["due_at"])
        status = order["status"]
        self.history.append((order_id, self.stamp, ACTOR, "escalate", status, status, f.reason, f.text))
        self.audit.append((ACTOR, "order.escalate", order_subject(order_id), f.reason, f.facts))

    def _route(self, kind: str) -> tuple[str, ...]:
        roles = self._routes.get(kind)
        if roles is None:
            roles = self._routes[kind] = tuple(self.flow.config.notify.route(kind))
        return roles

    def write(self, db: Database, audit: AuditHook) -> int:
        """History, audit and notices of the transaction's orders; return the notices queued."""
        db.conn.executemany(_ADD_HISTORY, self.history)
        append_many = getattr(audit, "append_many", None)
        if callable(append_many):  # one chained batch instead of one append per order
            append_many(self.audit)
        else:
            for entry in self.audit:
                audit(*entry)
        return self.flow.enqueue(db, self.deliveries, self.now)


@dataclass(frozen=True)
class _Facts:
    """What an escalation records: the steps taken, as text (reason) and as JSON facts (detail)."""

    reason: str
    facts: dict[str, Any]  # shared by the audit entries of every order it describes: never changed
    text: str  # facts as the history row stores them

    @classmethod
    def of(cls, p: EscalationPlan, due_at: str) -> _Facts:
        taken = [{"kind": s.kind, "level": s.level, "role": s.role} for s in p.steps]
        facts = {"steps": taken, "due_at": due_at, "level": p.state.level}
        reason = ", ".join(_describe(s.kind, s.level) for s in p.steps)
        return cls(reason, facts, json.dumps(facts))


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
