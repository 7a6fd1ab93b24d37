"""The sweep wired into the running central: real Mosquitto, real SQLite, real Apprise to a local hook."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from caseflow_fixtures import Clock
from central_edge import HookServer, TestEdge, make_bundle, wait_for

import wire
from central import BrokerConfig, CentralConfig, CentralService, DeviceConfig, NotifyConfig
from central.config import CityConfig, EscalationConfig, LadderStepConfig
from garbagewatch.devtools.mosquitto import Mosquitto
from wire.topics import status_topic

pytestmark = pytest.mark.e2e


def rows(config: CentralConfig, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(config.db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_an_order_left_alone_escalates_and_an_offline_camera_is_reported(
    tmp_path: Path, mosquitto: Mosquitto, hook: HookServer
) -> None:
    key = wire.DeviceKey.generate()
    clock = Clock(1_800_000_000.0)
    config = CentralConfig(
        data_dir=tmp_path / "central",
        broker=BrokerConfig(port=mosquitto.port, client_id="central-escalation"),
        devices=[DeviceConfig.for_key("box-1", key.public, site="site-a")],
        notify=NotifyConfig(
            urls=[hook.url], console_url="http://console.test", first_retry_s=0.2, poll_s=0.1, group_s=0
        ),
        cities=[CityConfig(id="default", office_hours=[], holidays="every_day")],
        escalation=EscalationConfig(
            ladder=[LadderStepConfig(role="responsible")], reminder_before_s=0, repeat_s=0, camera_offline_s=300
        ),
    )
    central = CentralService(config, clock=clock).start()
    edge = TestEdge(mosquitto.port)
    try:
        assert central.wait_ready(10)
        bundle = make_bundle(key)
        edge.send_bundle(bundle)
        order_id = edge.wait_ack(bundle.event_id, "ok")["work_order"]
        wait_for(lambda: len(hook.bodies) == 1, what="the 'opened' message")
        edge.publish(status_topic("box-1"), json.dumps({"state": "online", "cameras": ["cam-1"]}).encode())
        edge.publish(status_topic("box-1"), json.dumps({"state": "offline"}).encode())
        wait_for(lambda: rows(config, "SELECT * FROM cameras WHERE online = 0"), what="the camera offline")

        clock.now += 4 * 3600 + 1
        central.sweep_now()
        wait_for(lambda: len(hook.bodies) >= 3, what="the overdue and camera-offline messages")
        texts = [b["title"] for b in hook.bodies]
        assert any(f"Work order {order_id} overdue (escalation level 1)" in t for t in texts), texts
        assert any("Camera cam-1 at site site-a offline" in t for t in texts), texts
        assert central.counters["escalation_steps"] == 1 and central.counters["cameras_reported_offline"] == 1
    finally:
        edge.close()
        central.stop()
