"""Schema migrations: applied once, in order, at open; a first-release file is adopted and upgraded."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlite_utils import Database

from central.store import list_work_orders, migrate, open_database, schema_version
from central.store.migrations import MIGRATIONS, _v1_first_release


def versions(db: Database) -> list[int]:
    return [r[0] for r in db.execute("SELECT version FROM schema_version ORDER BY version")]


def test_a_new_file_gets_every_migration_once(tmp_path: Path) -> None:
    db = open_database(tmp_path / "gw.db")
    latest = MIGRATIONS[-1][0]
    assert versions(db) == list(range(1, latest + 1)) and schema_version(db) == latest
    db.close()
    again = open_database(tmp_path / "gw.db")
    assert versions(again) == list(range(1, latest + 1))
    assert migrate(again) == latest


def test_a_first_release_file_is_upgraded_with_its_orders_and_outbox(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Database(sqlite3.connect(path))
    _v1_first_release(old)  # exactly what the first release created: no schema_version table
    old.execute(
        "INSERT INTO work_orders (id, event_code, device_id, site, camera, zone, status, opened_at, due_at,"
        " updated_at, first_event_id, last_event_id, event_count, detections) VALUES"
        " ('WO-20261118-000001', '0102', 'box-1', 'site-a', 'cam-1', 'z1', 'open', '2026-11-18T11:06:40.000Z',"
        " '2026-11-18T15:06:40.000Z', '2026-11-18T11:06:40.000Z', 'e1', 'e1', 1, 1),"
        " ('WO-20261118-000002', '0102', 'box-1', 'site-a', 'cam-1', 'z2', 'closed', '2026-11-18T11:06:40.000Z',"
        " '2026-11-18T15:06:40.000Z', '2026-11-18T12:00:00.000Z', 'e2', 'e2', 2, 0)"
    )
    old.execute(
        "INSERT INTO notifications (work_order_id, kind, channel, title, body, status, attempts, next_attempt_at,"
        " created_at) VALUES ('WO-20261118-000001', 'opened', 'abc', 't', 'b', 'sent', 1, 1.0, 'x')"
    )
    old.close()

    db = open_database(path)
    assert schema_version(db) == MIGRATIONS[-1][0]
    [running] = list_work_orders(db, "registered")
    assert running["id"] == "WO-20261118-000001"
    assert running["due_ts"] == running["opened_ts"] + 4 * 3600
    assert running["next_escalation_at"] == running["opened_ts"]  # the sweep looks at it once
    [closed] = list_work_orders(db, "closed")
    assert closed["next_escalation_at"] is None
    [spot1, spot2] = list(db.query("SELECT zone, orders FROM spots ORDER BY zone"))
    assert (spot1["zone"], spot2["orders"]) == ("z1", 1)
    [message] = list(db.query("SELECT * FROM notifications"))
    assert (message["status"], message["recipient"], message["items"]) == ("sent", "", 1)
    [item] = list(db.query("SELECT * FROM notification_items"))
    assert item["dedupe_key"] == "|abc|WO-20261118-000001|opened"


def test_threads_opening_a_new_file_at_once_apply_each_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def opener() -> None:
        try:
            start.wait()
            open_database(path).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert versions(open_database(path)) == [v for v, _, _ in MIGRATIONS]


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    db = open_database(tmp_path / "gw.db")
    latest = schema_version(db)

    def half_done(d: Database) -> None:
        d.execute("CREATE TABLE half (x)")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        migrate(db, [*MIGRATIONS, (latest + 1, "broken", half_done)])
    assert schema_version(db) == latest
    assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'half'").fetchone()
