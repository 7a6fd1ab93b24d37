"""End to end on real parts: an RTSP camera films real street garbage, then tidy bins.

Mosquitto, the GStreamer RTSP server, the edge daemon with the shipped ONNX model, the central
service with its SQLite file, and Apprise posting to a local HTTP endpoint: no mock anywhere.
The clip is built at test time from ../shared/datasets/garbage-cn/valid (never committed).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import wire
from central.store.database import open_database
from garbagewatch.demo.chain import Chain, Timing
from garbagewatch.devtools.footage import clip_from_images
from garbagewatch.devtools.mosquitto import Mosquitto

pytestmark = pytest.mark.e2e

# A fixed camera: one garbage scene long enough to confirm (4 s in Timing()), then the same
# kind of street with only tidy bins, long enough to clear (6 s) and to show nothing new is filed.
# The camera loops its clip, so the clean part is long enough that every assertion about it ends
# before the garbage scene comes round again (at GARBAGE_SECONDS + 2 * CLEAN_SECONDS of stream time).
GARBAGE_SECONDS, CLEAN_SECONDS = 16.0, 15.0


def pick_images(valid: Path, classes: set[int], count: int, min_area: float = 0.0) -> list[Path]:
    """The first `count` validation images whose labels hold exactly `classes` (by label, not by model)."""
    out = []
    for label in sorted((valid / "labels").glob("*.txt")):
        rows = np.loadtxt(label, ndmin=2)
        if rows.size == 0 or set(rows[:, 0].astype(int)) != classes:
            continue
        if (rows[:, 3] * rows[:, 4]).max() < min_area:
            continue
        out.append(valid / "images" / f"{label.stem}.jpg")
        if len(out) == count:
            break
    assert len(out) == count, f"fewer than {count} validation images with classes {classes}"
    return out


def poll(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def street_clip(tmp_path: Path, dataset_dir: Path) -> Path:
    valid = dataset_dir / "valid"
    garbage = pick_images(valid, {0}, 1, min_area=0.05)
    tidy = pick_images(valid, {1}, 2)
    items = [(p, GARBAGE_SECONDS) for p in garbage] + [(p, CLEAN_SECONDS) for p in tidy]
    return clip_from_images(items, tmp_path / "street.mp4", size=(1280, 720), fps=10, gop=10)


def test_garbage_scene_files_one_verified_order_and_clean_scene_none(
    tmp_path: Path, street_clip: Path, mosquitto: Mosquitto, rtsp_server: Callable[..., Any]
) -> None:
    camera = rtsp_server({"cam-1": street_clip})
    started = time.monotonic()
    chain = Chain(tmp_path / "run", camera.url("cam-1"), timing=Timing(), broker=mosquitto).start()
    try:
        orders = poll(chain.work_orders, 60, "a work order for the garbage scene")
        order = orders[0]
        assert (order["site"], order["camera"], order["zone"]) == ("demo-site", "cam-1", "all")
        # The camera moves on to tidy bins: the order is verified clean and closed by the camera.
        poll(lambda: chain.work_orders()[0]["status"] == "closed", 60, "the order closed by the camera")
        # Tidy bins for the rest of the clip: still that one order, no other. Watch until shortly
        # before the loop would bring the garbage back (stream time ~ time since the edge connected).
        watch_until = started + GARBAGE_SECONDS + 2 * CLEAN_SECONDS - 4
        while time.monotonic() < watch_until:
            assert len(chain.work_orders()) == 1, chain.work_orders()
            time.sleep(0.5)
        assert [o["id"] for o in chain.work_orders()] == [order["id"]], chain.work_orders()

        # Evidence: every file's sha256 matches the device-signed manifest.
        db = open_database(chain.central.config.db_path)  # type: ignore[union-attr]
        events = list(db.query("SELECT * FROM events WHERE work_order_id = ?", [order["id"]]))
        assert {e["kind"] for e in events} >= {"confirmed", "cleared"}
        evidence_dir = chain.central.config.evidence_dir  # type: ignore[union-attr]
        roles = set()
        for event in events:
            manifest = json.loads(event["manifest"])
            assert wire.verify_manifest(chain.key.public, manifest, event["signature"])
            for f in manifest["files"]:
                row = db.table("evidence_files").get(f["sha256"])
                stored = (evidence_dir / row["path"]).read_bytes()
                assert hashlib.sha256(stored).hexdigest() == f["sha256"]
                assert len(stored) == f["size"]
                roles.add(f["role"])
        assert {"clip", "snapshot", "snapshot_boxes", "after_snapshot"} <= roles
        clip_row = next(r for r in db.query("SELECT * FROM evidence_files WHERE role = 'clip'"))
        assert (evidence_dir / clip_row["path"]).read_bytes()[4:8] == b"ftyp"
        db.conn.close()

        # The notification reached the local HTTP endpoint through Apprise, naming the order.
        notes = poll(lambda: chain.sink.received, 20, "a notification")
        assert any(order["id"] in json.dumps(n, ensure_ascii=False) for n in notes)
    finally:
        chain.stop()
