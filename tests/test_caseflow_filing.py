"""The case flow on a real SQLite file: filing by the camera, people's actions, reopening, extensions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from caseflow_fixtures import HOUR, T0, AuditLog, Clock, file, make_config, manifest, notices
from sqlite_utils import Database

from central.caseflow import TransitionError
from central.caseflow.flow import CaseFlow, OrderNotFound
from central.caseflow.hooks import order_subject
from central.store import hotspots, list_work_orders, open_database, order_evidence, order_history, work_order

EV_A, EV_B, EV_C, EV_D = "0000000000aa", "0000000000bb", "0000000000cc", "0000000000dd"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def audit() -> AuditLog:
    return AuditLog()


@pytest.fixture
def flow(tmp_path: Path, clock: Clock, audit: AuditLog) -> CaseFlow:
    return CaseFlow(make_config(tmp_path), audit=audit, clock=clock)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(tmp_path / "gw.db")


def test_a_camera_order_is_registered_with_its_place_deadline_photo_history_and_audit(
    flow: CaseFlow, db: Database, audit: AuditLog
) -> None:
    m = manifest(EV_A)
    filing = file(flow, db, m)
    assert filing.opened and filing.work_order_id
    order = work_order(db, filing.work_order_id)
    assert order is not None
    assert (order["status"], order["event_code"], order["source"]) == ("registered", "0102", "camera")
    assert (order["lat"], order["lon"], order["address"]) == (31.2304, 121.4737, "Nanjing Road 1")
    assert order["due_ts"] == T0 + 4 * HOUR and order["next_escalation_at"] == T0 + 4 * HOUR - 900
    assert order["snapshot_sha256"] == next(f.sha256 for f in m.files if f.role == "snapshot_boxes")
    [entry] = order_history(db, order["id"])
    assert (entry["actor"], entry["action"], entry["to_status"]) == ("camera:box-1/cam-1", "register", "registered")
    assert audit.entries[0][:3] == ("camera:box-1/cam-1", "order.register", order_subject(order["id"]))
    # Routed to the site's responsible person only; her channel may carry the photo.
    assert notices(db) == [("zhang", order["id"], "opened")]
    [message] = list(db.query("SELECT * FROM notifications"))
    assert json.loads(message["attachments"]) == [order["snapshot_sha256"]]
    assert "http://console.test/orders/" + order["id"] + " (login required)" in message["body"]
    assert "Nanjing Road 1" in message["body"]


def test_the_camera_seeing_the_spot_clean_verifies_and_closes_with_the_after_snapshot(
    flow: CaseFlow, db: Database, clock: Clock, audit: AuditLog
) -> None:
    order_id = file(flow, db, manifest(EV_A)).work_order_id
    assert order_id is not None
    clock.now += 600
    cleared = manifest(EV_A, "cleared", at=clock.now, n=0)
    filing = file(flow, db, cleared)
    assert filing.closed and filing.work_order_id == order_id
    order = work_order(db, order_id)
    assert order is not None and order["status"] == "closed" and order["next_escalation_at"] is None
    assert order["after_snapshot_sha256"] == cleared.files[0].sha256
    assert [h["action"] for h in order_history(db, order_id)] == ["register", "verify", "close"]
    assert audit.actions(order_id) == ["order.register", "order.verify", "order.close"]
    roles = {e["role"] for e in order_evidence(db, order_id)}
    assert roles == {"snapshot", "snapshot_boxes", "after_snapshot"}
    assert notices(db, "closed") == [("zhang", order_id, "closed")]


def test_an_order_resolved_by_hand_waits_for_the_camera(flow: CaseFlow, db: Database, clock: Clock) -> None:
    order_id = file(flow, db, manifest(EV_A)).work_order_id
    assert order_id is not None
    flow.act(db, order_id, "dispatch", actor="user:li", assignee="zhao")
    flow.act(db, order_id, "start", actor="user:zhao")
    resolved = flow.act(db, order_id, "resolve", actor="user:zhao", reason="swept")
    assert resolved["status"] == "resolved" and resolved["next_escalation_at"] is None
    assert ("zhao", order_id, "dispatched") in notices(db)
    # Within the grace period the camera still catching up does not count against it.
    clock.now += 30
    file(flow, db, manifest(EV_A, "update", at=clock.now))
    assert work_order(db, order_id)["status"] == "resolved"  # type: ignore[index]
    clock.now += 30
    assert file(flow, db, manifest(EV_A, "cleared", at=clock.now, n=0)).closed
    assert work_order(db, order_id)["status"] == "closed"  # type: ignore[index]


def test_garbage_the_camera_still_sees_after_a_manual_resolution_reopens_the_order(
    flow: CaseFlow, db: Database, clock: Clock
) -> None:
    order_id = file(flow, db, manifest(EV_A)).work_order_id
    assert order_id is not None
    flow.act(db, order_id, "resolve", actor="user:zhao", reason="done")
    clock.now += 600
    filing = file(flow, db, manifest(EV_A, "update", at=clock.now))
    assert filing.reopened and filing.work_order_id == order_id
    order = work_order(db, order_id)
    assert order is not None and order["status"] == "reopened" and order["reopen_count"] == 1
    # The clock starts again from the reopening.
    assert order["due_ts"] == clock.now + 4 * HOUR
    assert order_history(db, order_id)[-1]["reason"] == "the camera still sees garbage after it was resolved"


def test_garbage_back_within_the_window_reopens_later_it_opens_a_linked_order(
    flow: CaseFlow, db: Database, clock: Clock
) -> None:
    first = file(flow, db, manifest(EV_A)).work_order_id
    clock.now += 600
    file(flow, db, manifest(EV_A, "cleared", at=clock.now, n=0))
    clock.now += 1200  # 20 min later: within the hour
    back = file(flow, db, manifest(EV_B, at=clock.now))
    assert back.reopened and back.work_order_id == first and not back.opened
    assert [o["status"] for o in list_work_orders(db)] == ["reopened"]
    assert ("li", first, "reopened") in notices(db)  # the supervisor hears of a reopening
    clock.now += 600
    file(flow, db, manifest(EV_B, "cleared", at=clock.now, n=0))
    assert work_order(db, first)["status"] == "closed"  # type: ignore[index]

    clock.now += 2 * HOUR  # past the window: a new order, linked, counted as a recurrence
    again = file(flow, db, manifest(EV_C, at=clock.now))
    assert again.opened and again.work_order_id != first
    new = work_order(db, again.work_order_id)
    assert new is not None and (new["linked_order_id"], new["recurrence"]) == (first, 2)
    [spot] = hotspots(db)
    assert (spot["orders"], spot["recurrences"], spot["last_order_id"]) == (2, 2, again.work_order_id)
    assert "recurrence 2" in next(
        r["body"] for r in db.query("SELECT body FROM notification_items WHERE subject = ?", [new["id"]])
    )


def test_a_rejected_false_positive_keeps_its_reason_and_is_no_recurrence(
    flow: CaseFlow, db: Database, clock: Clock
) -> None:
    first = file(flow, db, manifest(EV_A)).work_order_id
    assert first is not None
    with pytest.raises(TransitionError, match="reject needs a reason"):
        flow.act(db, first, "reject", actor="user:li")
    rejected = flow.act(db, first, "reject", actor="user:li", reason="a shadow, not a bag")
    assert (rejected["status"], rejected["reject_reason"]) == ("rejected", "a shadow, not a bag")
    assert rejected["next_escalation_at"] is None
    clock.now += 60
    other = file(flow, db, manifest(EV_B, at=clock.now))
    new = work_order(db, other.work_order_id)
    assert new is not None and other.opened and (new["linked_order_id"], new["recurrence"]) == (first, 0)


def test_refused_actions_change_nothing_and_a_failing_audit_hook_undoes_the_change(
    flow: CaseFlow, db: Database, audit: AuditLog
) -> None:
    order_id = file(flow, db, manifest(EV_A)).work_order_id
    assert order_id is not None
    with pytest.raises(OrderNotFound):
        flow.act(db, "WO-19990101-000001", "dispatch", actor="user:li", assignee="zhao")
    with pytest.raises(TransitionError, match="assignee"):
        flow.act(db, order_id, "dispatch", actor="user:li")
    with pytest.raises(TransitionError, match="cannot close"):
        flow.act(db, order_id, "close", actor="user:li")

    def broken(*args: object) -> None:
        raise RuntimeError("audit store is down")

    with pytest.raises(RuntimeError):
        flow.act(db, order_id, "dispatch", actor="user:li", assignee="zhao", audit=broken)
    order = work_order(db, order_id)
    assert order is not None and order["status"] == "registered" and order["assignee"] is None
    assert [h["action"] for h in order_history(db, order_id)] == ["register"]
    assert notices(db, "dispatched") == []


def test_an_approved_extension_moves_the_deadline_a_denied_one_does_not(
    flow: CaseFlow, db: Database, clock: Clock, audit: AuditLog
) -> None:
    order_id = file(flow, db, manifest(EV_A)).work_order_id
    assert order_id is not None
    clock.now += HOUR
    ext = flow.request_extension(db, order_id, hours=2, actor="user:zhao", reason="needs a truck")
    assert ("li", order_id, "extension_requested") in notices(db)
    after = flow.decide_extension(db, ext, approve=True, actor="user:li", reason="ok")
    assert after["due_ts"] == T0 + 6 * HOUR and after["extension_s"] == 2 * HOUR
    assert after["next_escalation_at"] == T0 + 6 * HOUR - 900
    with pytest.raises(TransitionError, match="already approved"):
        flow.decide_extension(db, ext, approve=False, actor="user:li")
    denied = flow.request_extension(db, order_id, hours=8, actor="user:zhao", reason="more")
    assert flow.decide_extension(db, denied, approve=False, actor="user:li", reason="no")["due_ts"] == T0 + 6 * HOUR
    actions = [h["action"] for h in order_history(db, order_id)]
    assert actions == ["register", "extension_request", "extension_approve", "extension_request", "extension_deny"]
    assert "order.extension_approve" in audit.actions(order_id)
    with pytest.raises(TransitionError, match="reason"):
        flow.request_extension(db, order_id, hours=1, actor="user:zhao", reason="")


def test_a_reported_order_is_registered_by_a_person(flow: CaseFlow, db: Database) -> None:
    order_id = flow.report(db, site="site-a", actor="user:citizen-7", description="bags by the bus stop")
    order = work_order(db, order_id)
    assert order is not None and (order["status"], order["source"]) == ("reported", "report")
    assert order["address"] == "Nanjing Road" and order["due_ts"] == T0 + 4 * HOUR
    assert flow.act(db, order_id, "register", actor="user:li")["status"] == "registered"
    assert list_work_orders(db, "open")[0]["id"] == order_id


def test_roles_nobody_holds_at_a_site_are_named(tmp_path: Path, flow: CaseFlow) -> None:
    assert flow.gaps() == []
    base = make_config(tmp_path)
    lonely = base.sites[0].model_copy(update={"roles": {"responsible": ["zhang"]}})
    gaps = CaseFlow(make_config(tmp_path, sites=[lonely])).gaps()
    assert gaps == [
        "site site-a: nobody holds the role 'district_lead'",
        "site site-a: nobody holds the role 'supervisor'",
    ]
