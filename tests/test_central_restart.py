"""The central killed with -9 in the middle of a transfer, then started again: nothing is lost.

Runs the real CLI (`python -m central run --config ...`) in a subprocess, so the kill is a real one.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from central_edge import HookServer, TestEdge, make_bundle, make_files, wait_for

import wire
from central.cli import main as central_main
from garbagewatch.devtools.mosquitto import Mosquitto

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]


def write_config(tmp_path: Path, port: int, key: wire.DeviceKey, hook_url: str) -> Path:
    key.save(tmp_path / "box-1.key", tmp_path / "box-1.pub")
    cfg = tmp_path / "central.yaml"
    cfg.write_text(
        "data_dir: data\n"
        f"broker: {{port: {port}, client_id: central-restart}}\n"
        "devices:\n"
        "  - {device_id: box-1, public_key_file: box-1.pub, site: site-a}\n"
        f"notify: {{urls: [{json.dumps(hook_url)}], first_retry_s: 0.2, poll_s: 0.2}}\n"
    )
    return cfg


def start_central(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    fh = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "central", "run", "--config", str(cfg)],
        cwd=REPO,
        env=env,
        stdout=fh,
        stderr=subprocess.STDOUT,
    )
    fh.close()
    return proc


def ranges_of(db: Path) -> list[list[int]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT ranges FROM transfers").fetchone()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    return json.loads(row[0]) if row else []


def test_a_transfer_survives_kill_9_of_the_central(
    tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    key = wire.DeviceKey.generate()
    hook = HookServer()
    cfg = write_config(tmp_path, mosquitto.port, key, hook.url)
    log = tmp_path / "central.log"
    db = tmp_path / "data" / "garbagewatch.db"
    proc = start_central(cfg, log)
    edge = TestEdge(mosquitto.port)
    try:
        wait_for(lambda: log.exists() and "subscribed to" in log.read_text(), 30, "the central to subscribe")
        bundle = make_bundle(key, files=make_files(seed=42, clip_bytes=8000))
        clip = bundle.files[0]
        segs = edge.segments(clip)
        edge.send_init(bundle, clip)
        edge.send_segments(bundle, clip, segs[:4])
        partial = tmp_path / "data" / "incoming" / "box-1" / f"{clip.sha256}.part"
        wait_for(lambda: partial.exists() and partial.stat().st_size == 4096, 10, "the first four segments written")
        assert ranges_of(db) == []  # written, not checkpointed: segments are not made durable one by one

        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        # While the central is dead: the rest of the bundle, queued by the broker for its session.
        edge.send_segments(bundle, clip, segs[4:])
        edge.send_fin(bundle, clip)
        edge.send_file(bundle, bundle.files[1])
        edge.send_event(bundle)

        proc = start_central(cfg, log)
        # Segments the dead central had written but not yet PUBACKed come again from the broker's
        # queue; those it had PUBACKed but not checkpointed are asked for ('file missing'), and the
        # event waits for the clip. The edge still holds the whole bundle and sends them again, as
        # the uplink does. Which of the two happened depends on the instant of the kill.
        first = edge.wait_ack(clip.sha256, timeout=30)
        if first["status"] == "missing":
            assert first["reason"].startswith("bytes 0-") and first["reason"].endswith(" not received")
            edge.wait_ack(bundle.event_id, "missing", timeout=30)
            edge.send_segments(bundle, clip, segs[:4])
            edge.wait_ack(clip.sha256, "ok", timeout=30)
            edge.send_event(bundle)
        else:
            assert first["status"] == "ok", first
        ack = edge.wait_ack(bundle.event_id, "ok", timeout=30)
        assert ack["work_order"]
        stored = tmp_path / "data" / "evidence" / clip.sha256[:2] / clip.sha256
        assert stored.read_bytes() == clip.data
        wait_for(lambda: hook.bodies, 10, "the notification")

        assert central_main(["orders", "--config", str(cfg)]) == 0
        out = capsys.readouterr().out
        assert ack["work_order"] in out and "site-a/cam-1/z1" in out
    finally:
        edge.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        hook.close()
    assert "Traceback" not in log.read_text()


def test_run_refuses_a_bad_config_with_the_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "central.yaml"
    cfg.write_text("data_dir: data\nbroker: {port: 0}\n")
    assert central_main(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and "broker.port" in err
