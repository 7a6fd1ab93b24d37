"""The deadline sweep as it was before issue #5's rework (commit ee0931b), kept to time beside it.

Per order: plan, queue its notices, one history row, one audit call; in transactions of 1000
orders, each message of a recipient and site recomposed once per transaction from what the
outbox holds. Its audit trail appends row by row, each canonicalised by `rfc8785` (pure Python),
as `central.audit.AuditTrail` did. Only `python3 -m bench.deadline_sweep --baseline` uses this.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlite_utils import Database

from central.audit.chain import GENESIS_SHA256
from central.caseflow.flow import CaseFlow
from central.caseflow.hooks import AuditHook
from central.caseflow.ladder import EscalationState, plan
from central.caseflow.states import CLOCK_RUNNING, Status
from central.caseflow.sweep import ACTOR, SweepResult
from central.notify.grouping import MAX_ATTACHMENTS, REPEAT_LIMITED, GroupingPolicy, Notice, _heard_lately, compose
from central.notify.messages import order_message
from central.notify.recipients import Target
from central.store.transactions import immediate
from central.timefmt import Clock, utc_iso
from wire.signing import canonical_json

__all__ = ["BaselineAuditTrail", "baseline_sweep_orders"]

_DUE_ORDERS = (
    "SELECT id, event_code, site, camera, zone, address, lat, lon, status, due_at, due_ts, clock_start_ts,"
    " escalation_level, reminded, escalation_repeats, assignee, snapshot_sha256 FROM work_orders"
    " WHERE next_escalation_at <= ? ORDER BY next_escalation_at LIMIT ?"
)


class BaselineAuditTrail:
    """AuditTrail's append before the rework: insert, read the previous row, hash (rfc8785), update."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def __call__(self, actor: str, action: str, subject: str, reason: str, detail: dict[str, Any]) -> None:
        f = {
            "at": utc_iso(self.clock()),
            "actor": actor,
            "action": action,
            "subject": subject,
            "reason": reason,
            "detail": canonical_json(dict(detail)).decode(),
        }
        conn = self.db.conn
        cur = conn.execute(
            "INSERT INTO audit_log (at, actor, action, subject, reason, detail, prev_sha256, sha256)"
            " VALUES (?, ?, ?, ?, ?, ?, '', '')",
            [f["at"], f["actor"], f["action"], f["subject"], f["reason"], f["detail"]],
        )
        seq = int(cur.lastrowid or 0)
        prev = conn.execute("SELECT sha256 FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT 1", [seq]).fetchone()
        prev_sha = str(prev[0]) if prev else GENESIS_SHA256
        sha = hashlib.sha256(canonical_json({"seq": seq, "prev_sha256": prev_sha, **f})).hexdigest()
        conn.execute("UPDATE audit_log SET prev_sha256 = ?, sha256 = ? WHERE seq = ?", [prev_sha, sha, seq])


def baseline_sweep_orders(
    db: Database, flow: CaseFlow, now: float, *, batch: int = 1000, audit: AuditHook | None = None
) -> SweepResult:
    result = SweepResult()
    while True:
        with immediate(db):
            rows = list(db.query(_DUE_ORDERS, [now, batch]))
            part = _escalate(db, flow, rows, now, audit or flow.audit)
        result += part
        result.transactions += 1
        if len(rows) < batch:
            return result


def _escalate(db: Database, flow: CaseFlow, rows: list[dict[str, Any]], now: float, audit: AuditHook) -> SweepResult:
    stamp = utc_iso(now)
    console = flow.config.notify.console_url
    updates: list[tuple[Any, ...]] = []
    history: list[tuple[Any, ...]] = []
    deliveries: list[tuple[Notice, Target]] = []
    audience: dict[tuple[str, tuple[str, ...], str | None], list[Target]] = {}
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
        except (TypeError, ValueError):
            updates.append((state.level, int(state.reminded), state.repeats, now + 3600.0, stamp, row["id"]))
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
        steps += len(p.steps)
        taken = [{"kind": s.kind, "level": s.level, "role": s.role} for s in p.steps]
        facts = {"steps": taken, "due_at": row["due_at"], "level": p.state.level}
        reason = ", ".join(f"{s.kind.replace('_', ' ')} (level {s.level})" if s.level else "due soon" for s in p.steps)
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
    notices = _enqueue(db, deliveries, now, flow.grouping) if deliveries else 0
    return SweepResult(orders=len(rows), steps=steps, notices=notices)


def _enqueue(db: Database, todo: list[tuple[Notice, Target]], now: float, policy: GroupingPolicy) -> int:
    keys = [f"{t.recipient}|{t.channel}|{n.key}" for n, t in todo]
    known: set[str] = set()
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT dedupe_key FROM notification_items WHERE dedupe_key IN ({marks})"
        known.update(r[0] for r in db.execute(sql, chunk))
    groups: dict[tuple[str, str, str], list[tuple[Notice, Target, str]]] = {}
    for (notice, target), key in zip(todo, keys, strict=True):
        if key in known:
            continue
        if (
            policy.repeat_s > 0
            and notice.kind in REPEAT_LIMITED
            and _heard_lately(db, target, notice, now - policy.repeat_s)
        ):
            continue
        known.add(key)
        group = notice.site if policy.group_s > 0 else key
        groups.setdefault((target.channel, target.recipient, group), []).append((notice, target, key))
    for (channel, recipient, group), items in groups.items():
        _queue_group(db, channel, recipient, group, items, now, policy)
    return sum(len(v) for v in groups.values())


def _queue_group(
    db: Database,
    channel: str,
    recipient: str,
    group: str,
    items: list[tuple[Notice, Target, str]],
    now: float,
    policy: GroupingPolicy,
) -> None:
    latest = db.execute(
        "SELECT id, status, scheduled_at, attachments FROM notifications WHERE channel = ? AND recipient = ?"
        " AND group_key = ? ORDER BY scheduled_at DESC, id DESC LIMIT 1",
        [channel, recipient, group],
    ).fetchone()
    first = items[0][0]
    if latest is not None and latest[1] == "pending":
        message_id, attachments = int(latest[0]), list(json.loads(latest[3]))
    else:
        at = now if latest is None else max(now, float(latest[2]) + policy.group_s)
        cursor = db.execute(
            "INSERT INTO notifications (work_order_id, kind, channel, recipient, group_key, title, body, items,"
            " attachments, status, attempts, scheduled_at, next_attempt_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, '', '', 0, '[]', 'pending', 0, ?, ?, ?)",
            [first.order_id, first.kind, channel, recipient, group, at, at, utc_iso(now)],
        )
        message_id, attachments = int(cursor.lastrowid or 0), []
    db.conn.executemany(
        "INSERT INTO notification_items (notification_id, dedupe_key, channel, recipient, subject, kind, title,"
        " body, created_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(message_id, key, channel, recipient, n.subject, n.kind, n.title, n.body, now) for n, _, key in items],
    )
    for notice, target, _ in items:
        if (
            target.attach
            and notice.snapshot
            and notice.snapshot not in attachments
            and len(attachments) < MAX_ATTACHMENTS
        ):
            attachments.append(notice.snapshot)
    message = [message_id]
    total = int(db.execute("SELECT count(*) FROM notification_items WHERE notification_id = ?", message).fetchone()[0])
    shown = [
        (str(k), str(t), str(b))
        for k, t, b in db.execute(
            "SELECT kind, title, body FROM notification_items WHERE notification_id = ? ORDER BY id LIMIT ?",
            [message_id, policy.max_items],
        )
    ]
    kinds = {
        str(k): int(n)
        for k, n in db.execute(
            "SELECT kind, count(*) FROM notification_items WHERE notification_id = ? GROUP BY kind", message
        )
    }
    title, body = compose(first.site, shown, total, kinds, policy)
    db.execute(
        "UPDATE notifications SET title = ?, body = ?, items = ?, attachments = ? WHERE id = ?",
        [title, body, total, json.dumps(attachments), message_id],
    )
