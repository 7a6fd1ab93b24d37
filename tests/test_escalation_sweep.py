"""The sweep on a real SQLite file: reminder, ladder, repeats, grouping, offline cameras; driven by a fake clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from caseflow_fixtures import HOUR, T0, AuditLog, Clock, file, make_config, manifest, notices
from sqlite_utils import Database

import wire
from central.audit import AuditTrail, iter_rows
from central.audit import ensure_schema as ensure_audit_schema
from central.caseflow.flow import CaseFlow
from central.caseflow.hooks import order_subject
from central.caseflow.sweep import _DUE_ORDERS, sweep, sweep_orders
from central.config import DeviceConfig, NotifyConfig
from central.notify import compose
from central.notify.grouping import _HEARD_LATELY, _IN_RECENT_INDEX, REPEAT_LIMITED
from central.store import (
    claim_notification,
    open_database,
    order_history,
    record_attempt,
    record_stats,
    record_status,
    sync_devices,
    work_order,
)

DUE = T0 + 4 * HOUR


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(tmp_path / "gw.db")


def test_reminder_then_each_level_of_the_ladder_then_repeats_of_the_top(
    tmp_path: Path, db: Database, clock: Clock
) -> None:
    audit = AuditLog()
    flow = CaseFlow(make_config(tmp_path), audit=audit, clock=clock)
    order_id = file(flow, db, manifest("0000000000aa")).work_order_id
    assert order_id is not None
    flow.act(db, order_id, "dispatch", actor="user:li", assignee="zhao")
    steps = []
    for now in (T0 + 60, DUE - 900, DUE, DUE + 600, DUE + 1800, DUE + 1800 + HOUR, DUE + 1800 + HOUR + 60):
        result = sweep(db, flow, now)
        steps.append(result.steps)
    assert steps == [0, 1, 1, 1, 1, 1, 0]
    told = [(who, kind) for who, subject, kind in notices(db) if kind not in ("opened", "dispatched")]
    assert told == [
        ("zhang", "reminder"),
        ("zhao", "reminder"),  # the assignee hears the reminder too
        ("zhang", "overdue"),
        ("li", "overdue"),
        ("wang", "overdue"),
        ("wang", "still_overdue"),
    ]
    order = work_order(db, order_id)
    assert order is not None
    assert (order["escalation_level"], order["reminded"], order["escalation_repeats"]) == (3, 1, 1)
    assert order["next_escalation_at"] == DUE + 1800 + 2 * HOUR
    escalations = [h for h in order_history(db, order_id) if h["action"] == "escalate"]
    assert [json.loads(h["detail"])["level"] for h in escalations] == [0, 1, 2, 3, 3]
    assert audit.actions(order_subject(order_id)).count("order.escalate") == 5


def test_the_sweep_reads_only_due_orders_through_its_index(tmp_path: Path, db: Database, clock: Clock) -> None:
    flow = CaseFlow(make_config(tmp_path), clock=clock)
    for i in range(30):
        file(flow, db, manifest(f"0000000001{i:02d}", zone=f"z{i}"))
    plan = " ".join(str(r[3]) for r in db.execute("EXPLAIN QUERY PLAN " + _DUE_ORDERS, [T0, 100]))
    assert "work_orders_escalation" in plan, plan
    assert sweep(db, flow, T0 + 60).orders == 0
    assert sweep(db, flow, DUE - 900).orders == 30


def test_a_resolved_order_stops_its_clock_and_a_reopened_one_starts_it_again(
    tmp_path: Path, db: Database, clock: Clock
) -> None:
    flow = CaseFlow(make_config(tmp_path), clock=clock)
    order_id = file(flow, db, manifest("0000000000aa")).work_order_id
    assert order_id is not None
    flow.act(db, order_id, "resolve", actor="user:zhao")
    assert sweep(db, flow, DUE + 2 * HOUR).steps == 0
    clock.now = DUE + 2 * HOUR
    flow.act(db, order_id, "reopen", actor="user:li", reason="still dirty")
    assert sweep(db, flow, clock.now + 4 * HOUR).steps == 1
    assert notices(db, "overdue") == [("zhang", order_id, "overdue")]


def grouping_flow(tmp_path: Path, clock: Clock) -> CaseFlow:
    """A case flow grouping notices per person and site for 300 s, listing 2 of them in full."""
    base = make_config(tmp_path)
    notify = NotifyConfig(**{**base.notify.model_dump(), "group_s": 300, "max_items": 2, "repeat_s": HOUR})
    return CaseFlow(make_config(tmp_path, notify=notify), clock=clock)


def zhangs_messages(db: Database) -> list[dict[str, Any]]:
    """The outbox messages for zhang, the site's responsible person."""
    return list(db.query("SELECT * FROM notifications WHERE recipient = 'zhang' ORDER BY id"))


def test_one_message_per_recipient_and_site_while_pending_then_spaced_by_group_s(
    tmp_path: Path, db: Database, clock: Clock
) -> None:
    flow = grouping_flow(tmp_path, clock)
    for i in range(3):
        file(flow, db, manifest(f"00000000000{i}", zone=f"z{i}"))
    [first] = zhangs_messages(db)
    assert (first["items"], first["scheduled_at"]) == (3, T0)
    assert first["title"] == "[garbagewatch] site site-a: 3 notices (3 opened)"
    assert (
        first["body"].count("Work order WO-") == 2
        and "... and 1 more: http://console.test/orders?site=site-a" in first["body"]
    )

    claimed = claim_notification(db, first["id"])
    assert claimed is not None
    record_attempt(db, claimed, ok=True, error=None, now=T0, retry_in=None)
    clock.now = T0 + 10
    file(flow, db, manifest("00000000000a", zone="z7"))
    clock.now = T0 + 20
    file(flow, db, manifest("00000000000b", zone="z8"))
    second = list(db.query("SELECT * FROM notifications WHERE recipient = 'zhang' AND id != ?", [first["id"]]))
    assert [(m["items"], m["scheduled_at"]) for m in second] == [(2, T0 + 300)]


def test_a_pending_message_keeps_its_notices_per_kind_and_an_older_one_is_counted(
    tmp_path: Path, db: Database, clock: Clock
) -> None:
    flow = grouping_flow(tmp_path, clock)
    file(flow, db, manifest("000000000000", zone="z0"))
    file(flow, db, manifest("000000000001", zone="z1"))
    [message] = zhangs_messages(db)
    assert json.loads(message["kinds"]) == {"opened": 2}
    # A message queued before the column existed (NULL), with a title that says nothing useful:
    # the notices joining it are counted from its items, not read from the title.
    db.execute("UPDATE notifications SET kinds = NULL, title = 'edited' WHERE id = ?", [message["id"]])
    file(flow, db, manifest("000000000002", zone="z2"))
    [message] = zhangs_messages(db)
    assert message["title"] == "[garbagewatch] site site-a: 3 notices (3 opened)"
    assert json.loads(message["kinds"]) == {"opened": 3} and message["items"] == 3


def test_a_spot_flipping_between_garbage_and_clean_reopens_once_per_repeat_interval(
    tmp_path: Path, db: Database, clock: Clock
) -> None:
    base = make_config(tmp_path)
    notify = NotifyConfig(**{**base.notify.model_dump(), "repeat_s": HOUR})
    flow = CaseFlow(make_config(tmp_path, notify=notify), clock=clock)
    order_id = file(flow, db, manifest("0000000000a0")).work_order_id
    for i in range(1, 4):
        clock.now += 300
        file(flow, db, manifest(f"0000000000a{i - 1}", "cleared", at=clock.now, n=0))
        clock.now += 300
        assert file(flow, db, manifest(f"0000000000a{i}", at=clock.now)).reopened
    assert work_order(db, order_id)["reopen_count"] == 3  # type: ignore[index]
    assert [who for who, _, _ in notices(db, "reopened")] == ["zhang", "li"]  # once each, not three times
    assert len(notices(db, "closed")) == 1


def test_the_repeat_check_reads_an_index_that_holds_only_the_repeat_limited_kinds(
    tmp_path: Path, db: Database, clock: Clock
) -> None:
    flow = CaseFlow(make_config(tmp_path), clock=clock)
    file(flow, db, manifest("0000000000b0"))
    sweep(db, flow, DUE + HOUR)  # overdue: escalation notices, not limited by repeat_s
    plan = " ".join(r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {_HEARD_LATELY}", ["c", "r", "s", "opened", 0.0]))
    assert "INDEX notification_items_recent" in plan  # the query carries the index's WHERE term
    (ddl,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'notification_items_recent'").fetchone()
    assert ddl.endswith(f"WHERE {_IN_RECENT_INDEX}")  # the migration and the query agree
    assert all(f"'{kind}'" in ddl for kind in REPEAT_LIMITED)
    kinds = "SELECT DISTINCT kind FROM notification_items"
    assert {k for (k,) in db.execute(kinds)} == {"opened", "overdue"}
    assert {k for (k,) in db.execute(f"{kinds} INDEXED BY notification_items_recent WHERE {_IN_RECENT_INDEX}")} == {
        "opened"
    }


def test_a_camera_offline_too_long_is_reported_to_its_site_once_per_outage(
    tmp_path: Path, db: Database, clock: Clock
) -> None:
    flow = CaseFlow(make_config(tmp_path), clock=clock)
    sync_devices(db, [DeviceConfig.for_key("box-1", wire.DeviceKey.generate().public, site="site-a")])
    record_status(db, "box-1", wire.Availability(state="online", cameras=["cam-1", "cam-2", "../x"]), T0)
    stats = wire.Stats(
        at="2026-11-18T11:06:40.000Z", cameras={"cam-1": {"connected": 1.0}, "cam-2": {"connected": 0.0}}
    )
    record_stats(db, "box-1", stats, T0)
    record_stats(db, "box-1", stats, T0 + 300)  # still offline: the outage began at T0
    assert sweep(db, flow, T0 + 599).cameras == 0
    assert sweep(db, flow, T0 + 600).cameras == 1
    assert notices(db) == [("zhang", "camera:box-1/cam-2", "camera_offline")]
    assert sweep(db, flow, T0 + 900).cameras == 0

    # Back, then the whole box drops off (its last will): both cameras count from then.
    record_status(db, "box-1", wire.Availability(state="online", cameras=["cam-1", "cam-2"]), T0 + 1000)
    record_status(db, "box-1", wire.Availability(state="offline"), T0 + 2000)
    assert sweep(db, flow, T0 + 2600).cameras == 2
    assert sorted(s for _, s, _ in notices(db)[-2:]) == ["camera:box-1/cam-1", "camera:box-1/cam-2"]
    names = {r[0] for r in db.execute("SELECT camera FROM cameras")}
    assert names == {"cam-1", "cam-2"}  # the bad name was logged and left out


def _outbox(db: Database) -> list[tuple[Any, ...]]:
    sql = "SELECT recipient, title, body, items FROM notifications WHERE recipient != '' ORDER BY recipient"
    return [tuple(r) for r in db.execute(sql)]


@pytest.mark.parametrize("hold_s", [0.0, 60.0], ids=["a transaction per read", "one transaction"])
def test_a_burst_records_every_order_once_however_the_sweep_cuts_its_transactions(
    tmp_path: Path, clock: Clock, hold_s: float
) -> None:
    base = make_config(tmp_path)
    notify = NotifyConfig(**{**base.notify.model_dump(), "group_s": 300, "max_items": 3})
    flow = CaseFlow(make_config(tmp_path, notify=notify), clock=clock)
    db = open_database(tmp_path / f"gw-{hold_s}.db")
    ensure_audit_schema(db)
    orders = [file(flow, db, manifest(f"0000000002{i:02d}", zone=f"z{i}")).work_order_id for i in range(25)]
    db.execute("DELETE FROM notification_items")  # forget 'opened': what follows is the sweep's alone
    db.execute("DELETE FROM notifications")

    result = sweep(db, flow, DUE + 1800, batch=4, hold_s=hold_s, audit=AuditTrail(db, clock=clock))
    assert (result.orders, result.steps) == (25, 25 * 3)  # all three levels at once; the reminder is stale
    assert result.transactions == (7 if hold_s == 0 else 1)  # 25 orders read 4 at a time
    assert sorted(notices(db)) == sorted((who, str(o), "overdue") for o in orders for who in ("zhang", "li", "wang"))
    # One message per recipient and site, listing the first 3 orders and counting the rest.
    for who, title, body, items in _outbox(db):
        assert title == "[garbagewatch] site site-a: 25 notices (25 overdue)", who
        assert items == 25 and body.count("Work order WO-") == 3 and "... and 22 more" in body
    for order_id in orders:
        assert order_id is not None
        [escalation] = [h for h in order_history(db, order_id) if h["action"] == "escalate"]
        assert json.loads(escalation["detail"])["level"] == 3
        assert [
            r[0] for r in db.execute("SELECT action FROM audit_log WHERE subject = ?", [order_subject(order_id)])
        ] == ["order.escalate"]
    assert [r.seq for r in iter_rows(db)] == list(range(1, 26))  # one unbroken chain

    # Swept again at once: nothing is due, nothing is queued or recorded twice.
    before = (_outbox(db), db.execute("SELECT count(*) FROM order_history").fetchone())
    assert sweep(db, flow, DUE + 1800, batch=4, hold_s=hold_s).orders == 0
    assert (_outbox(db), db.execute("SELECT count(*) FROM order_history").fetchone()) == before


def test_a_burst_is_the_same_in_one_transaction_or_many(tmp_path: Path) -> None:
    """What the orders, their history and the outbox hold does not depend on how the sweep commits,
    and each message's title counts what it holds, kind by kind, however many times notices joined it."""
    base = make_config(tmp_path)
    notify = NotifyConfig(**{**base.notify.model_dump(), "group_s": 300, "max_items": 4})
    config = make_config(tmp_path, notify=notify)

    def outcome(hold_s: float) -> list[Any]:
        flow = CaseFlow(config, clock=Clock())
        db = open_database(tmp_path / f"same-{hold_s}.db")
        for i in range(12):
            file(flow, db, manifest(f"0000000003{i:02d}", zone=f"z{i}"))
        for now in (DUE - 900, DUE + 700, DUE + 1800 + 2 * HOUR, DUE + 1800 + 3 * HOUR):
            sweep(db, flow, now, batch=5, hold_s=hold_s)
        for message_id, title, items in db.execute("SELECT id, title, items FROM notifications").fetchall():
            sql = "SELECT kind, count(*) FROM notification_items WHERE notification_id = ? GROUP BY kind"
            counted = {str(k): int(n) for k, n in db.execute(sql, [message_id])}
            assert sum(counted.values()) == items
            assert title == compose("site-a", [], items, counted, flow.grouping)[0]
        return [
            db.execute(sql).fetchall()
            for sql in (
                "SELECT id, escalation_level, reminded, escalation_repeats, next_escalation_at FROM work_orders",
                "SELECT work_order_id, at, action, reason, detail FROM order_history ORDER BY id",
                # Ids and the order of messages differ: the one transaction writes message by message.
                "SELECT n.recipient, i.dedupe_key, i.title, i.body FROM notification_items i"
                " JOIN notifications n ON n.id = i.notification_id ORDER BY n.recipient, i.id",
                "SELECT recipient, title, body, items FROM notifications ORDER BY recipient, id",
            )
        ]

    once = outcome(60.0)
    assert once == outcome(0.0)
    titles = {recipient: title for recipient, title, _, _ in once[3]}
    assert titles["zhang"] == "[garbagewatch] site site-a: 36 notices (12 opened, 12 overdue, 12 reminder)"
    assert titles["wang"] == "[garbagewatch] site site-a: 24 notices (12 overdue, 12 still overdue)"


def test_a_sweep_of_several_transactions_is_durable_when_it_returns(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its commits do not wait for the disk; the WAL is fsynced while it plans, and once more after the last commit."""
    from central.store import durability

    flow = CaseFlow(make_config(tmp_path), clock=clock)
    db = open_database(tmp_path / "gw.db")
    for i in range(9):
        file(flow, db, manifest(f"0000000003{i:02d}", zone=f"z{i}"))
    events: list[str] = []  # the connection's statements and the fsyncs, in the order they happened
    real_fsync = durability.fsync_wal

    def fsync_wal(wal: str | None) -> None:
        real_fsync(wal)
        events.append(f"fsync {wal}")

    monkeypatch.setattr(durability, "fsync_wal", fsync_wal)
    db.conn.set_trace_callback(events.append)
    result = sweep_orders(db, flow, DUE + 1800, batch=4, hold_s=0.0)
    db.conn.set_trace_callback(None)

    assert result.transactions == 3
    commits = [i for i, e in enumerate(events) if e == "COMMIT"]
    assert len(commits) >= 3
    assert events.index("PRAGMA synchronous=NORMAL") < commits[0]
    fsyncs = [i for i, e in enumerate(events) if e == f"fsync {tmp_path / 'gw.db'}-wal"]
    assert fsyncs and fsyncs[-1] > commits[-1]  # after the last commit, before the sweep returned
    assert int(db.execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL again for what the connection does next
