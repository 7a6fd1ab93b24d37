"""Enrolled keys on the ingest path, end to end: real Mosquitto, the running service, the CLI beside it.

The CLI changes the registry in the database while the service runs; the next message obeys.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from central_edge import TestEdge, make_bundle, wait_for

import wire
from central import CentralConfig, CentralService, load_config
from garbagewatch.cli import main
from garbagewatch.devtools.mosquitto import Mosquitto
from wire.signing import public_key_pem

pytestmark = pytest.mark.e2e


@pytest.fixture
def cfg_key() -> wire.DeviceKey:
    return wire.DeviceKey.generate()


@pytest.fixture
def config_file(tmp_path: Path, mosquitto: Mosquitto, cfg_key: wire.DeviceKey) -> Path:
    cfg_key.save(tmp_path / "box-cfg.key", tmp_path / "box-cfg.pub")
    path = tmp_path / "central.yaml"
    path.write_text(
        "data_dir: data\n"
        f"broker: {{port: {mosquitto.port}, client_id: central-devices-test}}\n"
        "devices:\n"
        "  - {device_id: box-cfg, public_key_file: box-cfg.pub, site: site-a}\n"
    )
    return path


@pytest.fixture
def config(config_file: Path) -> CentralConfig:
    return load_config(config_file)


@pytest.fixture
def central(config: CentralConfig) -> Iterator[CentralService]:
    svc = CentralService(config).start()
    assert svc.wait_ready(10), "central did not connect and subscribe"
    yield svc
    svc.stop()


@pytest.fixture
def edges(mosquitto: Mosquitto, central: CentralService) -> Iterator[dict[str, TestEdge]]:
    made = {d: TestEdge(mosquitto.port, device=d) for d in ("box-1", "box-cfg", "box-9")}
    yield made
    for e in made.values():
        e.close()


def cli(config_file: Path, *args: str) -> int:
    return main(["central", *args, "--config", str(config_file)])


def enroll(config_file: Path, tmp_path: Path, device: str, key: wire.DeviceKey, *site: str) -> None:
    pub = tmp_path / f"{key.key_id[8:]}.pub"
    pub.write_text(public_key_pem(key.public))
    assert cli(config_file, "enroll-device", "--device", device, "--public-key", str(pub), *site) == 0


def rows(config: CentralConfig, sql: str, *params: Any) -> list[dict[str, Any]]:
    conn = sqlite3.connect(config.db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def quarantined(central: CentralService, reason: str) -> int:
    return central.counters.get(f"quarantined.{reason}", 0)


def test_a_key_enrolled_while_running_files_and_once_revoked_is_quarantined(
    central: CentralService, edges: dict[str, TestEdge], config: CentralConfig, config_file: Path, tmp_path: Path,
    cfg_key: wire.DeviceKey,
) -> None:  # fmt: skip
    key = wire.DeviceKey.generate()
    box = edges["box-1"]
    before = make_bundle(key, device="box-1")
    box.send_event(before)
    wait_for(lambda: quarantined(central, "unknown_device") >= 1, what="unknown device refused")

    enroll(config_file, tmp_path, "box-1", key)  # no restart
    box.send_bundle(before)
    order = box.wait_ack(before.event_id, "ok")["work_order"]
    assert order is not None

    assert cli(config_file, "revoke-device", "--device", "box-1", "--reason", "box stolen") == 0
    after = make_bundle(key, device="box-1", zone="z2")
    box.send_bundle(after)
    ack = box.wait_ack(after.event_id, "rejected")
    assert "revoked key" in ack["reason"] and "box stolen" in ack["reason"]
    assert quarantined(central, "revoked_key") >= 2  # the files' messages and the event
    q = rows(config, "SELECT * FROM quarantine WHERE reason = 'revoked_key' AND topic LIKE '%/event'")
    assert len(q) == 1 and q[0]["device_id"] == "box-1"
    assert [r["id"] for r in rows(config, "SELECT id FROM work_orders")] == [order]
    assert rows(config, "SELECT count(*) AS n FROM events")[0]["n"] == 1

    # The rest goes on: the config's device still files.
    other = make_bundle(cfg_key, device="box-cfg")
    edges["box-cfg"].send_bundle(other)
    assert edges["box-cfg"].wait_ack(other.event_id, "ok")["work_order"] not in (None, order)


def test_unknown_devices_unenrolled_keys_and_bad_signatures_are_quarantined_never_filed(
    central: CentralService, edges: dict[str, TestEdge], config: CentralConfig, cfg_key: wire.DeviceKey
) -> None:
    stranger = make_bundle(wire.DeviceKey.generate(), device="box-9")
    edges["box-9"].send_bundle(stranger)

    box = edges["box-cfg"]
    unenrolled = make_bundle(wire.DeviceKey.generate(), device="box-cfg")
    box.send_bundle(unenrolled)
    assert box.wait_ack(unenrolled.event_id, "rejected")["reason"].startswith("key_id")

    forged = make_bundle(wire.DeviceKey.generate(), device="box-cfg")
    forged.body["key_id"] = cfg_key.key_id  # claims the enrolled key; signed by another
    box.send_bundle(forged)
    assert "does not verify" in box.wait_ack(forged.event_id, "rejected")["reason"]

    wrong_site = make_bundle(cfg_key, device="box-cfg", site="site-b")
    box.send_event(wrong_site)
    assert "belongs to site 'site-a'" in box.wait_ack(wrong_site.event_id, "rejected")["reason"]

    wait_for(lambda: quarantined(central, "unknown_device") >= 1, what="the stranger's refusal")
    assert quarantined(central, "unknown_key") == 1 and quarantined(central, "bad_signature") == 1
    assert edges["box-9"].acks == []  # nobody vouches for box-9: no answer at all
    assert rows(config, "SELECT * FROM work_orders") == [] and rows(config, "SELECT * FROM events") == []


def test_rotation_new_key_files_old_key_refused_after_its_revocation(
    central: CentralService, edges: dict[str, TestEdge], config: CentralConfig, config_file: Path, tmp_path: Path,
    cfg_key: wire.DeviceKey,
) -> None:  # fmt: skip
    box = edges["box-cfg"]
    new = wire.DeviceKey.generate()
    enroll(config_file, tmp_path, "box-cfg", new, "--site", "site-a")
    overlap = make_bundle(cfg_key, device="box-cfg", site="site-a")
    box.send_bundle(overlap)
    box.wait_ack(overlap.event_id, "ok")  # the old key still works during the overlap

    assert cli(config_file, "revoke-device", "--device", "box-cfg", "--key-id", cfg_key.key_id) == 0
    old = make_bundle(cfg_key, device="box-cfg", site="site-a", zone="z2")
    box.send_bundle(old)
    assert "revoked key" in box.wait_ack(old.event_id, "rejected")["reason"]
    fresh = make_bundle(new, device="box-cfg", site="site-a", zone="z3")
    box.send_bundle(fresh)
    assert box.wait_ack(fresh.event_id, "ok")["work_order"] is not None
    assert quarantined(central, "revoked_key") == 1
