"""The uplink against a real Mosquitto and a minimal test 'central' that reassembles and acks by the wire."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import wire
from edge.evidence import EvidenceFile, build_event_message
from edge.spool import Spool
from edge.uplink import Uplink
from garbagewatch.devtools.mosquitto import Mosquitto
from wire import topics
from wire.topics import CENTRAL_SUBSCRIPTIONS, TopicKind, parse_topic

REPO = Path(__file__).resolve().parents[1]
DEVICE = "edge-01"
KEY = wire.DeviceKey.from_seed(b"\x03" * 32)
MODEL = wire.ModelRef(name="m", sha256="cd" * 32)
SEGMENT = 64 * 1024


def wait_for(condition: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class TestCentral:
    """Just enough of the central: reassemble files by offset, check sha256 and signature, ack.

    While `hold` is set it receives everything but acks nothing. Like the real central it files an
    event without the files the message declares `dropped`, unless `honor_dropped` is False (a
    central that does not take the claim); files in `lose` never complete (a flaky link).
    """

    __test__ = False

    def __init__(
        self, port: int, hold: bool = False, honor_dropped: bool = True, lose: frozenset[str] = frozenset()
    ) -> None:
        self.honor_dropped = honor_dropped
        self.lose = lose
        self.event_payloads: list[bytes] = []
        self.hold = threading.Event()
        if hold:
            self.hold.set()
        self.lock = threading.Lock()
        self.inits: dict[str, wire.FileInit] = {}
        self.segments: dict[str, dict[int, bytes]] = defaultdict(dict)
        self.complete: dict[str, bytes] = {}
        self.events: dict[tuple[str, str], wire.EventMessage] = {}
        self.received: Counter[str] = Counter()
        self.status: list[wire.Availability] = []
        self.stats: list[wire.Stats] = []
        self.reject_events = False
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="central-test", protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect_async("127.0.0.1", port, 5, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        for sub in CENTRAL_SUBSCRIPTIONS:
            client.subscribe(sub, qos=1)
        self.connected.set()

    def _ack(self, **fields: object) -> None:
        if not self.hold.is_set():
            ack = wire.Ack.model_validate(fields)
            self.client.publish(topics.ack_topic(DEVICE), ack.model_dump_json(), qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        t = parse_topic(msg.topic)
        with self.lock:
            self.received[t.kind.value] += 1
            if t.kind is TopicKind.STATUS:
                self.status.append(wire.Availability.model_validate_json(msg.payload))
            elif t.kind is TopicKind.STATS:
                self.stats.append(wire.Stats.model_validate_json(msg.payload))
            elif t.kind is TopicKind.FILE_INIT:
                assert t.file_sha256 is not None
                self.inits[t.file_sha256] = wire.FileInit.model_validate_json(msg.payload)
            elif t.kind is TopicKind.FILE_SEGMENT:
                assert t.file_sha256 is not None and t.offset is not None
                if t.file_sha256 not in self.lose:
                    self.segments[t.file_sha256][t.offset] = bytes(msg.payload)
            elif t.kind is TopicKind.FILE_FIN:
                self._assemble(t.file_sha256 or "", t.size or 0)
            elif t.kind is TopicKind.EVENT:
                self.event_payloads.append(bytes(msg.payload))
                self._event(wire.EventMessage.model_validate_json(msg.payload))

    def _assemble(self, sha: str, size: int) -> None:
        parts = self.segments.get(sha, {})
        data = b"".join(parts[o] for o in sorted(parts))
        if len(data) == size and hashlib.sha256(data).hexdigest() == sha:
            self.complete[sha] = data
            self._ack(ref_type="file", ref=sha, status="ok")
        # Otherwise segments were lost: wait for the edge to send the file again.

    def _event(self, message: wire.EventMessage) -> None:
        manifest = message.manifest
        assert wire.verify_manifest(KEY.public, manifest.model_dump(mode="json"), message.signature)
        self.events[(manifest.event_id, manifest.kind)] = message
        self._answer(message)

    def _answer(self, message: wire.EventMessage) -> None:
        manifest = message.manifest
        if self.reject_events:
            self._ack(
                ref_type="event", ref=manifest.event_id, kind=manifest.kind, status="rejected", reason="test"
            )
            return
        declared = set(message.dropped) if self.honor_dropped else set()
        missing = [f.sha256 for f in manifest.files if f.sha256 not in self.complete and f.sha256 not in declared]
        if missing:
            self._ack(
                ref_type="event", ref=manifest.event_id, kind=manifest.kind, status="missing", missing=missing
            )
        else:
            self._ack(
                ref_type="event", ref=manifest.event_id, kind=manifest.kind, status="ok", work_order="wo-1"
            )

    def release(self) -> None:
        """Stop holding: ack everything received so far."""
        self.hold.clear()
        with self.lock:
            for sha in self.complete:
                self._ack(ref_type="file", ref=sha, status="ok")
            for message in self.events.values():
                self._answer(message)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_bundle(event: int, clip_bytes: int) -> tuple[wire.EventMessage, list[EvidenceFile]]:
    clip = os.urandom(clip_bytes)
    snap = os.urandom(20_000)
    return build_event_message(
        KEY,
        event_id=f"0190f3a2b4c5d6{event:02d}",
        kind="confirmed",
        device_id=DEVICE,
        site="s1",
        camera="cam-1",
        zone="z1",
        first_seen=1_764_000_000.0,
        at=1_764_000_010.0,
        clock_synced=True,
        frame_size=(640, 480),
        detections=[],
        model=MODEL,
        files=[("clip", "clip.mp4", "video/mp4", clip), ("snapshot", "snap.jpg", "image/jpeg", snap)],
    )


UPLINK_SETTINGS = dict(
    device_id=DEVICE,
    host="127.0.0.1",
    client_id="uplink-edge-01",
    ack_timeout=1.0,
    max_resend_interval=2.0,
    segment_bytes=SEGMENT,
    max_inflight_segments=4,
    reconnect_delay=(0.2, 1.0),
    poll_interval=0.1,
    keepalive=5,
)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    mq = Mosquitto(tmp_path / "mq").start()
    yield mq
    mq.kill()


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


def spool_files(spool: Spool) -> list[str]:
    return sorted(p.name for p in (spool.path / "files").iterdir())


def assert_delivered(
    central: TestCentral, bundles: list[tuple[wire.EventMessage, list[EvidenceFile]]]
) -> None:
    for message, files in bundles:
        assert central.events[(message.manifest.event_id, "confirmed")] == message
        for f in files:
            assert central.complete[f.ref.sha256] == f.content  # byte-identical
            assert central.inits[f.ref.sha256].event_id == message.manifest.event_id


def test_bundles_are_delivered_byte_identical(broker: Mosquitto, spool: Spool) -> None:
    central = TestCentral(broker.port)
    wait_for(central.connected.is_set, what="the central to connect")
    bundles = [make_bundle(1, 700_000), make_bundle(2, 150_000)]
    for b in bundles:
        spool.put(*b)
    uplink = Uplink(spool, port=broker.port, cameras=["cam-1"], version="t", **UPLINK_SETTINGS).start()  # type: ignore[arg-type]
    try:
        wait_for(lambda: not spool.pending(), what="the spool to empty")
        assert_delivered(central, bundles)
        wait_for(lambda: spool_files(spool) == [], what="the acked files to be deleted")
        assert spool.stats().pending_bundles == 0
        wait_for(lambda: any(s.state == "online" for s in central.status), what="'online' status")
        assert uplink.publish_stats({"cam-1": {"fps": 12.5}})
        wait_for(lambda: central.stats, what="stats")
        assert central.stats[-1].cameras == {"cam-1": {"fps": 12.5}} and central.stats[-1].spool_pending == 0
        assert uplink.counters["errors"] == 0
    finally:
        uplink.stop(drain_timeout=1.0)
    wait_for(lambda: central.status and central.status[-1].state == "offline", what="'offline' status")
    central.close()


def test_spool_empties_only_after_acks_and_survives_a_broker_kill(broker: Mosquitto, spool: Spool) -> None:
    central = TestCentral(broker.port, hold=True)
    wait_for(central.connected.is_set, what="the central to connect")
    bundle = make_bundle(1, 4_000_000)
    spool.put(*bundle)
    clip_sha = bundle[1][0].ref.sha256
    uplink = Uplink(spool, port=broker.port, **UPLINK_SETTINGS).start()  # type: ignore[arg-type]
    try:
        wait_for(lambda: len(central.segments[clip_sha]) >= 4, what="the first segments")
        broker.kill()  # kill -9, mid-transfer
        wait_for(lambda: not uplink.connected, what="the uplink to notice")
        assert len(spool.pending()) == 1 and len(spool_files(spool)) == 2
        broker.start()
        # Everything arrives again (resent after the reconnect), but nothing is acked yet.
        wait_for(
            lambda: ("0190f3a2b4c5d601", "confirmed") in central.events and clip_sha in central.complete,
            what="the bundle to arrive after the restart",
        )
        time.sleep(0.3)
        assert len(spool.pending()) == 1 and len(spool_files(spool)) == 2
        central.release()
        wait_for(lambda: not spool.pending(), what="the spool to empty after the acks")
        assert_delivered(central, [bundle])
        wait_for(lambda: spool_files(spool) == [], what="the acked files to be deleted")
        assert uplink.counters["errors"] == 0
    finally:
        uplink.stop(drain_timeout=0.5)
        central.close()


UPLINK_SCRIPT = """
import logging, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
logging.basicConfig(level=logging.INFO)
from edge.spool import Spool
from edge.uplink import Uplink
uplink = Uplink(Spool(Path({spool!r})), port={port}, **{settings!r}).start()
time.sleep(120)
"""


def test_a_fresh_uplink_after_a_crash_resends_what_was_not_acked(broker: Mosquitto, tmp_path: Path) -> None:
    central = TestCentral(broker.port, hold=True)
    wait_for(central.connected.is_set, what="the central to connect")
    spool = Spool(tmp_path / "spool")
    bundle = make_bundle(1, 1_500_000)
    spool.put(*bundle)
    event_key = (bundle[0].manifest.event_id, "confirmed")
    spool.close()
    script = UPLINK_SCRIPT.format(
        repo=str(REPO),
        spool=str(tmp_path / "spool"),
        port=broker.port,
        settings={**UPLINK_SETTINGS, "reconnect_delay": (0.2, 1.0)},
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: central.received["event"] >= 1, what="the first process to send the event")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    # The broker publishes the dead process's last will.
    wait_for(lambda: central.status and central.status[-1].state == "offline", what="the last will")
    spool = Spool(tmp_path / "spool")
    assert [b.key for b in spool.pending()] == [event_key]
    events_before = central.received["event"]
    uplink = Uplink(spool, port=broker.port, **UPLINK_SETTINGS).start()  # type: ignore[arg-type]
    try:
        wait_for(lambda: central.received["event"] > events_before, what="the fresh uplink to resend")
        assert spool.pending(), "nothing may be dropped before the central acks"
        central.release()
        wait_for(lambda: not spool.pending(), what="the spool to empty")
        assert_delivered(central, [bundle])
        wait_for(lambda: spool_files(spool) == [], what="the acked files to be deleted")
        assert uplink.counters["errors"] == 0
    finally:
        uplink.stop(drain_timeout=0.5)
        central.close()


def test_a_clip_the_quota_dropped_is_declared_and_the_event_still_delivered(broker: Mosquitto, tmp_path: Path) -> None:
    central = TestCentral(broker.port)
    wait_for(central.connected.is_set, what="the central to connect")
    first, second = make_bundle(1, 50_000), make_bundle(2, 50_000)
    # Room for one whole bundle and the second one's snapshot: putting the second drops the first's clip.
    spool = Spool(tmp_path / "spool", quota_bytes=50_000 + 2 * 20_000 + 4_000)
    spool.put(*first)
    spool.put(*second)
    clip, snapshot = (f.ref.sha256 for f in first[1])
    assert spool.file_state(clip) == "dropped" and spool.file_state(snapshot) == "pending"
    uplink = Uplink(spool, port=broker.port, **UPLINK_SETTINGS).start()  # type: ignore[arg-type]
    try:
        wait_for(lambda: not spool.pending(), what="both bundles to be delivered")
        assert spool.bundle_state(first[0].manifest.event_id, "confirmed") == "acked"
        assert spool.bundle_state(second[0].manifest.event_id, "confirmed") == "acked"
        sent = {json.loads(p)["manifest"]["event_id"]: p for p in central.event_payloads}
        # The first message names the dropped clip, outside the signed manifest...
        body = json.loads(sent[first[0].manifest.event_id])
        assert body["dropped"] == [clip]
        assert wire.verify_manifest(KEY.public, body["manifest"], body["signature"])
        assert clip not in central.complete and snapshot in central.complete
        # ... and a message with nothing dropped goes out byte for byte as it was spooled.
        assert sent[second[0].manifest.event_id] == second[0].model_dump_json().encode()
        assert b"dropped" not in sent[second[0].manifest.event_id]
        assert uplink.counters["errors"] == 0
    finally:
        uplink.stop(drain_timeout=0.5)
        central.close()


def test_a_file_lost_after_the_event_went_out_is_declared_when_the_central_asks_for_it(
    broker: Mosquitto, tmp_path: Path
) -> None:
    bundle = make_bundle(1, 10_000)
    clip = bundle[1][0].ref.sha256
    central = TestCentral(broker.port, lose=frozenset({clip}))
    wait_for(central.connected.is_set, what="the central to connect")
    spool = Spool(tmp_path / "spool")
    spool.put(*bundle)
    uplink = Uplink(spool, port=broker.port, **UPLINK_SETTINGS).start()  # type: ignore[arg-type]
    try:
        # The clip never arrives whole: the central answers 'missing' and the edge sends it again.
        wait_for(lambda: uplink.counters["event_acks_missing"] >= 2, what="'missing' acks")
        assert all(b"dropped" not in p for p in central.event_payloads)
        spool.mark_file_lost(clip, "unreadable: test")
        wait_for(lambda: not spool.pending(), what="the event to be delivered without the clip")
        assert spool.bundle_state(bundle[0].manifest.event_id, "confirmed") == "acked"
        assert json.loads(central.event_payloads[-1])["dropped"] == [clip]
    finally:
        uplink.stop(drain_timeout=0.5)
        central.close()


def test_rejected_and_incomplete_events_end_with_a_reason(broker: Mosquitto, tmp_path: Path) -> None:
    # A central that does not take the edge's word that a file was dropped.
    central = TestCentral(broker.port, honor_dropped=False)
    wait_for(central.connected.is_set, what="the central to connect")
    spool = Spool(tmp_path / "spool")
    first, second = make_bundle(1, 50_000), make_bundle(2, 50_000)
    spool.put(*first)
    spool.put(*second)
    # The quota dropped the first bundle's clip before it could be sent: the central will miss it.
    spool._set_file_state(first[1][0].ref.sha256, "dropped", "spool quota")
    central.reject_events = False
    uplink = Uplink(spool, port=broker.port, **UPLINK_SETTINGS).start()  # type: ignore[arg-type]
    try:
        wait_for(lambda: not spool.pending(), what="both bundles to be finished")
        assert spool.bundle_state(first[0].manifest.event_id, "confirmed") == "rejected"
        assert spool.bundle_state(second[0].manifest.event_id, "confirmed") == "acked"
        # Declared once, asked for again: no endless resending, one 'missing' ack ends it.
        assert uplink.counters["event_acks_missing"] == 1
        central.reject_events = True
        third = make_bundle(3, 10_000)
        spool.put(*third)
        uplink.wake()
        wait_for(lambda: not spool.pending(), what="the third bundle to be rejected")
        assert spool.bundle_state(third[0].manifest.event_id, "confirmed") == "rejected"
        assert uplink.counters["event_acks_rejected"] == 1
        # A malformed ack is logged and counted, and changes nothing.
        central.client.publish(topics.ack_topic(DEVICE), json.dumps({"ref_type": "bogus"}), qos=1)
        wait_for(lambda: uplink.counters["bad_acks"] == 1, what="the bad ack to be counted")
    finally:
        uplink.stop(drain_timeout=0.5)
        central.close()
