"""The central end to end: real Mosquitto, real SQLite file, real Apprise to a local HTTP hook."""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from central_edge import HookServer, TestEdge, make_bundle, make_files, wait_for

import wire
from central import BrokerConfig, CentralConfig, CentralService, DeviceConfig, NotifyConfig
from garbagewatch.devtools.mosquitto import Mosquitto
from wire.topics import TopicKind, event_topic, file_topic, status_topic

pytestmark = pytest.mark.e2e


@pytest.fixture
def key() -> wire.DeviceKey:
    return wire.DeviceKey.generate()


@pytest.fixture
def config(tmp_path: Path, mosquitto: Mosquitto, key: wire.DeviceKey, hook: HookServer) -> CentralConfig:
    return CentralConfig(
        data_dir=tmp_path / "central",
        broker=BrokerConfig(port=mosquitto.port, client_id="central-test"),
        devices=[DeviceConfig.for_key("box-1", key.public)],
        notify=NotifyConfig(
            urls=[hook.url], console_url="http://console.test", first_retry_s=0.2, poll_s=0.2
        ),
    )


@pytest.fixture
def central(config: CentralConfig) -> Iterator[CentralService]:
    svc = CentralService(config).start()
    assert svc.wait_ready(10), "central did not connect and subscribe"
    yield svc
    svc.stop()


@pytest.fixture
def edge(mosquitto: Mosquitto, central: CentralService) -> Iterator[TestEdge]:
    e = TestEdge(mosquitto.port)
    yield e
    e.close()


def rows(config: CentralConfig, sql: str, *params: Any) -> list[dict[str, Any]]:
    conn = sqlite3.connect(config.db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def test_a_bundle_files_one_work_order_stores_evidence_acks_and_notifies(
    central: CentralService, edge: TestEdge, config: CentralConfig, hook: HookServer, key: wire.DeviceKey
) -> None:
    bundle = make_bundle(key, zone="z7")
    edge.send_bundle(bundle)

    ack = edge.wait_ack(bundle.event_id, "ok")
    assert ack["ref_type"] == "event" and ack["kind"] == "confirmed"
    order_id = ack["work_order"]
    assert order_id and order_id.startswith("WO-")
    for f in bundle.files:
        assert edge.wait_ack(f.sha256, "ok")["ref_type"] == "file"
        stored = config.evidence_dir / f.sha256[:2] / f.sha256
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == f.sha256

    orders = rows(config, "SELECT * FROM work_orders")
    assert [(o["id"], o["status"], o["site"], o["camera"], o["zone"]) for o in orders] == [
        (order_id, "registered", "site-a", "cam-1", "z7")
    ]
    assert rows(config, "SELECT count(*) AS n FROM evidence_files")[0]["n"] == 2
    assert not list(config.incoming_dir.rglob("*.part"))

    wait_for(lambda: hook.bodies, what="the notification POST")
    message = hook.bodies[0]["message"]
    for text in (
        order_id,
        "site-a",
        "cam-1",
        "z7",
        orders[0]["due_at"],
        f"http://console.test/orders/{order_id}",
    ):
        assert text in message
    assert wait_for(lambda: rows(config, "SELECT * FROM notifications WHERE status = 'sent'"))
    assert central.counters["work_orders_opened"] == 1


def test_the_same_event_three_times_makes_one_order_and_three_ok_acks(
    central: CentralService, edge: TestEdge, config: CentralConfig, hook: HookServer, key: wire.DeviceKey
) -> None:
    bundle = make_bundle(key)
    edge.send_bundle(bundle)
    first = edge.wait_ack(bundle.event_id, "ok")
    edge.send_bundle(bundle)  # files and event again, as after a lost ack
    edge.send_event(bundle)
    edge.wait_ack(bundle.event_id, "ok", count=3)

    acks = edge.acks_for(bundle.event_id)
    assert [a["status"] for a in acks] == ["ok", "ok", "ok"]
    assert {a["work_order"] for a in acks} == {first["work_order"]}
    assert len(rows(config, "SELECT * FROM work_orders")) == 1
    assert len(rows(config, "SELECT * FROM events")) == 1
    wait_for(lambda: hook.bodies, what="the notification")
    assert len(rows(config, "SELECT * FROM notifications")) == 1
    assert central.counters["event_duplicates"] == 2


def test_segments_out_of_order_and_duplicated_still_make_the_file(
    central: CentralService, edge: TestEdge, config: CentralConfig, key: wire.DeviceKey
) -> None:
    bundle = make_bundle(key, files=make_files(seed=3, clip_bytes=9000, snap_bytes=3000))
    rng = random.Random(7)
    for f in bundle.files:
        segs = edge.segments(f)
        shuffled = segs + rng.sample(segs, k=len(segs) // 2)
        rng.shuffle(shuffled)
        edge.send_init(bundle, f)
        edge.send_segments(bundle, f, shuffled)
        edge.send_fin(bundle, f)
        edge.wait_ack(f.sha256, "ok")
    edge.send_event(bundle)
    assert edge.wait_ack(bundle.event_id, "ok")["work_order"]
    clip = bundle.files[0]
    assert (config.evidence_dir / clip.sha256[:2] / clip.sha256).read_bytes() == clip.data


def test_an_event_before_its_files_gets_missing_then_ok(
    central: CentralService, edge: TestEdge, config: CentralConfig, key: wire.DeviceKey
) -> None:
    bundle = make_bundle(key)
    edge.send_event(bundle)
    missing = edge.wait_ack(bundle.event_id, "missing")
    assert sorted(missing["missing"]) == sorted(f.sha256 for f in bundle.files)
    assert rows(config, "SELECT * FROM events") == []

    edge.send_bundle(bundle)
    assert edge.wait_ack(bundle.event_id, "ok")["work_order"]


def test_a_bundle_whose_clip_the_edge_dropped_is_filed_with_the_clip_missing(
    central: CentralService, edge: TestEdge, config: CentralConfig, key: wire.DeviceKey
) -> None:
    bundle = make_bundle(key, zone="z4")
    clip, snapshot = bundle.files
    edge.send_file(bundle, snapshot)
    edge.send_event(bundle)  # without the claim the central waits for the clip
    assert edge.wait_ack(bundle.event_id, "missing")["missing"] == [clip.sha256]
    assert rows(config, "SELECT * FROM events") == []

    # The edge's spool dropped the clip: the same signed message, now declaring it.
    bundle.body["dropped"] = [clip.sha256]
    edge.send_event(bundle)
    ack = edge.wait_ack(bundle.event_id, "ok")
    assert ack["work_order"] and ack["kind"] == "confirmed" and "1 file(s) the edge dropped" in ack["reason"]
    orders = rows(config, "SELECT id, zone, status FROM work_orders")
    assert orders == [{"id": ack["work_order"], "zone": "z4", "status": "registered"}]
    filed = rows(config, "SELECT sha256, role, missing FROM event_files WHERE event_id = ?", bundle.event_id)
    assert sorted((r["role"], r["sha256"], r["missing"]) for r in filed) == [
        ("clip", clip.sha256, 1),
        ("snapshot", snapshot.sha256, 0),
    ]
    assert rows(config, "SELECT sha256 FROM evidence_files") == [{"sha256": snapshot.sha256}]
    assert central.counters["evidence_files_dropped"] == 1
    assert central.counters["events_filed_with_dropped_files"] == 1

    # Sent again (a lost ack): the same message id, nothing new filed.
    edge.send_event(bundle)
    edge.wait_ack(bundle.event_id, "ok", count=2)
    assert len(rows(config, "SELECT * FROM events")) == 1

    # The claim does not hide a file the central holds: it is filed as present.
    held = make_bundle(key, zone="z5")
    for f in held.files:
        edge.send_file(held, f)
    held.body["dropped"] = [held.files[0].sha256]
    edge.send_event(held)
    edge.wait_ack(held.event_id, "ok")
    flags = rows(config, "SELECT missing FROM event_files WHERE event_id = ?", held.event_id)
    assert flags == [{"missing": 0}, {"missing": 0}]

    # A claim naming a file the manifest does not list breaks the contract.
    stray = make_bundle(key, zone="z6")
    stray.body["dropped"] = ["ef" * 32]
    edge.send_event(stray)
    assert "dropped" in edge.wait_ack(stray.event_id, "rejected")["reason"]
    assert central.counters["quarantined.invalid_event"] == 1


def test_bad_input_is_quarantined_counted_and_the_service_goes_on(
    central: CentralService, edge: TestEdge, mosquitto: Mosquitto, config: CentralConfig, key: wire.DeviceKey
) -> None:
    # Bad signature: the manifest changed after signing.
    forged = make_bundle(key, zone="z1")
    for f in forged.files:
        edge.send_file(forged, f)
    forged.body["manifest"] = {**forged.manifest, "zone": "z2"}
    edge.send_event(forged)
    rejected = edge.wait_ack(forged.event_id, "rejected")
    assert "signature" in rejected["reason"] and rejected["kind"] == "confirmed"

    # Unknown device: well signed by a key the central does not know; no ack to a stranger.
    stranger_key = wire.DeviceKey.generate()
    stranger = TestEdge(mosquitto.port, device="stranger")
    try:
        stranger.send_bundle(make_bundle(stranger_key, device="stranger"))
    finally:
        stranger.close()

    # Tampered segment: one byte flipped, so the sha256 at fin is wrong.
    tampered = make_bundle(key, files=make_files(seed=9))
    clip = tampered.files[0]
    segs = edge.segments(clip)
    off, data = segs[1]
    segs[1] = (off, bytes([data[0] ^ 0xFF]) + data[1:])
    edge.send_init(tampered, clip)
    edge.send_segments(tampered, clip, segs)
    edge.send_fin(tampered, clip)
    assert "hash" in edge.wait_ack(clip.sha256, "rejected")["reason"]

    # Malformed and truncated JSON, a segment beyond the announced size, bad topics.
    good = make_bundle(key, zone="z9")
    topic = event_topic("box-1", "site-a", "cam-1")
    edge.publish(topic, b"{not json")
    edge.publish(topic, good.payload[: len(good.payload) // 2])
    edge.send_init(good, good.files[1])
    edge.publish(
        file_topic(
            TopicKind.FILE_SEGMENT,
            "box-1",
            "site-a",
            "cam-1",
            good.files[1].sha256,
            offset=len(good.files[1].data),
        ),
        b"x" * 10,
    )
    edge.publish("gw/v1/Box-1/site-a/cam-1/event", good.payload)
    edge.publish(f"gw/v1/box-1/site-a/cam-1/file/{'z' * 64}/init", b"{}")

    # ... and a good bundle afterwards is filed as usual.
    edge.send_bundle(good)
    assert edge.wait_ack(good.event_id, "ok")["work_order"]

    counts = central.counters
    for reason in (
        "bad_signature",
        "unknown_device",
        "file_hash_mismatch",
        "malformed_json",
        "segment_beyond_size",
        "bad_topic",
    ):
        assert counts.get(f"quarantined.{reason}", 0) >= 1, (reason, counts)
    assert counts["quarantined.malformed_json"] == 2  # the malformed and the truncated event
    reasons = {r["reason"] for r in rows(config, "SELECT reason FROM quarantine")}
    assert {"bad_signature", "unknown_device", "file_hash_mismatch", "malformed_json", "bad_topic"} <= reasons
    orders = rows(config, "SELECT zone FROM work_orders")
    assert orders == [{"zone": "z9"}]
    # The tampered file's bytes are kept in quarantine, not in evidence.
    assert not (config.evidence_dir / clip.sha256[:2] / clip.sha256).exists()
    saved = rows(config, "SELECT payload_sha256, saved FROM quarantine WHERE reason = 'file_hash_mismatch'")[
        0
    ]
    assert (
        saved["saved"] == 1
        and (config.quarantine_dir / saved["payload_sha256"][:2] / saved["payload_sha256"]).exists()
    )


def test_status_marks_the_device_online_and_offline(
    central: CentralService, edge: TestEdge, config: CentralConfig
) -> None:
    edge.publish(status_topic("box-1"), json.dumps({"state": "online", "version": "0.1.0"}).encode())
    wait_for(
        lambda: rows(config, "SELECT online FROM devices WHERE device_id = 'box-1'")[0]["online"] == 1,
        what="device online",
    )
    edge.publish(status_topic("box-1"), json.dumps({"state": "offline"}).encode())
    wait_for(
        lambda: rows(config, "SELECT online FROM devices WHERE device_id = 'box-1'")[0]["online"] == 0,
        what="device offline",
    )


def test_messages_queued_while_the_central_is_stopped_are_filed_when_it_is_back(
    config: CentralConfig, mosquitto: Mosquitto, key: wire.DeviceKey
) -> None:
    svc = CentralService(config).start()
    assert svc.wait_ready(10)
    edge = TestEdge(mosquitto.port)
    try:
        bundle = make_bundle(key)
        clip = bundle.files[0]
        segs = edge.segments(clip)
        edge.send_init(bundle, clip)
        edge.send_segments(bundle, clip, segs[:2])
        wait_for(lambda: svc.counters.get("received.file_segment", 0) >= 2, what="first segments")
        svc.stop()  # the broker keeps the session: clean_start=False with a session expiry

        edge.send_segments(bundle, clip, segs[2:])
        edge.send_fin(bundle, clip)
        edge.send_file(bundle, bundle.files[1])
        edge.send_event(bundle)

        svc = CentralService(config).start()
        ack = edge.wait_ack(bundle.event_id, "ok")
        assert ack["work_order"]
        assert (config.evidence_dir / clip.sha256[:2] / clip.sha256).read_bytes() == clip.data
        assert svc.counters.get("quarantined", 0) == 0
    finally:
        edge.close()
        svc.stop()
