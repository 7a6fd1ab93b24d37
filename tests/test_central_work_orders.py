"""Work order rules on a real SQLite file, driven by a fake clock."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlite_utils import Database

import wire
from central.store import Filing, file_event, list_work_orders, open_database
from central.timefmt import utc_day, utc_iso
from wire.signing import canonical_json

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z


def manifest(
    event_id: str, kind: str = "confirmed", zone: str = "z1", at: float = T0, n: int = 1
) -> wire.Manifest:
    return wire.Manifest(
        event_id=event_id,
        kind=kind,  # type: ignore[arg-type]
        device_id="box-1",
        site="site-a",
        camera="cam-1",
        zone=zone,
        first_seen=utc_iso(at - 30),
        at=utc_iso(at),
        clock_synced=True,
        frame_size=(1280, 720),
        detections=[wire.DetectionRecord(class_name="bag", confidence=0.9, box=(0, 0, 5, 5))] * n,
        model=wire.ModelRef(name="m", sha256="0" * 64),
        files=[
            wire.FileRef(
                role="snapshot",
                name="s.jpg",
                media_type="image/jpeg",
                size=1,
                sha256=hashlib.sha256(f"{event_id}{kind}{at}".encode()).hexdigest(),
            )
        ],
    )


def file(db: Database, m: wire.Manifest, now: float) -> Filing:
    text = canonical_json(m.model_dump(mode="json")).decode()
    with db.atomic():
        return file_event(
            db,
            m,
            manifest_json=text,
            signature="s" * 88,
            key_id="ed25519:x",
            received_at=now,
            event_code="0102",
            deadline_hours=4.0,
        )


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(tmp_path / "gw.db")


EV_A, EV_B, EV_C = "0000000000aa", "0000000000bb", "0000000000cc"


def test_confirmed_opens_an_order_with_a_deadline(db: Database) -> None:
    filing = file(db, manifest(EV_A), T0)
    assert filing.opened and filing.work_order_id == f"WO-{utc_day(T0)}-000001"
    [order] = list_work_orders(db)
    assert order["status"] == "registered" and order["event_code"] == "0102"
    assert order["opened_at"] == utc_iso(T0) and order["due_at"] == utc_iso(T0 + 4 * 3600)
    assert (order["first_event_id"], order["last_event_id"], order["event_count"]) == (EV_A, EV_A, 1)


def test_update_joins_cleared_closes_and_the_next_confirmed_opens_anew(db: Database) -> None:
    opened = file(db, manifest(EV_A), T0)
    upd = file(db, manifest(EV_A, "update", at=T0 + 300, n=3), T0 + 301)
    upd2 = file(db, manifest(EV_A, "update", at=T0 + 600, n=2), T0 + 601)
    assert upd == upd2 == Filing(opened.work_order_id)
    cleared = file(db, manifest(EV_A, "cleared", at=T0 + 900, n=0), T0 + 901)
    assert cleared == Filing(opened.work_order_id, closed=True)
    [order] = list_work_orders(db)
    assert order["status"] == "closed" and order["event_count"] == 4 and order["detections"] == 0
    assert order["verified_at"] == order["closed_at"] == utc_iso(T0 + 901)
    kinds = [r["kind"] for r in db.query("SELECT kind FROM order_events ORDER BY attached_at")]
    assert kinds == ["confirmed", "update", "update", "cleared"]

    again = file(db, manifest(EV_B, at=T0 + 1000), T0 + 1000)
    assert again.opened and again.work_order_id != opened.work_order_id
    assert again.work_order_id is not None and again.work_order_id.endswith("-000002")


def test_a_second_event_at_the_same_place_joins_the_open_order_another_zone_gets_its_own(
    db: Database,
) -> None:
    a = file(db, manifest(EV_A, zone="z1"), T0)
    b = file(db, manifest(EV_B, zone="z1"), T0 + 10)
    c = file(db, manifest(EV_C, zone="z2"), T0 + 20)
    assert b == Filing(a.work_order_id)
    assert c.opened and c.work_order_id != a.work_order_id
    assert len(list_work_orders(db, "open")) == 2


def test_cleared_without_an_order_is_filed_without_one(db: Database) -> None:
    assert file(db, manifest(EV_A, "cleared"), T0) == Filing(None)
    assert list_work_orders(db) == []
    assert [r["kind"] for r in db.query("SELECT kind FROM events")] == ["cleared"]


def test_a_late_update_joins_its_closed_order_without_reopening_it(db: Database) -> None:
    opened = file(db, manifest(EV_A), T0)
    file(db, manifest(EV_A, "cleared", at=T0 + 900), T0 + 900)
    late = file(db, manifest(EV_A, "update", at=T0 + 300), T0 + 950)
    assert late == Filing(opened.work_order_id)
    assert [o["status"] for o in list_work_orders(db)] == ["closed"]


def test_ids_count_per_utc_day(db: Database) -> None:
    first = file(db, manifest(EV_A, zone="z1"), T0)
    next_day = file(db, manifest(EV_B, zone="z2"), T0 + 86400)
    assert first.work_order_id is not None and next_day.work_order_id is not None
    assert first.work_order_id.endswith("-000001") and next_day.work_order_id.endswith("-000001")
    assert first.work_order_id != next_day.work_order_id
