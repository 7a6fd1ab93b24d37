"""The notifier: real Apprise to a local HTTP hook, a real SQLite outbox, a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from central_edge import HookServer, wait_for
from sqlite_utils import Database

from central.config import NotifyConfig
from central.counters import Counters
from central.notify import AppriseSender, NotificationWorker, order_opened_message, retry_delay
from central.store import channel_id, claim_notification, enqueue_notification, open_database, release_claims


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(tmp_path / "gw.db")


ORDER = {
    "id": "WO-20270115-000001",
    "event_code": "0102",
    "site": "site-a",
    "camera": "cam-1",
    "zone": "z1",
    "opened_at": "2027-01-15T08:00:00.000Z",
    "due_at": "2027-01-15T12:00:00.000Z",
}


def worker(tmp_path: Path, urls: list[str], clock: Clock, **settings: float) -> NotificationWorker:
    cfg = NotifyConfig(urls=urls, **settings)  # type: ignore[arg-type]
    return NotificationWorker(tmp_path / "gw.db", cfg, AppriseSender(urls), Counters(), clock)


def enqueue(db: Database, urls: list[str], now: float) -> None:
    title, body = order_opened_message(ORDER, "http://console.test/")
    enqueue_notification(
        db,
        work_order_id=ORDER["id"],
        kind="opened",
        channels=[channel_id(u) for u in urls],
        title=title,
        body=body,
        now=now,
    )


def test_retry_delay_doubles_up_to_the_cap() -> None:
    assert [retry_delay(n, 5.0, 60.0) for n in range(1, 6)] == [5.0, 10.0, 20.0, 40.0, 60.0]


def test_a_failing_hook_is_retried_with_backoff_and_every_attempt_is_recorded(
    tmp_path: Path, db: Database, hook: HookServer
) -> None:
    clock = Clock()
    w = worker(tmp_path, [hook.url], clock, first_retry_s=10.0, max_retry_s=100.0)
    enqueue(db, [hook.url], clock.now)
    enqueue(db, [hook.url], clock.now)  # enqueuing twice adds nothing
    hook.fail_next = 2

    assert w.deliver_due(db) == 1
    [row] = list(db.query("SELECT * FROM notifications"))
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("pending", 1, clock.now + 10.0)
    assert "500" in row["last_error"]
    assert w.deliver_due(db) == 0  # not due yet

    clock.now += 10.0
    assert w.deliver_due(db) == 1
    [row] = list(db.query("SELECT * FROM notifications"))
    assert (row["status"], row["next_attempt_at"]) == ("pending", clock.now + 20.0)

    clock.now += 20.0
    w.deliver_due(db)
    [row] = list(db.query("SELECT * FROM notifications"))
    assert row["status"] == "sent" and row["attempts"] == 3 and row["sent_at"]
    assert [a["ok"] for a in db.query("SELECT ok FROM notification_attempts ORDER BY attempt")] == [0, 0, 1]
    [sent] = hook.bodies
    assert sent["title"].endswith("WO-20270115-000001")
    assert "http://console.test/orders/WO-20270115-000001" in sent["message"]
    assert "2027-01-15T12:00:00.000Z" in sent["message"] and "zone z1" in sent["message"]
    assert w.counters.snapshot() == {"notification_retries": 2, "notifications_sent": 1}


def test_after_max_attempts_a_notification_fails_for_good(
    tmp_path: Path, db: Database, hook: HookServer
) -> None:
    clock = Clock()
    w = worker(tmp_path, [hook.url], clock, first_retry_s=1.0, max_attempts=2)
    enqueue(db, [hook.url], clock.now)
    hook.fail_next = 5
    w.deliver_due(db)
    clock.now += 1.0
    w.deliver_due(db)
    [row] = list(db.query("SELECT * FROM notifications"))
    assert (row["status"], row["attempts"]) == ("failed", 2)
    clock.now += 1000.0
    assert w.deliver_due(db) == 0


def test_a_channel_no_longer_configured_fails_without_retry(
    tmp_path: Path, db: Database, hook: HookServer
) -> None:
    clock = Clock()
    enqueue(db, ["json://127.0.0.1:9/old"], clock.now)
    w = worker(tmp_path, [hook.url], clock)
    w.deliver_due(db)
    [row] = list(db.query("SELECT * FROM notifications"))
    assert row["status"] == "failed" and "no longer configured" in row["last_error"]
    assert hook.bodies == []


def test_a_notifier_starting_up_leaves_another_live_instances_claim_alone_until_it_is_stale(
    tmp_path: Path, db: Database, hook: HookServer
) -> None:
    """Several instances share the outbox. Instance a claimed a message and is sending it; b
    starts up: b must not send it too. Only when a's claim is older than the lease (a must be
    gone) does b send it; a restarting releases its own claim at once."""
    clock = Clock()
    enqueue(db, [hook.url], clock.now)
    [row] = list(db.query("SELECT id FROM notifications"))
    claimed = claim_notification(db, row["id"], owner="central-a", now=clock.now)
    assert claimed is not None and claimed["claimed_by"] == "central-a"

    cfg = NotifyConfig(urls=[hook.url], claim_lease_s=600.0)
    b = NotificationWorker(tmp_path / "gw.db", cfg, AppriseSender([hook.url]), Counters(), clock, owner="central-b")
    clock.now += 60.0
    assert b.release_stale_claims(db) == 0 and b.deliver_due(db) == 0
    assert hook.bodies == []  # a's message is not sent twice

    a = NotificationWorker(tmp_path / "gw.db", cfg, AppriseSender([hook.url]), Counters(), clock, owner="central-a")
    assert a.release_stale_claims(db) == 1  # a's own claim, left by a's previous run
    claim_notification(db, row["id"], owner="central-a", now=clock.now)  # a claims it again, then dies
    clock.now += 599.0
    assert b.release_stale_claims(db) == 0  # not stale yet
    clock.now += 2.0
    assert b.release_stale_claims(db) == 1 and b.deliver_due(db) == 1
    assert len(hook.bodies) == 1
    [row] = list(db.query("SELECT status, claimed_by FROM notifications"))
    assert row["status"] == "sent" and row["claimed_by"] == "central-b"


def test_claims_from_before_owners_were_recorded_are_released_at_start(db: Database) -> None:
    enqueue(db, ["json://127.0.0.1:9/hook"], 0.0)
    db.execute("UPDATE notifications SET status = 'sending', claimed_by = NULL, claimed_at = NULL")
    db.conn.commit()
    assert release_claims(db, owner="central-a", now=1.0) == 1


def test_a_pass_that_fails_as_a_whole_is_counted_and_tried_again(tmp_path: Path) -> None:
    # The database cannot be opened (its folder is a file): every pass fails, the notifier lives on.
    (tmp_path / "not-a-folder").write_text("")
    counters = Counters()
    w = NotificationWorker(
        tmp_path / "not-a-folder" / "gw.db", NotifyConfig(poll_s=0.05), AppriseSender([]), counters
    )
    w.start()
    try:
        wait_for(lambda: counters.snapshot().get("notifier_errors", 0) >= 2, what="two failed passes")
    finally:
        w.stop()
    assert counters.snapshot().get("notifications_sent", 0) == 0
