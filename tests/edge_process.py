"""Test helpers: the edge daemon as systemd runs it, a separate `garbagewatch edge run` process.

Not a test module itself (test_edge_cli and test_edge_systemd import it). The config is the
shipped configs/edge.example.yaml with only what must change on a test machine replaced: the
camera URLs (the demo camera), the broker's address and TLS files, and the state paths.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

import wire
from garbagewatch.demo.footage import write_demo_footage
from wire.topics import status_topic

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "configs" / "edge.example.yaml"


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def demo_camera_clip(path: Path) -> Path:
    """The demo's street footage, short and small: a camera to connect to, cheap to make."""
    return write_demo_footage(path, clean_s=2.0, dirty_s=4.0, after_s=2.0, size=(640, 360))  # type: ignore[arg-type]


def config_from_example(
    folder: Path, camera_urls: list[str], broker_port: int, tls: Mapping[str, str] | None = None,
    **top_level: Any,
) -> tuple[Path, dict[str, Any]]:
    """configs/edge.example.yaml made runnable here; returns (path, the raw config)."""
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    state = folder / "state"  # what /var/lib/garbagewatch is on a box
    state.mkdir(parents=True, exist_ok=True)
    wire.DeviceKey.generate().save(state / "device.key", state / "device.pub")
    raw["key_file"] = str(state / "device.key")
    raw["spool"]["dir"] = str(state / "spool")
    raw["broker"].update(host="127.0.0.1", port=broker_port)
    if tls is None:
        del raw["broker"]["tls"]
    else:
        raw["broker"]["tls"] = dict(tls)
    for camera, url in zip(raw["cameras"], camera_urls, strict=True):
        camera["url"] = url
    raw.update(top_level)
    path = folder / "edge.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path, raw


def start_edge(config: Path, stderr: TextIO, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`garbagewatch edge run --config CONFIG` in its own process, logging to `stderr`."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
        if name not in (env or {}):
            full_env.pop(name, None)  # only what the test sets, never the runner's own systemd's
    return subprocess.Popen(
        [sys.executable, "-m", "garbagewatch.cli", "edge", "run", "--config", str(config)],
        cwd=REPO, env=full_env, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
    )


class StatusWatcher:
    """Subscribes to a device's retained status topic and keeps every Availability it sees."""

    def __init__(self, port: int, device_id: str, tls: ssl.SSLContext | None = None) -> None:
        self.seen: list[wire.Availability] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{device_id}",
                                  protocol=mqtt.MQTTv5)
        if tls is not None:
            self.client.tls_set_context(tls)
        topic = status_topic(device_id)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.seen.append(wire.Availability.model_validate_json(msg.payload))

    def states(self) -> list[str]:
        with self._lock:
            return [a.state for a in self.seen]

    def wait_for_state(self, state: str, timeout: float) -> wire.Availability:
        def found() -> wire.Availability | None:
            with self._lock:
                return next((a for a in self.seen if a.state == state), None)
        return wait_for(found, timeout, f"a retained '{state}' status")  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
