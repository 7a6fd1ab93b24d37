"""Evidence retention with legal hold, on a real SQLite file, a real evidence store and a hand clock.

Orders are filed and moved through the real case flow (audited into the real hash-chained trail);
the files are real bytes in the content store. The rule, in short: a file goes `evidence_days`
after the last of its orders was closed or rejected (or after it was stored, if it has no
order), unless one of its orders is open again or on legal hold. Every deletion is one audit row.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from caseflow_fixtures import HOUR, T0, Clock
from retention_fixtures import DAY, Archive, jpeg_bytes

from central.config import ConfigError, RetentionConfig, load_config
from central.counters import Counters
from central.evidence_store import ContentStore
from central.retention.holds import AlreadyHeld, HoldError, NoSuchOrder, NotHeld, place_hold, release_hold
from central.retention.policy import due_files
from central.retention.sweep import sweep
from central.retention.sweeper import RetentionSweeper
from central.timefmt import utc_iso

DAYS = 30  # the retention period of these tests


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    archive = Archive.open(tmp_path, Clock(T0), DAYS)
    yield archive
    archive.db.close()


def test_a_closed_orders_files_go_after_the_period_each_with_one_audit_row(archive: Archive, tmp_path: Path) -> None:
    order, shas = archive.camera_order("z1", jpeg_bytes("a"), jpeg_bytes("b"))
    archive.close(order)
    closed_at = utc_iso(archive.clock())

    archive.clock.now += DAYS * DAY - HOUR  # not yet: the period runs from the close
    assert archive.sweep().purged == 0 and all(archive.on_disk(s) for s in shas)

    archive.clock.now += 2 * HOUR
    result = archive.sweep()
    assert (result.purged, result.bytes, result.errors) == (2, 2 * len(jpeg_bytes("a")), 0)
    assert not any(archive.on_disk(s) for s in shas)
    for sha in shas:  # the row stays: manifests and the audit trail still name the sha256
        row = archive.row(sha)
        assert row["purged_at"] == utc_iso(archive.clock())
        assert row["purge_reason"] == f"retention: {DAYS} days after {order} closed {closed_at}"
    rows = archive.purge_rows()
    assert [(r["actor"], r["subject"]) for r in rows] == [("system:retention", f"evidence:{s}") for s in sorted(shas)]
    assert rows[0]["detail"]["orders"] == [order] and rows[0]["detail"]["size"] == len(jpeg_bytes("a"))
    assert archive.sweep().purged == 0 and len(archive.purge_rows()) == 2  # once only
    assert archive.audit_chain_verifies(tmp_path)


def test_the_files_of_open_orders_are_kept_however_old(archive: Archive) -> None:
    order, shas = archive.camera_order("z1", jpeg_bytes("open"))
    archive.flow.act(archive.db, order, "dispatch", actor="user:li", assignee="crew-3")
    archive.clock.now += 10 * DAYS * DAY
    assert archive.sweep().purged == 0 and archive.on_disk(shas[0])


def test_a_rejected_orders_files_go_after_the_period_from_the_rejection(archive: Archive) -> None:
    order, shas = archive.camera_order("z1", jpeg_bytes("cart"))
    archive.clock.now += DAY
    archive.flow.act(archive.db, order, "reject", actor="user:li", reason="a parked cart")
    archive.clock.now += DAYS * DAY - 60
    assert archive.sweep().purged == 0
    archive.clock.now += 120
    assert archive.sweep().purged == 1 and "rejected" in archive.row(shas[0])["purge_reason"]


def test_a_held_order_keeps_its_files_until_the_hold_is_released(archive: Archive, tmp_path: Path) -> None:
    order, shas = archive.camera_order("z1", jpeg_bytes("disputed"))
    archive.close(order)
    hold = place_hold(
        archive.db, order, reason="complaint 2026-118", actor="user:qian", audit=archive.trail, now=archive.clock()
    )
    assert hold.active and hold.site == "site-a"
    archive.clock.now += 3 * DAYS * DAY
    assert archive.sweep().purged == 0 and archive.on_disk(shas[0])

    release_hold(archive.db, order, reason="case settled", actor="user:qian", audit=archive.trail, now=archive.clock())
    assert archive.sweep().purged == 1 and not archive.on_disk(shas[0])
    actions = [
        (r["actor"], r["action"], r["reason"])
        for r in archive.db.query("SELECT * FROM audit_log WHERE subject = ? ORDER BY seq", [f"order:{order}"])
    ]
    assert ("user:qian", "order.hold", "complaint 2026-118") in actions
    assert ("user:qian", "order.hold.release", "case settled") in actions
    assert archive.audit_chain_verifies(tmp_path)


def test_hold_refusals_say_what_to_do(archive: Archive) -> None:
    order, _ = archive.camera_order("z1", jpeg_bytes("x"))

    def hold(order_id: str, reason: str = "complaint") -> None:
        place_hold(archive.db, order_id, reason=reason, actor="user:qian", audit=archive.trail, now=archive.clock())

    with pytest.raises(NoSuchOrder, match="no work order 'WO-0'"):
        hold("WO-0")
    with pytest.raises(HoldError, match="needs a reason"):
        hold(order, "   ")
    hold(order)
    with pytest.raises(AlreadyHeld, match="release that hold first"):
        hold(order, "another complaint")
    release_hold(archive.db, order, reason="settled", actor="user:qian", audit=archive.trail, now=archive.clock())
    with pytest.raises(NotHeld, match="nothing to release"):
        release_hold(archive.db, order, reason="again", actor="user:qian", audit=archive.trail, now=archive.clock())
    hold(order, "a new complaint")  # a released order may be held again


def test_a_file_shared_by_two_orders_is_kept_until_both_have_expired(archive: Archive) -> None:
    shared = jpeg_bytes("the same frame")
    first, (sha,) = archive.camera_order("z1", shared)
    second, _ = archive.camera_order("z2", shared)
    archive.close(first)
    archive.clock.now += 5 * DAY
    archive.close(second)
    second_closed = utc_iso(archive.clock())

    archive.clock.now += DAYS * DAY - 4 * DAY  # the first expired 1 day ago, the second has 4 days left
    assert archive.sweep().purged == 0 and archive.on_disk(sha)
    archive.clock.now += 4 * DAY + 60
    assert archive.sweep().purged == 1
    assert archive.row(sha)["purge_reason"] == f"retention: {DAYS} days after {second} closed {second_closed}"
    assert archive.purge_rows()[0]["detail"]["orders"] == sorted([first, second])


def test_a_file_of_no_order_expires_from_when_it_was_stored(archive: Archive) -> None:
    sha = archive.store_file(jpeg_bytes("never filed"))
    archive.clock.now += DAYS * DAY + 60
    assert archive.sweep().purged == 1 and not archive.on_disk(sha)
    assert archive.row(sha)["purge_reason"].endswith("(no work order)")


def test_a_photo_attached_at_the_console_belongs_to_its_order(archive: Archive) -> None:
    order, _ = archive.camera_order("z1", jpeg_bytes("seen"))
    photo = archive.store_file(jpeg_bytes("resolve photo"), role="resolve_photo", event_id=order)
    archive.db.execute(
        "INSERT INTO console_order_photos (order_id, sha256, media_type, size, uploaded_by, uploaded_at)"
        " VALUES (?, ?, 'image/jpeg', 1, 'user:li', ?)",
        [order, photo, utc_iso(archive.clock())],
    )
    archive.clock.now += 2 * DAYS * DAY  # old, but its order is still open
    assert archive.sweep().purged == 0 and archive.on_disk(photo)


def test_reopening_a_closed_order_makes_its_files_undeletable_again(archive: Archive) -> None:
    order, shas = archive.camera_order("z1", jpeg_bytes("back again"))
    archive.close(order)
    archive.clock.now += DAYS * DAY - DAY
    archive.flow.act(archive.db, order, "reopen", actor="user:li", reason="garbage is back")
    archive.clock.now += 5 * DAYS * DAY
    assert due_files(archive.db, now=archive.clock(), days=DAYS) == []
    assert archive.sweep().purged == 0 and archive.on_disk(shas[0])


def test_a_crash_between_commit_and_unlink_is_finished_by_the_next_sweep(archive: Archive) -> None:
    order, shas = archive.camera_order("z1", jpeg_bytes("c1"), jpeg_bytes("c2"))
    archive.close(order)
    archive.clock.now += DAYS * DAY + 60

    class PowerCut(BaseException):
        pass

    class CrashingStore(ContentStore):
        def remove(self, sha256: str, *, sync_dir: bool = True) -> bool:
            raise PowerCut  # the process dies right after the commit

    crashing = CrashingStore(archive.store.root)
    with pytest.raises(PowerCut):
        sweep(archive.db, crashing, archive.config.retention, archive.clock(), audit=archive.trail)
    assert all(archive.row(s)["purged_at"] for s in shas) and all(archive.on_disk(s) for s in shas)
    assert all(archive.row(s)["unlink_pending"] == 1 for s in shas)  # what the next sweep looks at
    assert len(archive.purge_rows()) == 2  # committed with the rows

    result = archive.sweep()
    assert (result.purged, result.leftovers) == (0, 2) and not any(archive.on_disk(s) for s in shas)
    assert all(archive.row(s)["unlink_pending"] == 0 for s in shas)  # later sweeps skip them
    assert len(archive.purge_rows()) == 2  # no second record of the same deletion
    assert archive.sweep().leftovers == 0


def test_content_stored_again_after_its_purge_is_back(archive: Archive) -> None:
    data = jpeg_bytes("resent")
    sha = archive.store_file(data)
    archive.clock.now += DAYS * DAY + 60
    assert archive.sweep().purged == 1
    archive.clock.now += HOUR
    assert archive.store_file(data) == sha  # a device sends it again
    row = archive.row(sha)
    assert (row["purged_at"], row["purge_reason"], row["stored_at"]) == (None, None, utc_iso(archive.clock()))
    assert archive.on_disk(sha)
    assert archive.sweep().purged == 0  # stored now: its period starts over


def test_evidence_days_null_keeps_everything(archive: Archive) -> None:
    order, shas = archive.camera_order("z1", jpeg_bytes("forever"))
    archive.close(order)
    archive.clock.now += 100 * 365 * DAY
    assert archive.sweep(evidence_days=None).purged == 0 and archive.on_disk(shas[0])


def test_a_large_backlog_goes_in_batches_of_one_transaction_each(archive: Archive) -> None:
    shas = [archive.store_file(jpeg_bytes(f"old-{n}")) for n in range(5)]
    archive.clock.now += DAYS * DAY + 60
    result = archive.sweep(batch=2)
    assert (result.purged, result.transactions) == (5, 3) and not any(archive.on_disk(s) for s in shas)
    assert len(archive.purge_rows()) == 5


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_sweeper_thread_purges_counts_and_survives_errors(archive: Archive, tmp_path: Path) -> None:
    sha = archive.store_file(jpeg_bytes("service"))
    archive.clock.now += DAYS * DAY + 60
    counters = Counters()
    sweeper = RetentionSweeper(archive.config.db_path, archive.store, archive.config.retention, counters, archive.clock)
    sweeper.start()
    try:
        wait_for(lambda: sweeper.sweeps >= 1)
    finally:
        sweeper.stop()
    assert counters.snapshot().get("evidence_purged") == 1 and not archive.on_disk(sha)

    broken = tmp_path / "not-a-database.db"
    broken.write_bytes(b"this is not SQLite" * 100)
    failing = RetentionSweeper(broken, archive.store, RetentionConfig(sweep_s=0.05), counters, archive.clock)
    failing.start()
    try:
        wait_for(lambda: counters.snapshot().get("retention_errors", 0) >= 2)  # logged, counted, tried again
        assert any(t.name == "central-retention" and t.is_alive() for t in threading.enumerate())
    finally:
        failing.stop()


def test_the_retention_section_of_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "central.yaml"
    path.write_text("data_dir: data\nretention:\n  evidence_days: null  # keep forever\n")
    assert load_config(path).retention == RetentionConfig(evidence_days=None, sweep_s=3600.0, batch=500)
    path.write_text("data_dir: data\n")
    assert load_config(path).retention.evidence_days == 365  # the default: a year
    for bad, key in (("evidence_days: 0", "retention.evidence_days"), ("sweep_s: 0", "retention.sweep_s")):
        path.write_text(f"data_dir: data\nretention:\n  {bad}\n")
        with pytest.raises(ConfigError, match=key):
            load_config(path)
