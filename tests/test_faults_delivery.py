"""Delivery faults on the whole chain: the broker or the edge killed mid-transfer, the spool over quota.

Real parts throughout: Mosquitto, the GStreamer RTSP server playing synthetic street footage in
which the shipped model finds garbage, the edge daemon (in this process, or the real CLI in a
subprocess so that kill -9 is a real one) and the central service with its SQLite file. Each fault
is injected at a chosen point of a transfer through the uplink's `fault_hook` (pause after segment
k), never by timing; the tests then poll for the outcome and check that nothing was lost or doubled:
one work order, every signed event message filed exactly once, every bundle the edge spooled acked,
every stored file hashing to its signed manifest.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

import wire
from central.service import CentralService
from edge.config import EdgeConfig, EvidenceConfig
from edge.daemon import EdgeDaemon
from garbagewatch.demo.chain import Chain, Timing
from garbagewatch.demo.footage import street_frames
from garbagewatch.devtools.footage import encode_h264
from garbagewatch.devtools.mosquitto import Mosquitto
from garbagewatch.devtools.rtsp_server import RtspServer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
RtspServerFactory = Callable[[dict[str, Path]], RtspServer]

# Confirmed about 4 s after the camera connects; the clip is cut 1 s later.
TIMING = Timing(analysis_interval=1.0, confirm_seconds=2.5, clear_seconds=6.0, preroll_seconds=2.0,
                postroll_seconds=1.0, read_timeout=5.0)
SEGMENT = 4096  # small segments: a clip of ~100 KB takes a few dozen messages
PAUSE_AFTER = 3  # the fault point: right after the 4th segment of the first file


def poll(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s of the demo street with a garbage pile throughout, 640x360, a keyframe every second.

    Dirty from the first frame to the last: the server loops the file, and a clean phase would
    clear the event and open a second order on the next loop, blurring 'exactly one order'.
    """
    frames = street_frames(clean_s=0.0, dirty_s=10.0, after_s=0.0, fps=5, size=(640, 360))
    return encode_h264(frames, tmp_path_factory.mktemp("street") / "street.mp4", fps=5, gop=5)


@pytest.fixture
def camera_url(rtsp_server: RtspServerFactory, street: Path) -> str:
    return rtsp_server({"cam-1": street}).url("cam-1")


class PauseAfterSegment:
    """Uplink.fault_hook: the first time segment `index` of a file is out, block until released."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.sha256 = ""
        self.paused = threading.Event()
        self.release = threading.Event()

    def __call__(self, sha256: str, index: int) -> None:
        if index != self.index or self.paused.is_set():
            return
        self.sha256 = sha256
        self.paused.set()
        self.release.wait(120)


def start_chain(chain: Chain, config: EdgeConfig, prepare: Callable[[EdgeDaemon], None]) -> EdgeDaemon:
    """What Chain.start() does, with a chance to set fault hooks on the edge before it runs."""
    chain.broker.start()
    chain.sink.start()
    chain.central = CentralService(chain.central_config()).start()
    assert chain.central.wait_ready(20), "the central did not subscribe"
    return start_edge(chain, config, prepare)


def start_edge(chain: Chain, config: EdgeConfig, prepare: Callable[[EdgeDaemon], None]) -> EdgeDaemon:
    edge = EdgeDaemon(config)
    prepare(edge)
    chain.edge = edge.start()
    return edge


def pause_uplink(pause: PauseAfterSegment) -> Callable[[EdgeDaemon], None]:
    def prepare(edge: EdgeDaemon) -> None:
        edge.uplink.segment_bytes = SEGMENT
        edge.uplink.fault_hook = pause

    return prepare


# -- reading the two sides' SQLite files -----------------------------------------------------------


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """Read-only, with a short-lived connection: the services keep writing meanwhile."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # the service has not created it yet
            return []
        raise
    finally:
        conn.close()


def filed(chain: Chain, event_id: str) -> int:
    return len(rows(chain.central_config().db_path, "SELECT 1 FROM events WHERE event_id = ?", (event_id,)))


def transfer_event(chain: Chain, sha256: str) -> str | None:
    """The event id of the central's transfer of a file in progress (its init arrived), or None."""
    found = rows(chain.central_config().db_path, "SELECT event_id FROM transfers WHERE sha256 = ?", (sha256,))
    return str(found[0]["event_id"]) if found else None


def segments_received(chain: Chain) -> int:
    """File segments the in-process central has taken in (the edge's first file's, before a pause)."""
    assert chain.central is not None
    return chain.central.counters.get("received.file_segment", 0)


def partial_bytes(chain: Chain, sha256: str) -> int:
    """How far the central's partial copy of a file reaches: the bytes it wrote of it so far.

    (The transfers row records ranges only at checkpoints; the partial file has every segment.)
    """
    partial = chain.central_config().incoming_dir / chain.device_id / f"{sha256}.part"
    return partial.stat().st_size if partial.exists() else 0


def assert_delivered_exactly_once(chain: Chain, spool_dir: Path, *, dropped_roles: frozenset[str] = frozenset()) -> str:
    """One work order; each spooled bundle acked and filed once; every file intact. Returns the order id."""
    central = chain.central_config()
    orders = rows(central.db_path, "SELECT id, status FROM work_orders")
    assert len(orders) == 1, [dict(o) for o in orders]
    events = rows(central.db_path, "SELECT * FROM events")
    filed_keys = [(e["event_id"], e["kind"]) for e in events]
    assert len(filed_keys) == len(set(filed_keys)), f"an event filed twice: {filed_keys}"
    assert {e["work_order_id"] for e in events} == {orders[0]["id"]}

    bundles = rows(spool_dir / "spool.sqlite3", "SELECT event_id, kind, state FROM bundles")
    assert bundles and all(b["state"] == "acked" for b in bundles), [dict(b) for b in bundles]
    assert {(b["event_id"], b["kind"]) for b in bundles} == set(filed_keys)

    for event in events:
        manifest = json.loads(event["manifest"])
        assert wire.verify_manifest(chain.key.public, manifest, event["signature"])
        missing = {r["sha256"] for r in rows(central.db_path,
                   "SELECT sha256 FROM event_files WHERE message_id = ? AND missing = 1", (event["message_id"],))}
        for f in manifest["files"]:
            if f["sha256"] in missing:
                assert f["role"] in dropped_roles, f"{f['role']} of {event['event_id']} is missing"
                continue
            (stored,) = rows(central.db_path, "SELECT path FROM evidence_files WHERE sha256 = ?", (f["sha256"],))
            data = (central.evidence_dir / stored["path"]).read_bytes()
            assert len(data) == f["size"] and hashlib.sha256(data).hexdigest() == f["sha256"], f["role"]
    assert not rows(central.db_path, "SELECT * FROM transfers"), "a transfer left unfinished"
    return str(orders[0]["id"])


# -- (a) the broker killed with -9 in the middle of the evidence transfer --------------------------


def test_broker_killed_mid_transfer_loses_and_doubles_nothing(
    tmp_path: Path, mosquitto: Mosquitto, camera_url: str
) -> None:
    chain = Chain(tmp_path / "run", camera_url, timing=TIMING, broker=mosquitto)
    pause = PauseAfterSegment(PAUSE_AFTER)
    edge = start_chain(chain, chain.edge_config(), pause_uplink(pause))
    try:
        assert pause.paused.wait(90), "no evidence transfer started"
        # The central took in the segments sent before the pause, and nothing more.
        event_id = poll(lambda: transfer_event(chain, pause.sha256), 20, "the transfer begun at the central")
        poll(lambda: segments_received(chain) == PAUSE_AFTER + 1, 20, "the segments sent before the pause")

        mosquitto.kill()  # kill -9, while the uplink is between two segments
        poll(lambda: not edge.uplink.connected, 20, "the uplink to notice the broker is gone")
        pause.release.set()  # the next segment finds no broker: the transfer is interrupted
        mosquitto.start()  # same port, its persisted sessions

        poll(lambda: filed(chain, event_id), 60, "the event filed after the broker came back")
        poll(lambda: edge.spool.stats().pending_bundles == 0, 30, "every spooled bundle acked")
        bundle_segments = sum(math.ceil(f.size / SEGMENT) for f in files_of(chain, event_id))
        assert edge.uplink.counters["segments_sent"] > bundle_segments, "the interrupted transfer was resent"
        assert filed(chain, event_id) == 1
    finally:
        chain.stop()
    assert_delivered_exactly_once(chain, chain.edge_config().spool.dir)


def files_of(chain: Chain, event_id: str) -> list[wire.FileRef]:
    (event,) = rows(chain.central_config().db_path, "SELECT manifest FROM events WHERE event_id = ? AND kind = ?",
                    (event_id, "confirmed"))
    return [wire.FileRef.model_validate(f) for f in json.loads(event["manifest"])["files"]]


# -- (b) the edge killed with -9 in the middle of the transfer, restarted on the same spool --------

# The first edge: the daemon the CLI runs, paused for good after segment PAUSE_AFTER of its first
# file (it writes that file's sha256 to MARKER), so the test can kill it at exactly that point.
PAUSING_EDGE = """
import logging, sys, threading
from pathlib import Path
from edge.config import load_edge_config
from edge.daemon import EdgeDaemon

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
config, marker, segment_bytes, pause_after = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
daemon = EdgeDaemon(load_edge_config(config))

def pause_for_good(sha256, index):
    if index == pause_after:
        marker.with_suffix(".tmp").write_text(sha256)
        marker.with_suffix(".tmp").rename(marker)
        threading.Event().wait()

daemon.uplink.segment_bytes = segment_bytes
daemon.uplink.fault_hook = pause_for_good
daemon.start()
threading.Event().wait()
"""


def write_edge_config(chain: Chain, path: Path) -> Path:
    """The chain's edge config as the YAML file an installer would write."""
    config = chain.edge_config().model_copy(update={"drain_timeout_seconds": 10.0})
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return path


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, *args], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                stdout=out, stderr=subprocess.STDOUT)


def test_edge_killed_mid_transfer_and_restarted_delivers_once(
    tmp_path: Path, mosquitto: Mosquitto, camera_url: str
) -> None:
    chain = Chain(tmp_path / "run", camera_url, timing=TIMING, broker=mosquitto)
    config = write_edge_config(chain, tmp_path / "edge.yaml")
    marker, log = tmp_path / "paused", tmp_path / "edge.log"
    chain.sink.start()
    chain.central = CentralService(chain.central_config()).start()
    edge: subprocess.Popen[bytes] | None = None
    try:
        assert chain.central.wait_ready(20)
        edge = spawn(["-c", PAUSING_EDGE, str(config), str(marker), str(SEGMENT), str(PAUSE_AFTER)], log)
        poll(marker.exists, 90, f"the first edge to pause mid-transfer (log {log})")
        sha = marker.read_text()
        event_id = poll(lambda: transfer_event(chain, sha), 20, "the transfer begun at the central")
        poll(lambda: segments_received(chain) == PAUSE_AFTER + 1, 20, "some but not all segments at the central")
        edge.send_signal(signal.SIGKILL)
        assert edge.wait(10) == -signal.SIGKILL
        assert transfer_event(chain, sha) == event_id and not filed(chain, event_id)

        # The real command line on the same spool: the bundle goes again and completes.
        edge = spawn(["-m", "garbagewatch.cli", "edge", "run", "--config", str(config)], log)
        poll(lambda: filed(chain, event_id), 90, f"the event filed by the restarted edge (log {log})")
        edge.send_signal(signal.SIGTERM)  # drains what it spooled since, then exits
        assert edge.wait(30) == 0
        edge = None
    finally:
        if edge is not None:
            edge.kill()
            edge.wait(10)
        chain.stop()
    assert filed(chain, event_id) == 1
    assert_delivered_exactly_once(chain, chain.edge_config().spool.dir)
    assert "Traceback" not in log.read_text()


# -- (d) the central killed with -9 mid-transfer while the edge sends the bundle again and again ---


def write_central_config(chain: Chain, path: Path) -> Path:
    """The chain's central as a config file, for `python -m central run` (same data folder, same key)."""
    path.write_text(yaml.safe_dump({
        "data_dir": str(chain.central_config().data_dir),
        "broker": {"port": chain.broker.port, "client_id": "gw-central-faults", "reconnect_max_s": 2},
        "devices": [{"device_id": chain.device_id, "site": chain.site,
                     "public_key_file": str(chain.key_file.with_name("device.pub"))}],
        "notify": {"urls": [chain.sink.apprise_url], "first_retry_s": 0.5, "poll_s": 0.2},
    }))
    return path


def start_central(config: Path, log: Path) -> subprocess.Popen[bytes]:
    subscribed = log.read_text().count("subscribed to") if log.exists() else 0
    # --no-api: this test needs no HTTP API, and its default port may be taken on a shared machine.
    central = spawn(["-m", "central", "run", "--config", str(config), "--no-api"], log)
    poll(lambda: log.read_text().count("subscribed to") > subscribed, 30, f"the central to subscribe (log {log})")
    return central


def test_central_killed_mid_transfer_gets_the_bundle_several_times_and_files_it_once(
    tmp_path: Path, mosquitto: Mosquitto, camera_url: str
) -> None:
    chain = Chain(tmp_path / "run", camera_url, timing=TIMING, broker=mosquitto)
    chain.sink.start()
    config, log = write_central_config(chain, tmp_path / "central.yaml"), tmp_path / "central.log"
    pause = PauseAfterSegment(PAUSE_AFTER)
    # Resent after 1, 2, 4... s without an ack: copies queue up while the central is down.
    edge_config = chain.edge_config()
    edge_config = edge_config.model_copy(
        update={"broker": edge_config.broker.model_copy(update={"ack_timeout_seconds": 1.0})})
    central: subprocess.Popen[bytes] | None = start_central(config, log)
    try:
        edge = start_edge(chain, edge_config, pause_uplink(pause))
        assert pause.paused.wait(90), "no evidence transfer started"
        event_id = poll(lambda: transfer_event(chain, pause.sha256), 20, "the transfer begun at the central")
        poll(lambda: partial_bytes(chain, pause.sha256) == (PAUSE_AFTER + 1) * SEGMENT, 20,
             "some but not all segments at the central")
        assert central is not None
        central.send_signal(signal.SIGKILL)
        assert central.wait(10) == -signal.SIGKILL
        central = None
        pause.release.set()
        # No ack comes: the uplink sends the whole bundle again after each ack timeout; the broker
        # queues every copy for the central's session, interleaved with the rest of the first.
        poll(lambda: edge.uplink.counters["events_resent"] >= 2, 60, "the bundle sent three times")
        copies = edge.uplink.counters["events_sent"]
        assert edge.spool.stats().pending_bundles >= 1 and not filed(chain, event_id)

        central = start_central(config, log)
        poll(lambda: filed(chain, event_id), 60, "the event filed by the restarted central")
        poll(lambda: edge.spool.stats().pending_bundles == 0, 30, "every spooled bundle acked")
        # Every copy was answered, and the event filed once (below). A copy whose files the killed
        # central had only in part may be answered 'missing' (the edge then sends it again); every
        # copy after the one filed is answered 'ok' as a duplicate, to a bundle the edge already let go.
        counters = edge.uplink.counters
        poll(lambda: counters["event_acks_ok"] + counters["event_acks_missing"] >= copies, 30,
             "an ack for every copy")
        assert counters["event_acks_ok"] >= 1
        assert counters["unmatched_acks"] >= copies - 1 - counters["event_acks_missing"]
    finally:
        if central is not None:
            central.send_signal(signal.SIGTERM)
            assert central.wait(20) == 0
        chain.stop()
    assert filed(chain, event_id) == 1
    assert_delivered_exactly_once(chain, chain.edge_config().spool.dir)
    assert "Traceback" not in log.read_text()


# -- (c) the spool over its quota -------------------------------------------------------------------


class StatsWatcher:
    """A plain MQTT client listening to an edge's stats topic."""

    def __init__(self, port: int, device: str) -> None:
        self.stats: list[wire.Stats] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="stats-watcher", protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *a: c.subscribe(wire.topics.stats_topic(device), qos=0)
        self.client.on_message = lambda c, u, msg: self.stats.append(wire.Stats.model_validate_json(msg.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def stats_watcher(mosquitto: Mosquitto) -> Iterator[StatsWatcher]:
    watcher = StatsWatcher(mosquitto.port, "demo-box")
    yield watcher
    watcher.close()


def test_spool_over_quota_drops_the_clip_reports_it_and_the_daemon_goes_on(
    tmp_path: Path, mosquitto: Mosquitto, camera_url: str, stats_watcher: StatsWatcher
) -> None:
    chain = Chain(tmp_path / "run", camera_url, timing=TIMING, broker=mosquitto)
    # Snapshots of ~15 KB each fit the quota; a clip of 4 s (5 keyframes of ~24 KB) does not.
    config = chain.edge_config().model_copy(update={
        "stats_interval_seconds": 1.0,
        "evidence": EvidenceConfig(preroll_seconds=4.0, postroll_seconds=1.0, jpeg_quality=30),
    })

    def prepare(edge: EdgeDaemon) -> None:
        edge.spool.quota_bytes = 64 * 1024  # the config's floor is 16 MB: set below it directly

    edge = start_chain(chain, config, prepare)
    try:
        poll(lambda: edge.spool.stats().dropped_files >= 1, 90, "the spool to drop a file")
        poll(lambda: any(s.dropped >= 1 for s in stats_watcher.stats), 20, "stats on the broker showing the drop")
        poll(lambda: chain.work_orders(), 60, "the event filed without its clip")
        poll(lambda: edge.spool.stats().pending_bundles == 0, 30, "the bundle acked")
        # The daemon goes on: its camera is still analysed, every thread alive.
        analyses = edge.worker.analyses
        poll(lambda: edge.worker.analyses >= analyses + 2, 30, "analyses after the drop")
        assert edge.healthy()
        stats = edge.spool.stats()
        assert stats.dropped_files >= 1 and stats.dropped_bundles == 0 and stats.used_bytes <= stats.quota_bytes
    finally:
        chain.stop()
    assert_delivered_exactly_once(chain, config.spool.dir, dropped_roles=frozenset({"clip"}))
    missing = rows(chain.central_config().db_path, "SELECT role FROM event_files WHERE missing = 1")
    assert {r["role"] for r in missing} == {"clip"}
    (device,) = rows(chain.central_config().db_path, "SELECT last_stats FROM devices")
    assert json.loads(device["last_stats"])["dropped"] >= 1  # the central recorded the report too
