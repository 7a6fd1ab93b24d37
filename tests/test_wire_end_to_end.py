"""Both sides of the contract together: the real edge uplink and the real central, over a real broker.

The case the two must agree on beyond the happy path: a clip the edge's spool quota dropped after
signing. The edge declares it in `dropped`; the central files the event with the clip missing.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import wire
from central import BrokerConfig, CentralConfig, CentralService, DeviceConfig
from edge.evidence import EvidenceFile, build_event_message
from edge.spool import Spool
from edge.uplink import Uplink
from garbagewatch.devtools.mosquitto import Mosquitto

pytestmark = pytest.mark.e2e

KEY = wire.DeviceKey.from_seed(bytes(range(32)))
DEVICE = "edge-01"
CLIP, SNAP = 60_000, 8_000


def wait_for(condition: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def bundle(i: int, zone: str) -> tuple[wire.EventMessage, list[EvidenceFile]]:
    return build_event_message(
        KEY,
        event_id=wire.new_event_id(1_795_665_000.0 + i),
        kind="confirmed",
        device_id=DEVICE,
        site="site-a",
        camera="cam-1",
        zone=zone,
        first_seen=1_795_665_000.0 + i,
        at=1_795_665_030.0 + i,
        clock_synced=True,
        frame_size=(1280, 720),
        detections=[wire.DetectionRecord(class_name="garbage", confidence=0.9, box=(10, 20, 300, 400))],
        model=wire.ModelRef(name="garbagewatch", sha256="cd" * 32),
        files=[
            ("clip", "clip.mp4", "video/mp4", bytes([i]) * CLIP),
            ("snapshot", "snapshot.jpg", "image/jpeg", bytes([100 + i]) * SNAP),
        ],
    )


@pytest.fixture
def central(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[CentralService]:
    config = CentralConfig(
        data_dir=tmp_path / "central",
        broker=BrokerConfig(port=mosquitto.port, client_id="central-e2e"),
        devices=[DeviceConfig.for_key(DEVICE, KEY.public, site="site-a")],
    )
    svc = CentralService(config).start()
    assert svc.wait_ready(10), "central did not connect and subscribe"
    yield svc
    svc.stop()


def rows(svc: CentralService, sql: str, *params: Any) -> list[dict[str, Any]]:
    conn = sqlite3.connect(svc.config.db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def test_a_clip_dropped_by_the_edge_quota_is_filed_as_missing(
    tmp_path: Path, mosquitto: Mosquitto, central: CentralService
) -> None:
    first, second = bundle(1, "z1"), bundle(2, "z2")
    message_bytes = len(first[0].model_dump_json())
    # Room for one bundle and the second's snapshot: putting the second drops the first's clip.
    spool = Spool(tmp_path / "spool", quota_bytes=CLIP + 2 * SNAP + 2 * message_bytes + 1_000)
    spool.put(first[0], [(f.ref, f.content) for f in first[1]])
    spool.put(second[0], [(f.ref, f.content) for f in second[1]])
    clip = first[1][0].ref.sha256
    assert spool.file_state(clip) == "dropped"

    uplink = Uplink(
        spool,
        device_id=DEVICE,
        host="127.0.0.1",
        port=mosquitto.port,
        client_id=f"gw-edge-{DEVICE}",
        ack_timeout=2.0,
        segment_bytes=16 * 1024,
        poll_interval=0.1,
        reconnect_delay=(0.2, 1.0),
    ).start()
    try:
        wait_for(lambda: not spool.pending(), what="both events to be acked")
    finally:
        uplink.stop(drain_timeout=0.5)
        spool.close()

    for message, _ in (first, second):
        assert spool_state(tmp_path, message.manifest.event_id) == "acked"
    orders = rows(central, "SELECT zone, first_event_id FROM work_orders ORDER BY zone")
    assert orders == [
        {"zone": "z1", "first_event_id": first[0].manifest.event_id},
        {"zone": "z2", "first_event_id": second[0].manifest.event_id},
    ]
    files = rows(central, "SELECT event_id, role, sha256, missing FROM event_files ORDER BY event_id, role")
    assert [(f["role"], f["missing"]) for f in files] == [("clip", 1), ("snapshot", 0), ("clip", 0), ("snapshot", 0)]
    assert files[0]["sha256"] == clip
    stored = {r["sha256"] for r in rows(central, "SELECT sha256 FROM evidence_files")}
    assert clip not in stored and len(stored) == 3
    counts = central.counters
    assert counts["evidence_files_dropped"] == 1 and counts.get("quarantined", 0) == 0
    # The message filed is the signed one: its id is the sha256 of the manifest's canonical bytes.
    filed = rows(central, "SELECT message_id, manifest FROM events WHERE event_id = ?", first[0].manifest.event_id)
    canonical = wire.canonical_json(first[0].manifest.model_dump(mode="json"))
    assert filed[0]["manifest"].encode() == canonical
    assert filed[0]["message_id"] == hashlib.sha256(canonical).hexdigest()


def spool_state(tmp_path: Path, event_id: str) -> str:
    conn = sqlite3.connect(tmp_path / "spool" / "spool.sqlite3")
    try:
        return str(conn.execute("SELECT state FROM bundles WHERE event_id = ?", (event_id,)).fetchone()[0])
    finally:
        conn.close()
