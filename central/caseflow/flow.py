"""The case flow's entry points: filing camera events, people's actions, deadline extensions.

    flow = CaseFlow(config, audit=hook)
    flow.file_event(db, manifest, ...)                        # ingest, inside its transaction
    flow.act(db, "WO-20261126-000001", "dispatch", actor="user:li", assignee="wang")
    ext = flow.request_extension(db, order_id, hours=2, actor="user:wang", reason="needs a truck")
    flow.decide_extension(db, ext, approve=True, actor="user:li", reason="ok")
    flow.extend(db, order_id, hours=3, actor="user:li", reason="needs a truck")   # asked and granted at once

Each call is one transaction: the change, its history row, the audit hook and the notices it
causes (queued in the outbox for the notifier) commit together. `act` raises OrderNotFound or
central.caseflow.TransitionError (the API's 404 and 409). The console and the API change an
order's status and deadline through these methods only, so an action gives the same history,
audit rows, deadline and notices whichever door it came through. Audit rows name the order
`order_subject(order_id)`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlite_utils import Database

from central.caseflow.extensions import extended_clock
from central.caseflow.hooks import AuditHook, no_audit, order_subject
from central.caseflow.rules import CaseRules, Rulebook
from central.caseflow.states import CLOCK_RUNNING, Action, Status, TransitionError, transition
from central.config import CentralConfig
from central.notify.grouping import GroupingPolicy, Notice, enqueue_notices
from central.notify.messages import order_closed_message, order_message
from central.notify.recipients import Recipients, Target
from central.store.order_changes import Change, apply_transition, clock_fields, record_history
from central.store.transactions import immediate
from central.store.work_orders import Filing, file_event, new_work_order_id, work_order
from central.timefmt import Clock, system_clock, utc_iso
from wire.messages import Manifest

__all__ = ["MAX_EXTENSION_HOURS", "CaseFlow", "OrderNotFound"]

# The most working hours one extension may add (a month of workdays); the console and the API refuse more.
MAX_EXTENSION_HOURS = 720.0

# Status change -> the notice kind people hear about it.
_NOTICE_OF: Mapping[Action, str] = {
    Action.REGISTER: "opened",
    Action.DISPATCH: "dispatched",
    Action.RESOLVE: "resolved",
    Action.REOPEN: "reopened",
    Action.CLOSE: "closed",
    Action.REJECT: "rejected",
}


class OrderNotFound(LookupError):
    """No work order (or extension) with that id."""


class CaseFlow:
    def __init__(self, config: CentralConfig, *, audit: AuditHook = no_audit, clock: Clock = system_clock) -> None:
        self.config = config
        self.audit = audit
        self.clock = clock
        self.rules = Rulebook(config)
        self.recipients = Recipients(config.notify)
        self.grouping = GroupingPolicy.from_config(config.notify)

    def gaps(self) -> list[str]:
        """Roles the ladder or the routes name that have nobody at a configured site (said at start-up)."""
        found = []
        routed = {r for kind in ("opened", "reminder", "camera_offline") for r in self.config.notify.route(kind)}
        for site in self.config.sites:
            rules = self.rules.for_site(site.id)
            wanted = {step.role for step in rules.escalation.ladder} | routed
            for role in sorted(wanted - {"assignee"}):
                if not rules.roles.get(role):
                    found.append(f"site {site.id}: nobody holds the role {role!r}")
        return found

    # -- the camera -------------------------------------------------------------------------------

    def file_event(
        self,
        db: Database,
        manifest: Manifest,
        *,
        manifest_json: str,
        signature: str,
        key_id: str,
        received_at: float,
        missing: Collection[str] = (),
        audit: AuditHook | None = None,
    ) -> tuple[Filing, int]:
        """File a verified event message by its site's rules; return the filing and the notices queued.

        Run inside the caller's transaction (ingest's `db.atomic()`).
        """
        rules = self.rules.for_site(manifest.site)
        filing = file_event(
            db,
            manifest,
            manifest_json=manifest_json,
            signature=signature,
            key_id=key_id,
            received_at=received_at,
            rules=rules,
            place=self.rules.place(manifest.site, manifest.camera),
            missing=missing,
            audit=audit or self.audit,
        )
        return filing, self.notify_changes(db, filing.changes, rules, received_at)

    # -- people -----------------------------------------------------------------------------------

    def report(
        self,
        db: Database,
        *,
        site: str,
        actor: str,
        description: str,
        camera: str = "",
        zone: str = "",
        event_code: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
        address: str = "",
        audit: AuditHook | None = None,
    ) -> str:
        """File an order someone reported (信息采集): status 'reported', its clock running from now."""
        now = self.clock()
        rules = self.rules.for_site(site)
        code = event_code or rules.event_code
        t = transition(None, Action.REPORT, actor)
        place = self.rules.place(site, camera)
        with immediate(db):
            order_id = new_work_order_id(db, now)
            row: dict[str, Any] = {
                "id": order_id,
                "event_code": code,
                "device_id": "",
                "site": site,
                "camera": camera,
                "zone": zone,
                "status": t.to_status.value,
                "opened_at": utc_iso(now),
                "opened_ts": now,
                "updated_at": utc_iso(now),
                "first_event_id": "",
                "last_event_id": "",
                "event_count": 0,
                "detections": 0,
                "source": "report",
                "description": description,
                "lat": lat if lat is not None else place.lat,
                "lon": lon if lon is not None else place.lon,
                "address": address or place.address,
                **clock_fields(clock_start=now, limit_s=rules.limit_for(code), extension_s=0.0, rules=rules, now=now),
            }
            db.table("work_orders").insert(row)
            facts = {"from": None, "to": t.to_status.value, "due_at": row["due_at"], "description": description}
            record_history(
                db,
                order_id,
                at=now,
                actor=actor,
                action=t.action.value,
                from_status=None,
                to_status=t.to_status.value,
                reason="",
                detail=facts,
            )
            (audit or self.audit)(actor, f"order.{t.action.value}", order_subject(order_id), "", facts)
        return order_id

    def act(
        self,
        db: Database,
        order_id: str,
        action: Action | str,
        *,
        actor: str,
        reason: str = "",
        assignee: str | None = None,
        audit: AuditHook | None = None,
    ) -> dict[str, Any]:
        """One case-flow move by a person (or a system); return the order as it is after it.

        dispatch needs `assignee`; reject and reopen need `reason`.
        """
        now = self.clock()
        with immediate(db):
            order = self._order(db, order_id)
            rules = self.rules.for_site(order["site"])
            fields: dict[str, Any] = {}
            if Action(action) is Action.DISPATCH:
                if not assignee or not assignee.strip():
                    raise TransitionError("dispatch needs an assignee")
                fields["assignee"] = assignee.strip()
            detail = {"assignee": fields["assignee"]} if fields else {}
            change = apply_transition(
                db,
                order,
                action,
                actor=actor,
                reason=reason,
                now=now,
                rules=rules,
                audit=audit or self.audit,
                fields=fields,
                detail=detail,
            )
            self.notify_changes(db, (change,), rules, now)
            return self._order(db, order_id)

    def request_extension(
        self, db: Database, order_id: str, *, hours: float, actor: str, reason: str, audit: AuditHook | None = None
    ) -> int:
        """Ask for more working time on an open order; return the request's id."""
        if not hours > 0:
            raise TransitionError("an extension must be > 0 working hours")
        if not reason.strip():
            raise TransitionError("an extension needs a reason")
        now = self.clock()
        with immediate(db):
            order = self._order(db, order_id)
            if Status(order["status"]) not in CLOCK_RUNNING:
                raise TransitionError(f"an order in status {order['status']!r} has no running deadline to extend")
            cursor = db.execute(
                "INSERT INTO order_extensions (work_order_id, seconds, reason, status, requested_by, requested_at)"
                " VALUES (?, ?, ?, 'requested', ?, ?)",
                [order_id, hours * 3600.0, reason.strip(), actor, utc_iso(now)],
            )
            ext_id = int(cursor.lastrowid or 0)
            facts = {"extension_id": ext_id, "hours": hours}
            record_history(
                db,
                order_id,
                at=now,
                actor=actor,
                action="extension_request",
                from_status=order["status"],
                to_status=order["status"],
                reason=reason.strip(),
                detail=facts,
            )
            (audit or self.audit)(actor, "order.extension_request", order_subject(order_id), reason.strip(), facts)
            rules = self.rules.for_site(order["site"])
            self._queue(
                db, "extension_requested", order, rules, now, key=f"ext{ext_id}", reason=reason.strip(), actor=actor
            )
        return ext_id

    def extend(
        self, db: Database, order_id: str, *, hours: float, actor: str, reason: str, audit: AuditHook | None = None
    ) -> dict[str, Any]:
        """More working time, asked and approved by one person who may decide (a supervisor's
        'extend' at the console or the API): both rows, or neither. Return the order after it."""
        if not hours <= MAX_EXTENSION_HOURS:
            raise TransitionError(f"an extension may add at most {MAX_EXTENSION_HOURS:g} working hours")
        with immediate(db):
            request = self.request_extension(db, order_id, hours=hours, actor=actor, reason=reason, audit=audit)
            return self.decide_extension(db, request, approve=True, actor=actor, reason=reason, audit=audit)

    def decide_extension(
        self,
        db: Database,
        extension_id: int,
        *,
        approve: bool,
        actor: str,
        reason: str = "",
        audit: AuditHook | None = None,
    ) -> dict[str, Any]:
        """Approve (the deadline moves: the clock pauses for the extra working time) or deny a request."""
        now = self.clock()
        with immediate(db):
            rows = list(db.query("SELECT * FROM order_extensions WHERE id = ?", [extension_id]))
            if not rows:
                raise OrderNotFound(f"no extension request {extension_id}")
            ext = rows[0]
            if ext["status"] != "requested":
                raise TransitionError(f"extension {extension_id} is already {ext['status']}")
            order = self._order(db, ext["work_order_id"])
            decision = "approved" if approve else "denied"
            if approve and Status(order["status"]) not in CLOCK_RUNNING:
                raise TransitionError(f"an order in status {order['status']!r} has no running deadline to extend")
            db.execute(
                "UPDATE order_extensions SET status = ?, decided_by = ?, decided_at = ?, decision_reason = ?"
                " WHERE id = ?",
                [decision, actor, utc_iso(now), reason, extension_id],
            )
            rules = self.rules.for_site(order["site"])
            facts: dict[str, Any] = {"extension_id": extension_id, "hours": float(ext["seconds"]) / 3600.0}
            if approve:
                fields = extended_clock(order, float(ext["seconds"]), rules, now)
                facts.update(due_before=order["due_at"], due_at=fields["due_at"])
                assignments = ", ".join(f"{k} = ?" for k in fields)
                db.execute(
                    f"UPDATE work_orders SET {assignments}, updated_at = ? WHERE id = ?",
                    [*fields.values(), utc_iso(now), order["id"]],
                )
            action = f"extension_{'approve' if approve else 'deny'}"
            record_history(
                db,
                order["id"],
                at=now,
                actor=actor,
                action=action,
                from_status=order["status"],
                to_status=order["status"],
                reason=reason,
                detail=facts,
            )
            (audit or self.audit)(actor, f"order.{action}", order_subject(order["id"]), reason, facts)
            after = self._order(db, order["id"])
            self._queue(
                db,
                "extension_decided",
                after,
                rules,
                now,
                key=f"ext{extension_id}",
                reason=reason,
                actor=actor,
                decision=decision,
            )
            return after

    # -- notices ----------------------------------------------------------------------------------

    def notify_changes(self, db: Database, changes: Iterable[Change], rules: CaseRules, now: float) -> int:
        """Queue what people hear about these status changes; return how many notices were queued."""
        queued = 0
        for change in changes:
            kind = _NOTICE_OF.get(change.action)
            if kind is None:
                continue
            order = work_order(db, change.order_id)
            if order is None:
                continue
            # One occurrence per status change: an order closed, reopened and closed again is
            # closed twice (its reopen count tells the two apart).
            key = f"{kind}{int(order.get('reopen_count') or 0)}"
            if kind == "dispatched":
                key += f"-{order.get('assignee')}-{order.get('dispatched_at')}"
            queued += self._queue(db, kind, order, rules, now, key=key, reason=change.reason, actor=change.actor)
        return queued

    def _queue(
        self,
        db: Database,
        kind: str,
        order: dict[str, Any],
        rules: CaseRules,
        now: float,
        *,
        key: str,
        roles: Iterable[str] | None = None,
        **text: Any,
    ) -> int:
        console = self.config.notify.console_url
        if kind == "closed" and str(text.get("actor", "")).startswith("camera:"):
            title, body = order_closed_message(order, console)
        else:
            title, body = order_message(kind, order, console, **text)
        notice = Notice(
            kind=kind,
            key=f"{order['id']}|{key}",
            site=order["site"],
            subject=order["id"],
            order_id=order["id"],
            title=title,
            body=body,
            snapshot=order.get("snapshot_sha256"),
        )
        targets = self.recipients.targets(
            self.config.notify.route(kind) if roles is None else roles, rules.roles, order.get("assignee")
        )
        return self.enqueue(db, [(notice, t) for t in targets], now)

    def enqueue(self, db: Database, deliveries: list[tuple[Notice, Target]], now: float) -> int:
        return enqueue_notices(db, deliveries, now=now, policy=self.grouping) if deliveries else 0

    # -- helpers ----------------------------------------------------------------------------------

    def _order(self, db: Database, order_id: str) -> dict[str, Any]:
        order = work_order(db, order_id)
        if order is None:
            raise OrderNotFound(f"no work order {order_id!r}")
        return order
