"""Two central instances on one broker (MQTT v5 shared subscriptions), one data dir, one SQLite file.

Real Mosquitto; the edge is tests/central_edge.TestEdge. The broker hands each message to one of
the two instances, so a file's segments, its fin and the event land on different instances.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from central_edge import SEGMENT, HookServer, TestEdge, make_bundle, make_files, wait_for

import wire
from central import BrokerConfig, CentralConfig, CentralService, DeviceConfig, NotifyConfig
from garbagewatch.devtools.mosquitto import Mosquitto
from wire.topics import event_topic

pytestmark = pytest.mark.e2e


@pytest.fixture
def key() -> wire.DeviceKey:
    return wire.DeviceKey.generate()


def instance_config(tmp_path: Path, port: int, key: wire.DeviceKey, hook: HookServer, name: str) -> CentralConfig:
    return CentralConfig(
        data_dir=tmp_path / "central",  # the same for both: database, evidence, incoming
        broker=BrokerConfig(port=port, client_id=f"central-{name}", shared_group="centrals", session_expiry_s=60),
        devices=[DeviceConfig.for_key("box-1", key.public)],
        notify=NotifyConfig(urls=[hook.url], console_url="http://console.test", first_retry_s=0.2, poll_s=0.2),
    )


@pytest.fixture
def centrals(
    tmp_path: Path, mosquitto: Mosquitto, key: wire.DeviceKey, hook: HookServer
) -> Iterator[list[CentralService]]:
    services = [
        CentralService(instance_config(tmp_path, mosquitto.port, key, hook, name)).start() for name in ("a", "b")
    ]
    try:
        for svc in services:
            assert svc.wait_ready(10), "a central instance did not connect and subscribe"
        yield services
    finally:
        for svc in services:
            svc.stop()


@pytest.fixture
def edge(mosquitto: Mosquitto, centrals: list[CentralService]) -> Iterator[TestEdge]:
    e = TestEdge(mosquitto.port)
    yield e
    e.close()


def rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(tmp_path / "central" / "garbagewatch.db")
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def assert_evidence_intact(tmp_path: Path, bundle_files: list[bytes]) -> None:
    for data in bundle_files:
        sha = hashlib.sha256(data).hexdigest()
        stored = tmp_path / "central" / "evidence" / sha[:2] / sha
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha
        assert rows(tmp_path, f"SELECT size FROM evidence_files WHERE sha256 = '{sha}'") == [(len(data),)]
    assert rows(tmp_path, "SELECT count(*) FROM transfers") == [(0,)]
    assert list((tmp_path / "central" / "incoming").rglob("*.part")) == []


def test_a_bundle_spread_over_two_instances_assembles_and_files_one_order(
    tmp_path: Path, key: wire.DeviceKey, centrals: list[CentralService], edge: TestEdge
) -> None:
    bundle = make_bundle(key, files=make_files(seed=7, clip_bytes=40 * SEGMENT + 17, snap_bytes=9 * SEGMENT))
    edge.send_bundle(bundle)
    ok = edge.wait_ack(bundle.event_id, "ok", timeout=20)
    for f in bundle.files:
        edge.wait_ack(f.sha256, "ok")

    for svc in centrals:
        svc.stop()  # both drain: every ack either would send is out
    for svc in centrals:  # the broker really shared the transfer out
        assert svc.counters.get("received.file_segment", 0) > 0
    assert [a["status"] for a in edge.acks_for(bundle.event_id)] == ["ok"]
    for f in bundle.files:
        assert [a["status"] for a in edge.acks_for(f.sha256)] == ["ok"]
    orders = rows(tmp_path, "SELECT id FROM work_orders")
    assert orders == [(ok["work_order"],)]
    assert_evidence_intact(tmp_path, [f.data for f in bundle.files])


def test_the_same_event_at_both_instances_makes_exactly_one_order(
    tmp_path: Path, key: wire.DeviceKey, centrals: list[CentralService], edge: TestEdge
) -> None:
    bundle = make_bundle(key)
    for f in bundle.files:
        edge.send_file(bundle, f)
    for f in bundle.files:
        edge.wait_ack(f.sha256, "ok")
    # The edge resends the event before the first ack came back: the copies go to both instances.
    infos = [edge.client.publish(event_topic("box-1", "site-a", "cam-1"), bundle.payload, qos=1) for _ in range(4)]
    for info in infos:
        info.wait_for_publish(10)
    edge.wait_ack(bundle.event_id, "ok", count=4, timeout=20)

    acks = edge.acks_for(bundle.event_id)
    assert {a["status"] for a in acks} == {"ok"}
    assert len({a["work_order"] for a in acks}) == 1
    assert rows(tmp_path, "SELECT id FROM work_orders") == [(acks[0]["work_order"],)]
    assert rows(tmp_path, "SELECT count(*) FROM events") == [(1,)]
    assert sum(svc.counters.get("received.event", 0) for svc in centrals) == 4


def test_an_instance_stopped_mid_transfer_leaves_the_rest_to_the_other(
    tmp_path: Path, key: wire.DeviceKey, centrals: list[CentralService], edge: TestEdge
) -> None:
    first, second = centrals
    bundle = make_bundle(key, files=make_files(seed=9, clip_bytes=30 * SEGMENT, snap_bytes=3 * SEGMENT))
    clip = bundle.files[0]
    segments = edge.segments(clip)
    edge.send_init(bundle, clip)
    edge.send_segments(bundle, clip, segments[:15])
    wait_for(
        lambda: all(svc.counters.get("received.file_segment", 0) > 0 for svc in centrals),
        10,
        "both instances to receive segments",
    )
    first.stop()  # a clean stop: it unsubscribes, then handles and acks what it was already sent

    edge.send_segments(bundle, clip, segments[15:])
    edge.send_fin(bundle, clip)
    edge.send_file(bundle, bundle.files[1])
    edge.send_event(bundle)
    ok = edge.wait_ack(bundle.event_id, "ok", timeout=20)

    assert second.counters.get("received.file_fin", 0) == 2  # everything after the stop went to the other
    for f in bundle.files:
        assert [a["status"] for a in edge.acks_for(f.sha256)] == ["ok"]
    assert rows(tmp_path, "SELECT id FROM work_orders") == [(ok["work_order"],)]
    assert_evidence_intact(tmp_path, [f.data for f in bundle.files])


# -- an instance killed with -9 ------------------------------------------------------------------


def test_an_instance_killed_mid_transfer_loses_nothing_the_edges_resend_reaches_the_other(
    tmp_path: Path, mosquitto: Mosquitto, key: wire.DeviceKey, hook: HookServer
) -> None:
    """Crash failover. Instance a (`python -m central run`, its own process) is killed with -9
    while it holds part of a transfer. What the broker had handed it stays in its session, not
    given to b; nothing is lost because the edge keeps the bundle until `event ok` and sends it
    again, which b files alone. When a comes back, its session's stale copies are handled
    idempotently: still one order, every file intact."""
    config = instance_config(tmp_path, mosquitto.port, key, hook, "a")
    config_file = tmp_path / "central-a.json"
    config_file.write_text(config.model_dump_json())
    log = tmp_path / "central-a.log"
    repo = Path(__file__).resolve().parents[1]

    def start_a() -> subprocess.Popen[bytes]:
        seen = log.read_text().count("subscribed to") if log.exists() else 0
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "central", "run", "--config", str(config_file), "--no-api"],
                cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for(lambda: log.read_text().count("subscribed to") > seen, 30, f"instance a to subscribe (log {log})")
        return proc

    a = start_a()
    b = CentralService(instance_config(tmp_path, mosquitto.port, key, hook, "b")).start()
    e = TestEdge(mosquitto.port)
    try:
        assert b.wait_ready(10)
        bundle = make_bundle(key, files=make_files(seed=11, clip_bytes=30 * SEGMENT, snap_bytes=3 * SEGMENT))
        clip = bundle.files[0]
        segments = e.segments(clip)
        e.send_init(bundle, clip)
        e.send_segments(bundle, clip, segments[:20])
        wait_for(lambda: b.counters.get("received.file_segment", 0) > 0, 10, "b to receive segments")
        a.send_signal(signal.SIGKILL)
        assert a.wait(10) == -signal.SIGKILL
        e.send_segments(bundle, clip, segments[20:])
        e.send_fin(bundle, clip)
        e.send_file(bundle, bundle.files[1])
        e.send_event(bundle)
        # No `event ok` yet, or a `missing`: the edge's uplink would resend the bundle after its
        # ack timeout; here the test does, once, as it would.
        if not e.acks_for(bundle.event_id, "ok"):
            e.send_bundle(bundle)
        ok = e.wait_ack(bundle.event_id, "ok", timeout=30)
        assert rows(tmp_path, "SELECT id FROM work_orders") == [(ok["work_order"],)]
        assert_evidence_intact(tmp_path, [f.data for f in bundle.files])

        a = start_a()  # its session still holds what the broker had handed it before the kill
        e.send_event(bundle)  # one more copy, in case the session held nothing: answered ok, same order
        wait_for(lambda: len(e.acks_for(bundle.event_id, "ok")) >= 2, 30, "the repeated event's ack")
        assert {x["work_order"] for x in e.acks_for(bundle.event_id, "ok")} == {ok["work_order"]}
        assert rows(tmp_path, "SELECT id FROM work_orders") == [(ok["work_order"],)]
        assert rows(tmp_path, "SELECT count(*) FROM events") == [(1,)]
    finally:
        e.close()
        b.stop()
        if a.poll() is None:
            a.send_signal(signal.SIGTERM)
            a.wait(20)
    assert_evidence_intact(tmp_path, [f.data for f in bundle.files])
    assert "Traceback" not in log.read_text()
